package cli

import (
	"bufio"
	"fmt"
	"net/url"
	"slices"
	"strings"

	"github.com/dynogrid/grid/internal/schema"
)

var appsCmd = &command{
	name:    "apps",
	aliases: []string{"apps:list", "list"},
	summary: "list your apps",
	flags:   []flag{jsonFlag},
	run:     runApps,
}

var jsonFlag = flag{name: "json", help: "print JSON"}

func runApps(c *call) error {
	api, err := c.client()
	if err != nil {
		return err
	}
	var acct schema.Account
	if err := api.get(c.ctx, "/account", &acct); err != nil {
		return err
	}
	var apps []schema.App
	if err := api.get(c.ctx, "/users/~/apps", &apps); err != nil {
		return err
	}
	out := c.env.Stdout
	if c.flagSet("json") {
		return printJSON(out, apps)
	}
	if len(apps) == 0 {
		fmt.Fprintln(out, "You have no apps.")
		return nil
	}
	var own, others [][]string
	for _, a := range apps {
		name := a.Name
		if a.Maintenance {
			name += " (maintenance)"
		}
		if a.Owner.Email == acct.Email {
			own = append(own, []string{name})
		} else {
			others = append(others, []string{name, a.Owner.Email})
		}
	}
	if len(own) > 0 {
		header(out, acct.Email+" Apps")
		printTable(out, own)
	}
	if len(others) > 0 {
		if len(own) > 0 {
			fmt.Fprintln(out)
		}
		header(out, "Collaborated Apps")
		printTable(out, others)
	}
	return nil
}

var appsCreateCmd = &command{
	name:    "apps:create",
	aliases: []string{"create"},
	args:    "[NAME]",
	summary: "create a new app (a name is generated if none is given)",
	flags:   []flag{{name: "remote", short: "r", value: "REMOTE", help: "name of the git remote to add when run in a repository's top folder (default grid)"}},
	run:     runAppsCreate,
}

func runAppsCreate(c *call) error {
	if len(c.args) > 1 {
		return c.usageErr("apps:create takes at most one app name, not %d arguments.", len(c.args))
	}
	api, err := c.client()
	if err != nil {
		return err
	}
	var body schema.AppCreate
	label := "Creating app"
	if len(c.args) == 1 {
		body.Name = c.args[0]
		label = "Creating " + hexagon + body.Name
	}
	out := c.env.Stdout
	fmt.Fprintf(out, "%s... ", label)
	var app schema.App
	if _, err := api.call(c.ctx, "POST", "/apps", body, &app); err != nil {
		fmt.Fprintln(out, "!")
		return err
	}
	if body.Name == "" {
		fmt.Fprintf(out, "done, %s%s\n", hexagon, app.Name)
	} else {
		fmt.Fprintln(out, "done")
	}
	fmt.Fprintf(out, "%s | %s\n", app.WebURL, app.GitURL)
	return c.addRemote(app)
}

// addRemote adds a git remote for a new app when the command runs in the
// top folder of a repository (as the Heroku CLI does in a repository; the
// top-folder rule keeps it from touching enclosing repositories).
func (c *call) addRemote(app schema.App) error {
	name := c.opts["remote"]
	if name == "" {
		name = "grid"
	}
	dir := c.env.Dir
	if top := gitTopLevel(c.ctx, dir); top == "" || !sameDir(top, dir) {
		return nil
	}
	for _, r := range gitRemotes(c.ctx, dir) {
		if r.name == name {
			return nil
		}
	}
	if err := git(c.ctx, dir, "remote", "add", name, app.GitURL); err != nil {
		return err
	}
	fmt.Fprintf(c.env.Stdout, "Git remote %s added\n", name)
	return nil
}

var appsInfoCmd = &command{
	name:    "apps:info",
	aliases: []string{"info"},
	summary: "show an app's details",
	flags:   []flag{jsonFlag},
	app:     true,
	run:     runAppsInfo,
}

