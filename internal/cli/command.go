package cli

import "context"

// command is one CLI command.
type command struct {
	name    string
	aliases []string
	args    string // positional arguments for the usage line: "KEY=VALUE..."
	summary string
	flags   []flag
	// app: the command works on one app (-a/--app, GRID_APP or the git
	// remote).
	app bool
	// leadingFlags: flags come before the positional arguments only
	// (grid run's command line is the rest).
	leadingFlags bool
	run          func(c *call) error
}

// call is one command being run: parsed arguments and lazily made
// connections.
type call struct {
	ctx  context.Context
	env  Env
	cmd  *command
	args []string          // positional
	opts map[string]string // by long flag name; "true" for set switches
	api  *client           // set by client()
	app  string            // set by appName()
}

// commands is the command table; help lists it in this order.
var commands []*command

func init() {
	commands = []*command{
		appsCmd, appsCreateCmd, appsInfoCmd, appsDestroyCmd,
		configCmd, configGetCmd, configSetCmd, configUnsetCmd,
		releasesCmd, releasesInfoCmd, rollbackCmd, slugsDownloadCmd,
		psCmd, psScaleCmd, psTypeCmd, psRestartCmd, psStopCmd,
		runCmd, runDetachedCmd,
		logsCmd,
		drainsCmd, drainsAddCmd, drainsRemoveCmd,
		addonsCmd, addonsCreateCmd, addonsInfoCmd, addonsDestroyCmd, addonsUpgradeCmd, addonsAttachCmd, addonsDetachCmd,
		pgInfoCmd, pgPsqlCmd, pgRotateCmd, pgBackupsCmd, pgBackupsCaptureCmd, pgBackupsDownloadCmd, pgBackupsRestoreCmd,
		redisInfoCmd, redisCliCmd,
		deployCmd, buildsCmd, buildsOutputCmd, buildsPurgeCmd,
		buildpacksCmd, buildpacksSetCmd, buildpacksAddCmd, buildpacksRemoveCmd, buildpacksClearCmd,
		domainsCmd, domainsAddCmd, domainsRemoveCmd,
		certsCmd, certsAddCmd, certsRemoveCmd,
		maintenanceCmd, maintenanceOnCmd, maintenanceOffCmd,
		hostsCmd, hostsAddCmd, hostsDrainCmd, hostsFailCmd, hostsCutCmd, hostsHealCmd, hostsTokenCmd, routersTokenCmd,
		loginCmd, logoutCmd, whoamiCmd,
	}
}

func lookup(name string) *command {
	for _, c := range commands {
		if c.name == name {
			return c
		}
		for _, a := range c.aliases {
			if a == name {
				return c
			}
		}
	}
	return nil
}

func (cmd *command) usage() string {
	u := cmd.name
	if cmd.args != "" {
		u += " " + cmd.args
	}
	if cmd.app {
		u += " [-a APP]"
	}
	return u
}

// allFlags is the command's flags plus -a/--app for app commands.
func (cmd *command) allFlags() []flag {
	if !cmd.app {
		return cmd.flags
	}
	return append([]flag{appFlag}, cmd.flags...)
}

var appFlag = flag{name: "app", short: "a", value: "APP", help: "the app to use (default: GRID_APP, else the app of the git remote)"}

func (cmd *command) exec(ctx context.Context, env Env, args []string) error {
	if wantsHelp(args) {
		printCommandHelp(env.Stdout, cmd)
		return nil
	}
	pos, opts, err := parseFlagsUntil(cmd.allFlags(), args, cmd.leadingFlags)
	if err != nil {
		return &usageError{msg: err.Error(), usage: cmd.usage()}
	}
	return cmd.run(&call{ctx: ctx, env: env, cmd: cmd, args: pos, opts: opts})
}

// wantsHelp reports whether -h or --help comes before any "--".
func wantsHelp(args []string) bool {
	for _, a := range args {
		switch a {
		case "--":
			return false
		case "-h", "--help":
			return true
		}
	}
	return false
}

// usageErr is a usage error for this command.
func (c *call) usageErr(format string, args ...any) error {
	err := usagef(format, args...).(*usageError)
	err.usage = c.cmd.usage()
	return err
}

// flagSet reports whether a switch was given.
func (c *call) flagSet(name string) bool { return c.opts[name] == "true" }

// unknownCommand suggests the closest command, as Heroku does.
func unknownCommand(name string) error {
	msg := name + " is not a grid command."
	if s := closest(name); s != "" {
		msg += "\nPerhaps you meant " + s + "?"
	}
	return usagef("%s\nRun grid help for a list of available commands.", msg)
}

// closest is the command name nearest to name, if any is near enough to
// be a likely typo.
func closest(name string) string {
	best, bestD := "", len(name)/2+2
	for _, c := range commands {
		for _, n := range append([]string{c.name}, c.aliases...) {
			if d := distance(name, n); d < bestD {
				best, bestD = c.name, d
			}
		}
	}
	return best
}

// distance is the Levenshtein distance between a and b.
func distance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}
