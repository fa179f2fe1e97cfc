package cli

import (
	"fmt"
	"io"
	"strings"
)

func printHelp(w io.Writer) {
	fmt.Fprint(w, "Usage: grid COMMAND [ARGS] [-a APP]\n\nCommands:\n")
	rows := make([][]string, 0, len(commands))
	for _, c := range commands {
		rows = append(rows, []string{"  " + c.name, c.summary})
	}
	printTable(w, rows)
	fmt.Fprint(w, "\nThe API is GRID_API_URL, else the one saved by grid login (grid up logs in for you).\n")
	fmt.Fprint(w, "Commands on an app take -a APP, else GRID_APP, else the app of the git remote here.\n")
	fmt.Fprint(w, "Run grid help COMMAND (or grid COMMAND --help) for details.\n")
}

func printCommandHelp(w io.Writer, c *command) {
	fmt.Fprintf(w, "Usage: grid %s\n\n%s\n", c.usage(), capitalize(c.summary))
	if len(c.aliases) > 0 {
		fmt.Fprintf(w, "\nAliases: %s\n", strings.Join(c.aliases, ", "))
	}
	flags := c.allFlags()
	if len(flags) == 0 {
		return
	}
	fmt.Fprint(w, "\nFlags:\n")
	rows := make([][]string, 0, len(flags))
	for _, f := range flags {
		name := "      --" + f.name
		if f.short != "" {
			name = "  -" + f.short + ", --" + f.name
		}
		if f.value != "" {
			name += " " + f.value
		}
		rows = append(rows, []string{name, f.help})
	}
	printTable(w, rows)
}

// helpCommand is `grid help [COMMAND]`.
func helpCommand(env Env, args []string) int {
	if len(args) == 0 {
		printHelp(env.Stdout)
		return exitOK
	}
	c := lookup(args[0])
	if c == nil {
		return report(env.Stderr, unknownCommand(args[0]))
	}
	printCommandHelp(env.Stdout, c)
	return exitOK
}

func capitalize(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}