func runAppsInfo(c *call) error {
	name, api, err := c.appAndClient()
	if err != nil {
		return err
	}
	var app schema.App
	if err := api.get(c.ctx, "/apps/"+url.PathEscape(name), &app); err != nil {
		return err
	}
	var dynos []schema.Dyno
	if err := api.get(c.ctx, "/apps/"+url.PathEscape(name)+"/dynos", &dynos); err != nil {
		dynos = nil // as the Heroku CLI does: the app's details still help
	}
	out := c.env.Stdout
	if c.flagSet("json") {
		return printJSON(out, map[string]any{"app": app, "dynos": dynos})
	}
	header(out, app.Name)
	var fields [][2]string
	if len(dynos) > 0 {
		fields = append(fields, [2]string{"Dynos", dynoCounts(dynos)})
	}
	fields = append(fields, [2]string{"Git URL", app.GitURL})
	if app.Maintenance {
		fields = append(fields, [2]string{"Maintenance", "on"})
	}
	fields = append(fields, [2]string{"Owner", app.Owner.Email}, [2]string{"Region", app.Region.Name})
	if app.SlugSize != nil {
		fields = append(fields, [2]string{"Slug Size", humanBytes(*app.SlugSize)})
	}
	fields = append(fields, [2]string{"Stack", app.Stack.Name}, [2]string{"Web URL", app.WebURL})
	printFields(out, fields)
	return nil
}

// dynoCounts renders "web: 2, worker: 1".
func dynoCounts(ds []schema.Dyno) string {
	counts := map[string]int{}
	var types []string
	for _, d := range ds {
		if counts[d.Type] == 0 {
			types = append(types, d.Type)
		}
		counts[d.Type]++
	}
	sortTypes(types)
	parts := make([]string, len(types))
	for i, t := range types {
		parts[i] = fmt.Sprintf("%s: %d", t, counts[t])
	}
	return strings.Join(parts, ", ")
}

var appsDestroyCmd = &command{
	name:    "apps:destroy",
	aliases: []string{"destroy"},
	args:    "[APP]",
	summary: "permanently destroy an app, its releases, config and dynos",
	flags:   []flag{{name: "confirm", short: "c", value: "APP", help: "the app's name, to skip the confirmation prompt"}},
	app:     true,
	run:     runAppsDestroy,
}

func runAppsDestroy(c *call) error {
	if len(c.args) > 1 {
		return c.usageErr("apps:destroy takes one app name.")
	}
	if len(c.args) == 1 {
		if a := c.opts["app"]; a != "" && a != c.args[0] {
			return c.usageErr("Two different apps given: %s and %s.", c.args[0], a)
		}
		c.app = c.args[0]
	}
	name, api, err := c.appAndClient()
	if err != nil {
		return err
	}
	if err := api.get(c.ctx, "/apps/"+url.PathEscape(name), nil); err != nil {
		return err
	}
	if err := c.confirm(name); err != nil {
		return err
	}
	out := c.env.Stdout
	fmt.Fprintf(out, "Destroying %s%s (including all add-ons)... ", hexagon, name)
	var app schema.App
	if _, err := api.call(c.ctx, "DELETE", "/apps/"+url.PathEscape(name), nil, &app); err != nil {
		fmt.Fprintln(out, "!")
		return err
	}
	fmt.Fprintln(out, "done")
	return c.removeRemotes(api.base, name)
}

// confirm asks the user to type the app's name unless --confirm gave it.
func (c *call) confirm(app string) error {
	given, ok := c.opts["confirm"]
	if !ok {
		printError(c.env.Stderr, "WARNING: This will delete "+hexagon+app+" including all add-ons.\nTo proceed, type "+app+" or re-run this command with --confirm "+app)
		fmt.Fprint(c.env.Stderr, "\n> ")
		line, _ := bufio.NewReader(c.env.Stdin).ReadString('\n')
		given = strings.TrimSpace(line)
	}
	if given != app {
		return fmt.Errorf("Confirmation did not match %s. Aborted.", app)
	}
	return nil
}

// removeRemotes removes the working directory's git remotes that point at
// the destroyed app, as the Heroku CLI does.
func (c *call) removeRemotes(apiURL, app string) error {
	for _, r := range gitRemotes(c.ctx, c.env.Dir) {
		if a, ok := appFromURL(r.url, apiURL); ok && a == app {
			if err := git(c.ctx, c.env.Dir, "remote", "remove", r.name); err != nil {
				return err
			}
			fmt.Fprintf(c.env.Stdout, "Git remote %s removed\n", r.name)
		}
	}
	return nil
}

// appAndClient resolves the app and the API client.
func (c *call) appAndClient() (string, *client, error) {
	api, err := c.client()
	if err != nil {
		return "", nil, err
	}
	name, err := c.appName()
	return name, api, err
}

// appPath is the API path of the app's resource.
func (c *call) appPath(name string, parts ...string) string {
	return "/apps/" + url.PathEscape(name) + strings.Join(append([]string{""}, parts...), "/")
}

// sortTypes orders process types web first, then alphabetically.
func sortTypes(types []string) {
	slices.SortFunc(types, func(a, b string) int {
		switch {
		case a == b:
			return 0
		case a == "web":
			return -1
		case b == "web":
			return 1
		}
		return strings.Compare(a, b)
	})
}
