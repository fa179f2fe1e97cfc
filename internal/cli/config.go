package cli

import (
	"fmt"
	"slices"
	"strings"

	"github.com/dynogrid/grid/internal/schema"
)

var configCmd = &command{
	name:    "config",
	aliases: []string{"config:list"},
	summary: "show an app's config vars",
	flags: []flag{
		{name: "shell", short: "s", help: "print as shell assignments (KEY='value')"},
		jsonFlag,
	},
	app: true,
	run: runConfig,
}

func runConfig(c *call) error {
	name, api, err := c.appAndClient()
	if err != nil {
		return err
	}
	var cfg schema.ConfigVars
	if err := api.get(c.ctx, c.appPath(name, "config-vars"), &cfg); err != nil {
		return err
	}
	out := c.env.Stdout
	keys := sortedKeys(cfg)
	switch {
	case c.flagSet("json"):
		return printJSON(out, cfg)
	case c.flagSet("shell"):
		for _, k := range keys {
			fmt.Fprintf(out, "%s=%s\n", k, shellQuote(cfg[k]))
		}
		return nil
	}
	header(out, name+" Config Vars")
	printFields(out, configFields(cfg, keys))
	return nil
}

func configFields(cfg schema.ConfigVars, keys []string) [][2]string {
	fields := make([][2]string, len(keys))
	for i, k := range keys {
		fields[i] = [2]string{k, cfg[k]}
	}
	return fields
}

func sortedKeys(m schema.ConfigVars) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// shellQuote quotes s for a POSIX shell when it needs it.
func shellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./:@%+=,", r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

var configGetCmd = &command{
	name:    "config:get",
	args:    "KEY",
	summary: "print one config var's value",
	flags:   []flag{{name: "shell", short: "s", help: "print as a shell assignment (KEY='value')"}},
	app:     true,
	run:     runConfigGet,
}

func runConfigGet(c *call) error {
	if len(c.args) != 1 {
		return c.usageErr("Say which config var to print.")
	}
	name, api, err := c.appAndClient()
	if err != nil {
		return err
	}
	var cfg schema.ConfigVars
	if err := api.get(c.ctx, c.appPath(name, "config-vars"), &cfg); err != nil {
		return err
	}
	k := c.args[0]
	if c.flagSet("shell") {
		fmt.Fprintf(c.env.Stdout, "%s=%s\n", k, shellQuote(cfg[k]))
		return nil
	}
	fmt.Fprintln(c.env.Stdout, cfg[k])
	return nil
}

var configSetCmd = &command{
	name:    "config:set",
	aliases: []string{"config:add"},
	args:    "KEY=VALUE...",
	summary: "set config vars and restart the app's dynos",
	app:     true,
	run:     runConfigSet,
}

func runConfigSet(c *call) error {
	if len(c.args) == 0 {
		return c.usageErr("Give at least one KEY=VALUE.")
	}
	patch := map[string]*string{}
	var keys []string
	for _, arg := range c.args {
		k, v, ok := strings.Cut(arg, "=")
		if !ok || k == "" {
			return c.usageErr("%s is not KEY=VALUE.", arg)
		}
		if _, dup := patch[k]; !dup {
			keys = append(keys, k)
		}
		patch[k] = &v
	}
	name, api, err := c.appAndClient()
	if err != nil {
		return err
	}
	cfg, err := c.patchConfig(api, name, "Setting "+strings.Join(keys, ", "), patch)
	if err != nil {
		return err
	}
	slices.Sort(keys)
	printFields(c.env.Stdout, configFields(cfg, keys))
	return nil
}

var configUnsetCmd = &command{
	name:    "config:unset",
	aliases: []string{"config:remove"},
	args:    "KEY...",
	summary: "remove config vars and restart the app's dynos",
	app:     true,
	run:     runConfigUnset,
}

func runConfigUnset(c *call) error {
	if len(c.args) == 0 {
		return c.usageErr("Give at least one KEY to unset.")
	}
	patch := map[string]*string{}
	for _, k := range c.args {
		patch[k] = nil
	}
	name, api, err := c.appAndClient()
	if err != nil {
		return err
	}
	_, err = c.patchConfig(api, name, "Unsetting "+strings.Join(c.args, ", "), patch)
	return err
}

// patchConfig sends a config PATCH and prints
// "<label> and restarting ⬢ app... done, vN" with the newest release.
func (c *call) patchConfig(api *client, app, label string, patch map[string]*string) (schema.ConfigVars, error) {
	out := c.env.Stdout
	fmt.Fprintf(out, "%s and restarting %s%s... ", label, hexagon, app)
	var cfg schema.ConfigVars
	if _, err := api.call(c.ctx, "PATCH", c.appPath(app, "config-vars"), patch, &cfg); err != nil {
		fmt.Fprintln(out, "!")
		return nil, err
	}
	v, err := c.currentVersion(api, app)
	if err != nil {
		fmt.Fprintln(out, "!")
		return nil, err
	}
	fmt.Fprintf(out, "done, v%d\n", v)
	return cfg, nil
}

// currentVersion is the version of the app's newest release, read the way
// the Heroku CLI reads it.
func (c *call) currentVersion(api *client, app string) (int, error) {
	var rs []schema.Release
	if err := api.get(c.ctx, c.appPath(app, "releases"), &rs, "Range", "version ..; order=desc,max=1"); err != nil {
		return 0, err
	}
	if len(rs) == 0 {
		return 0, fmt.Errorf("app %s has no releases", app)
	}
	return rs[0].Version, nil
}
