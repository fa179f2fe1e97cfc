package cli

import (
	"fmt"
	"strconv"

	"github.com/dynogrid/grid/internal/schema"
)

var releasesCmd = &command{
	name:    "releases",
	summary: "list an app's releases, newest first",
	flags: []flag{
		{name: "num", short: "n", value: "N", help: "how many releases to show (default 15)"},
		jsonFlag,
	},
	app: true,
	run: runReleases,
}

func runReleases(c *call) error {
	n := 15
	if v, ok := c.opts["num"]; ok {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 1 {
			return c.usageErr("--num must be a positive number, not %q.", v)
		}
	}
	name, api, err := c.appAndClient()
	if err != nil {
		return err
	}
	var rs []schema.Release
	rng := fmt.Sprintf("version ..; max=%d, order=desc", n)
	if err := api.get(c.ctx, c.appPath(name, "releases"), &rs, "Range", rng); err != nil {
		return err
	}
	out := c.env.Stdout
	if c.flagSet("json") {
		return printJSON(out, rs)
	}
	if len(rs) == 0 {
		fmt.Fprintf(out, "%s%s has no releases.\n", hexagon, name)
		return nil
	}
	title := name + " Releases"
	for _, r := range rs {
		if r.Current {
			title += fmt.Sprintf(" - Current: v%d", r.Version)
		}
	}
	header(out, title)
	clk := c.clock()
	rows := make([][]string, len(rs))
	for i, r := range rs {
		desc := r.Description
		if s := statusText(r.Status); s != "" {
			desc += " " + s
		}
		rows[i] = []string{"v" + strconv.Itoa(r.Version), desc, r.User.Email, clk.format(r.CreatedAt)}
	}
	printTable(out, rows)
	return nil
}

// statusText is what the Heroku CLI appends for unfinished releases.
func statusText(status string) string {
	switch status {
	case "pending":
		return "release command executing"
	case "failed":
		return "release command failed"
	case "expired":
		return "release expired"
	}
	return ""
}

var rollbackCmd = &command{
	name:    "rollback",
	aliases: []string{"releases:rollback"},
	args:    "[vN]",
	summary: "roll back to an earlier release's code and config (default: the one before the current)",
	app:     true,
	run:     runRollback,
}

func runRollback(c *call) error {
	if len(c.args) > 1 {
		return c.usageErr("rollback takes one release version.")
	}
	name, api, err := c.appAndClient()
	if err != nil {
		return err
	}
	target, err := c.rollbackTarget(api, name)
	if err != nil {
		return err
	}
	out := c.env.Stdout
	fmt.Fprintf(out, "Rolling back %s%s to v%d... ", hexagon, name, target.Version)
	var rel schema.Release
	if _, err := api.call(c.ctx, "POST", c.appPath(name, "releases"), map[string]string{"release": target.ID}, &rel); err != nil {
		fmt.Fprintln(out, "!")
		return err
	}
	fmt.Fprintf(out, "done, v%d\n", rel.Version)
	printError(c.env.Stderr, "Rollback affects code and config vars; it doesn't add or remove addons.")
	printError(c.env.Stderr, fmt.Sprintf("To undo, run: grid rollback v%d", rel.Version-1))
	return nil
}

// rollbackTarget is the release named on the command line, or (as in the
// Heroku CLI) the newest rollback-eligible release before the current one.
func (c *call) rollbackTarget(api *client, app string) (schema.Release, error) {
	var rel schema.Release
	if len(c.args) == 1 {
		return c.releaseNamed(api, app, c.args[0])
	}
	var rs []schema.Release
	if err := api.get(c.ctx, c.appPath(app, "releases"), &rs, "Range", "version ..; max=10, order=desc"); err != nil {
		return rel, err
	}
	var eligible []schema.Release
	for _, r := range rs {
		if r.EligibleForRollback {
			eligible = append(eligible, r)
		}
	}
	if len(eligible) < 2 {
		return rel, fmt.Errorf("No release found to roll back to on %s%s.", hexagon, app)
	}
	return eligible[1], nil
}
