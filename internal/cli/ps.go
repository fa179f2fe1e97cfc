package cli

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/dynogrid/grid/internal/schema"
)

var psCmd = &command{
	name:    "ps",
	args:    "[TYPE...]",
	summary: "list an app's dynos",
	flags:   []flag{jsonFlag},
	app:     true,
	run:     runPs,
}

func runPs(c *call) error {
	name, api, err := c.appAndClient()
	if err != nil {
		return err
	}
	var dynos []schema.Dyno
	if err := api.get(c.ctx, c.appPath(name, "dynos"), &dynos); err != nil {
		return err
	}
	if len(c.args) > 0 {
		dynos = slices.DeleteFunc(dynos, func(d schema.Dyno) bool { return !slices.Contains(c.args, d.Type) })
	}
	out := c.env.Stdout
	if c.flagSet("json") {
		return printJSON(out, dynos)
	}
	if len(dynos) == 0 {
		fmt.Fprintf(out, "No dynos on %s%s\n", hexagon, name)
		return nil
	}
	// One group per process type and command, as the Heroku CLI shows them.
	type group struct {
		title string
		dynos []schema.Dyno
	}
	var groups []*group
	byKey := map[string]*group{}
	slices.SortStableFunc(dynos, func(a, b schema.Dyno) int { return compareDynoNames(a.Name, b.Name) })
	for _, d := range dynos {
		key := d.Type + "\x00" + d.Command
		g := byKey[key]
		if g == nil {
			g = &group{title: fmt.Sprintf("%s (%s): %s", d.Type, d.Size, d.Command)}
			byKey[key] = g
			groups = append(groups, g)
		}
		g.dynos = append(g.dynos, d)
	}
	clk := c.clock()
	for i, g := range groups {
		if i > 0 {
			fmt.Fprintln(out)
		}
		header(out, fmt.Sprintf("%s (%d)", g.title, len(g.dynos)))
		for _, d := range g.dynos {
			line := fmt.Sprintf("%s: %s %s", d.Name, d.State, clk.format(d.UpdatedAt))
			if d.Host != nil {
				line += " on " + d.Host.Name
			}
			fmt.Fprintln(out, line)
		}
	}
	return nil
}

// compareDynoNames orders web before other types, then "web.2" before
// "web.10".
func compareDynoNames(a, b string) int {
	ta, ia := splitDynoName(a)
	tb, ib := splitDynoName(b)
	if ta != tb {
		types := []string{ta, tb}
		sortTypes(types)
		if types[0] == ta {
			return -1
		}
		return 1
	}
	return ia - ib
}

func splitDynoName(name string) (string, int) {
	typ, idx, _ := strings.Cut(name, ".")
	n, _ := strconv.Atoi(idx)
	return typ, n
}

var psScaleCmd = &command{
	name:    "ps:scale",
	aliases: []string{"scale"},
	args:    "[TYPE=N[:SIZE] | TYPE+N | TYPE-N ...]",
	summary: "scale dyno quantity and size; with no arguments, show the formation",
	app:     true,
	run:     runPsScale,
}

// scaleArgRE is a scaling argument: web=3, worker+1, web=2:standard-2x,
// web:performance-m. The type is greedy so "my-worker-1" means
// my-worker minus one.
var scaleArgRE = regexp.MustCompile(`^([\w-]+)([=+-]\d+)(?::([\w-]+))?$|^([\w-]+):([\w-]+)$`)

func runPsScale(c *call) error {
	var updates []schema.FormationUpdate
	for _, arg := range c.args {
		u, ok := parseScaleArg(arg)
		if !ok {
			return c.usageErr("%s is not a scaling argument: use TYPE=N, TYPE+N or TYPE-N, optionally with :SIZE (web=2:standard-2x).", arg)
		}
		updates = append(updates, u)
	}
	name, api, err := c.appAndClient()
	if err != nil {
		return err
	}
	out := c.env.Stdout
	if len(updates) == 0 {
		var fs []schema.Formation
		if err := api.get(c.ctx, c.appPath(name, "formation"), &fs); err != nil {
			return err
		}
		if len(fs) == 0 {
			return fmt.Errorf("No process types on %s%s.\nPush code with a Procfile to add process types.", hexagon, name)
		}
		fmt.Fprintln(out, formationSummary(fs, "=", " "))
		return nil
	}
	return c.updateFormation(api, name, "Scaling dynos... ", updates)
}

// updateFormation sends a batch of formation updates, saying what it does
// with label, and prints the updated process types.
func (c *call) updateFormation(api *client, app, label string, updates []schema.FormationUpdate) error {
	out := c.env.Stdout
	fmt.Fprint(out, label)
	var fs []schema.Formation
	if _, err := api.call(c.ctx, "PATCH", c.appPath(app, "formation"), schema.FormationBatchUpdate{Updates: updates}, &fs); err != nil {
		fmt.Fprintln(out, "!")
		return err
	}
	fmt.Fprintf(out, "done, now running %s\n", formationSummary(fs, " at ", ", "))
	return nil
}

func parseScaleArg(arg string) (schema.FormationUpdate, bool) {
	m := scaleArgRE.FindStringSubmatch(arg)
	if m == nil {
		return schema.FormationUpdate{}, false
	}
	if m[4] != "" {
		return schema.FormationUpdate{Type: m[4], Size: m[5]}, true
	}
	q := strings.TrimPrefix(m[2], "=")
	return schema.FormationUpdate{Type: m[1], Quantity: (*schema.Quantity)(&q), Size: m[3]}, true
}

