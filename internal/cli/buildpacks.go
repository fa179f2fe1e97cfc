package cli

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/dynogrid/grid/internal/schema"
)

// An app's buildpack list is edited here and replaced as a whole on the
// API (PUT buildpack-installations), as the Heroku CLI does. Positions
// (-i) count from 1.

var indexFlag = flag{name: "index", short: "i", value: "N", help: "the position in the list, from 1"}

var buildpacksCmd = &command{
	name:    "buildpacks",
	summary: "list the buildpacks an app's builds use",
	flags:   []flag{jsonFlag},
	app:     true,
	run:     runBuildpacks,
}

var buildpacksSetCmd = &command{
	name:    "buildpacks:set",
	args:    "BUILDPACK",
	summary: "set the buildpack (heroku/go, a git URL#ref, a .tgz URL) at a position, by default the first",
	flags:   []flag{indexFlag},
	app:     true,
	run:     func(c *call) error { return editBuildpacks(c, setBuildpack) },
}

var buildpacksAddCmd = &command{
	name:    "buildpacks:add",
	args:    "BUILDPACK",
	summary: "add a buildpack at a position, by default the end",
	flags:   []flag{indexFlag},
	app:     true,
	run:     func(c *call) error { return editBuildpacks(c, addBuildpack) },
}

var buildpacksRemoveCmd = &command{
	name:    "buildpacks:remove",
	args:    "[BUILDPACK]",
	summary: "remove a buildpack, given or at a position",
	flags:   []flag{indexFlag},
	app:     true,
	run:     func(c *call) error { return editBuildpacks(c, removeBuildpack) },
}

var buildpacksClearCmd = &command{
	name:    "buildpacks:clear",
	summary: "clear the list: builds detect a built-in buildpack again",
	app:     true,
	run:     func(c *call) error { return editBuildpacks(c, clearBuildpacks) },
}

func runBuildpacks(c *call) error {
	if len(c.args) > 0 {
		return c.usageErr("buildpacks takes no arguments.")
	}
	name, api, err := c.appAndClient()
	if err != nil {
		return err
	}
	bis, err := getBuildpacks(c, api, name)
	if err != nil {
		return err
	}
	list, out := buildpackURLs(bis), c.env.Stdout
	switch {
	case c.flagSet("json"):
		return printJSON(out, bis)
	case len(list) == 0:
		fmt.Fprintf(out, "%s%s has no Buildpack URL set.\n", hexagon, name)
	case len(list) == 1:
		header(out, hexagon+name+" Buildpack URL")
		fmt.Fprintln(out, list[0])
	default:
		header(out, hexagon+name+" Buildpack URLs")
		for i, u := range list {
			fmt.Fprintf(out, "%d. %s\n", i+1, u)
		}
	}
	return nil
}

func getBuildpacks(c *call, api *client, app string) ([]schema.BuildpackInstallation, error) {
	var bis []schema.BuildpackInstallation
	err := api.get(c.ctx, c.appPath(app, "buildpack-installations"), &bis)
	return bis, err
}

func buildpackURLs(bis []schema.BuildpackInstallation) []string {
	list := make([]string, len(bis))
	for i, bi := range bis {
		list[i] = bi.Buildpack.URL
	}
	return list
}

// edit changes the list for a command: the new list and the verb for
// the message ("set"), or a usage error.
type edit func(c *call, list []string, index int) ([]string, string, error)

