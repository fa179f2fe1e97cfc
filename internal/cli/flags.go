package cli

import (
	"fmt"
	"strings"
)

// flag is a command-line option. Flags may come before, between or after
// positional arguments, as in the Heroku CLI (`config:set A=1 -a app`);
// "--" ends them.
type flag struct {
	name  string // long name, without "--"
	short string // one letter, without "-"; may be empty
	value string // placeholder of the value ("APP"); empty for a switch
	help  string
}

// parseFlags splits args into positional arguments and options keyed by
// long name. Switches get the value "true".
func parseFlags(flags []flag, args []string) (pos []string, opts map[string]string, err error) {
	return parseFlagsUntil(flags, args, false)
}

// parseFlagsUntil is parseFlags; with leading, flags end at the first
// positional argument, so that a command line to run keeps its own
// flags (`grid run -a app ls -la`).
func parseFlagsUntil(flags []flag, args []string, leading bool) (pos []string, opts map[string]string, err error) {
	opts = map[string]string{}
	find := func(arg string) (flag, string, bool, error) {
		var name, val string
		var hasVal bool
		switch {
		case strings.HasPrefix(arg, "--"):
			name, val, hasVal = strings.Cut(arg[2:], "=")
			for _, f := range flags {
				if f.name == name {
					return f, val, hasVal, nil
				}
			}
		default:
			name = arg[1:2]
			if len(arg) > 2 {
				val, hasVal = strings.TrimPrefix(arg[2:], "="), true
			}
			for _, f := range flags {
				if f.short != "" && f.short == name {
					return f, val, hasVal, nil
				}
			}
		}
		return flag{}, "", false, fmt.Errorf("unknown flag %s", arg)
	}
	for i := 0; i < len(args); i++ {
		arg := args[i]
		if arg == "--" {
			return append(pos, args[i+1:]...), opts, nil
		}
		if len(arg) < 2 || arg[0] != '-' {
			if leading {
				return append(pos, args[i:]...), opts, nil
			}
			pos = append(pos, arg)
			continue
		}
		f, val, hasVal, err := find(arg)
		if err != nil {
			return nil, nil, err
		}
		switch {
		case f.value == "" && hasVal:
			return nil, nil, fmt.Errorf("flag --%s takes no value", f.name)
		case f.value == "":
			val = "true"
		case !hasVal:
			if i+1 >= len(args) {
				return nil, nil, fmt.Errorf("flag --%s needs a value (%s)", f.name, f.value)
			}
			i++
			val = args[i]
		}
		opts[f.name] = val
	}
	return pos, opts, nil
}