// formationSummary renders "web=1:Standard-1X worker=0:Basic" (sep "=",
// join " ") or "web at 1:Standard-1X, worker at 0:Basic".
func formationSummary(fs []schema.Formation, sep, join string) string {
	parts := make([]string, len(fs))
	for i, f := range fs {
		parts[i] = fmt.Sprintf("%s%s%d:%s", f.Type, sep, f.Quantity, f.Size)
	}
	return strings.Join(parts, join)
}

var psTypeCmd = &command{
	name:    "ps:type",
	aliases: []string{"ps:resize", "resize"},
	args:    "[TYPE=SIZE ... | SIZE]",
	summary: "set the dyno size of process types (one SIZE: of every type); with no arguments, show the formation",
	app:     true,
	run:     runPsType,
}

// typeArgRE is a ps:type argument: web=standard-2x, or a size alone.
var typeArgRE = regexp.MustCompile(`^(?:([\w-]+)=)?([\w-]+)$`)

func runPsType(c *call) error {
	if len(c.args) == 0 {
		return runPsScale(c)
	}
	var updates []schema.FormationUpdate
	every := ""
	for _, arg := range c.args {
		m := typeArgRE.FindStringSubmatch(arg)
		if m == nil || m[1] == "" && len(c.args) > 1 {
			return c.usageErr("%s is not a type argument: use TYPE=SIZE (web=standard-2x), or one SIZE for every process type.", arg)
		}
		if m[1] == "" {
			every = m[2]
			break
		}
		updates = append(updates, schema.FormationUpdate{Type: m[1], Size: m[2]})
	}
	name, api, err := c.appAndClient()
	if err != nil {
		return err
	}
	if every != "" {
		var fs []schema.Formation
		if err := api.get(c.ctx, c.appPath(name, "formation"), &fs); err != nil {
			return err
		}
		for _, f := range fs {
			updates = append(updates, schema.FormationUpdate{Type: f.Type, Size: every})
		}
		if len(updates) == 0 {
			return fmt.Errorf("No process types on %s%s.\nPush code with a Procfile to add process types.", hexagon, name)
		}
	}
	return c.updateFormation(api, name, "Changing dyno sizes... ", updates)
}

var psRestartCmd = &command{
	name:    "ps:restart",
	aliases: []string{"restart"},
	args:    "[TYPE | DYNO]",
	summary: "restart all dynos, the dynos of one process type, or one dyno",
	flags: []flag{
		{name: "process-type", short: "p", value: "TYPE", help: "restart the dynos of this process type"},
		{name: "dyno-name", short: "d", value: "DYNO", help: "restart this dyno (web.1)"},
	},
	app: true,
	run: runPsRestart,
}

func runPsRestart(c *call) error {
	target, err := c.dynoTarget(false)
	if err != nil {
		return err
	}
	name, api, err := c.appAndClient()
	if err != nil {
		return err
	}
	label, path := "Restarting dynos on ", c.appPath(name, "dynos")
	switch {
	case strings.Contains(target, "."):
		label, path = "Restarting "+target+" dyno on ", c.appPath(name, "dynos", target)
	case target != "":
		label, path = "Restarting "+target+" dynos on ", c.appPath(name, "formations", target)
	}
	return c.action(label+hexagon+name, func() error {
		_, err := api.call(c.ctx, "DELETE", path, nil, nil)
		return err
	})
}

var psStopCmd = &command{
	name:    "ps:stop",
	aliases: []string{"stop", "ps:kill", "kill"}, // Heroku's ps:kill is ps:stop too
	args:    "TYPE | DYNO",
	summary: "stop one dyno or every dyno of a type (the formation starts them again, as on Heroku)",
	flags: []flag{
		{name: "process-type", short: "p", value: "TYPE", help: "stop the dynos of this process type"},
		{name: "dyno-name", short: "d", value: "DYNO", help: "stop this dyno (web.1)"},
	},
	app: true,
	run: runPsStop,
}

func runPsStop(c *call) error {
	target, err := c.dynoTarget(true)
	if err != nil {
		return err
	}
	name, api, err := c.appAndClient()
	if err != nil {
		return err
	}
	label, path := "Stopping "+target+" dynos on ", c.appPath(name, "formations", target, "actions", "stop")
	if strings.Contains(target, ".") {
		label, path = "Stopping "+target+" dyno on ", c.appPath(name, "dynos", target, "actions", "stop")
	}
	return c.action(label+hexagon+name, func() error {
		_, err := api.call(c.ctx, "POST", path, nil, nil)
		return err
	})
}

var dynoTargetRE = regexp.MustCompile(`^[\w-]+(\.\d+)?$`)

// dynoTarget is the dyno or process type from the argument or -d/-p.
func (c *call) dynoTarget(required bool) (string, error) {
	var given []string
	given = append(given, c.args...)
	for _, f := range []string{"process-type", "dyno-name"} {
		if v := c.opts[f]; v != "" {
			given = append(given, v)
		}
	}
	switch {
	case len(given) > 1:
		return "", c.usageErr("Give one process type or dyno, not %s.", strings.Join(given, " and "))
	case len(given) == 0 && required:
		return "", c.usageErr("Say which dyno (web.1) or process type (web) to stop.")
	case len(given) == 0:
		return "", nil
	}
	if !dynoTargetRE.MatchString(given[0]) {
		return "", c.usageErr("%s is not a process type (web) or dyno name (web.1).", given[0])
	}
	return given[0], nil
}

// action prints "<label>... done" around f, or "<label>... !" if it fails.
func (c *call) action(label string, f func() error) error {
	fmt.Fprintf(c.env.Stdout, "%s... ", label)
	if err := f(); err != nil {
		fmt.Fprintln(c.env.Stdout, "!")
		return err
	}
	fmt.Fprintln(c.env.Stdout, "done")
	return nil
}