func editBuildpacks(c *call, f edit) error {
	index := 0
	if v, ok := c.opts["index"]; ok {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return c.usageErr("The index must be a position from 1, not %q.", v)
		}
		index = n
	}
	name, api, err := c.appAndClient()
	if err != nil {
		return err
	}
	bis, err := getBuildpacks(c, api, name)
	if err != nil {
		return err
	}
	next, verb, err := f(c, buildpackURLs(bis), index)
	if err != nil {
		return err
	}
	updates := make([]schema.BuildpackUpdate, len(next))
	for i, u := range next {
		updates[i] = schema.BuildpackUpdate{Buildpack: u}
	}
	if _, err := api.call(c.ctx, "PUT", c.appPath(name, "buildpack-installations"),
		schema.BuildpackInstallationsUpdate{Updates: &updates}, &bis, "Range", ""); err != nil {
		return err
	}
	out := c.env.Stdout
	switch len(bis) {
	case 0:
		fmt.Fprintf(out, "Buildpack%s %s. Next release on %s%s will detect buildpacks normally.\n", plural(verb), verb, hexagon, name)
		return nil
	case 1:
		fmt.Fprintf(out, "Buildpack %s. Next release on %s%s will use %s.\n", verb, hexagon, name, bis[0].Buildpack.URL)
	default:
		fmt.Fprintf(out, "Buildpack %s. Next release on %s%s will use:\n", verb, hexagon, name)
		for i, bi := range bis {
			fmt.Fprintf(out, "  %d. %s\n", i+1, bi.Buildpack.URL)
		}
	}
	these := "this buildpack"
	if len(bis) > 1 {
		these = "these buildpacks"
	}
	fmt.Fprintf(out, "Run git push to create a new release using %s.\n", these)
	return nil
}

// plural makes "Buildpacks cleared" read as English.
func plural(verb string) string {
	if verb == "cleared" {
		return "s"
	}
	return ""
}

// oneBuildpack is the single BUILDPACK argument, which must not be in
// the list already (except at skip, a 0-based index or -1).
func oneBuildpack(c *call, list []string, skip int) (string, error) {
	if len(c.args) != 1 {
		return "", c.usageErr("Give one buildpack: a name like heroku/go, a git URL (with #ref) or a .tgz URL.")
	}
	bp := strings.TrimPrefix(c.args[0], "urn:buildpack:")
	if i := slices.Index(list, bp); i >= 0 && i != skip {
		return "", fmt.Errorf("The buildpack %s is already set on your app.", bp)
	}
	return bp, nil
}

func setBuildpack(c *call, list []string, index int) ([]string, string, error) {
	index = max(index, 1)
	if index > len(list)+1 {
		return nil, "", fmt.Errorf("Index %d is past the end of the list (%d buildpacks); use %d to add one at the end.", index, len(list), len(list)+1)
	}
	bp, err := oneBuildpack(c, list, index-1)
	if err != nil {
		return nil, "", err
	}
	if index == len(list)+1 {
		return append(list, bp), "set", nil
	}
	list[index-1] = bp
	return list, "set", nil
}

func addBuildpack(c *call, list []string, index int) ([]string, string, error) {
	bp, err := oneBuildpack(c, list, -1)
	if err != nil {
		return nil, "", err
	}
	if index == 0 || index > len(list) {
		return append(list, bp), "added", nil
	}
	return slices.Insert(list, index-1, bp), "added", nil
}

func removeBuildpack(c *call, list []string, index int) ([]string, string, error) {
	switch {
	case len(c.args) == 1 && index == 0:
		bp := strings.TrimPrefix(c.args[0], "urn:buildpack:")
		i := slices.Index(list, bp)
		if i < 0 {
			return nil, "", fmt.Errorf("The buildpack %s is not set on your app.", bp)
		}
		return slices.Delete(list, i, i+1), "removed", nil
	case len(c.args) == 0 && index > 0:
		if index > len(list) {
			return nil, "", fmt.Errorf("There is no buildpack at index %d: the app has %d.", index, len(list))
		}
		return slices.Delete(list, index-1, index), "removed", nil
	}
	return nil, "", c.usageErr("Give either a buildpack or --index, not both or neither.")
}

func clearBuildpacks(c *call, _ []string, index int) ([]string, string, error) {
	if len(c.args) > 0 || index > 0 {
		return nil, "", c.usageErr("buildpacks:clear takes no arguments.")
	}
	return []string{}, "cleared", nil
}
