package cli

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/dynogrid/grid/internal/schema"
)

// A release's details and its slug: releases:info shows what a release
// runs (commit, buildpack, process types, slug size) and its config;
// slugs:download fetches the slug archive itself.

var releasesInfoCmd = &command{
	name:    "releases:info",
	args:    "[vN]",
	summary: "show a release (default: the current one): what it runs and its config vars",
	flags:   []flag{jsonFlag},
	app:     true,
	run:     runReleasesInfo,
}

var slugsDownloadCmd = &command{
	name:    "slugs:download",
	args:    "[vN]",
	summary: "download the slug (a tar.gz of /app) of a release (default: the current one)",
	flags:   []flag{{name: "output", short: "o", value: "FILE", help: "where to write it (default APP-vN.tar.gz)"}},
	app:     true,
	run:     runSlugsDownload,
}

// release is the release vN names (or the current one with no argument).
func (c *call) release(api *client, app string) (schema.Release, error) {
	var rel schema.Release
	if len(c.args) > 1 {
		return rel, c.usageErr("Give at most one release, like v5.")
	}
	if len(c.args) == 1 {
		return c.releaseNamed(api, app, c.args[0])
	}
	var rs []schema.Release
	if err := api.get(c.ctx, c.appPath(app, "releases"), &rs, "Range", "version ..; max=1000, order=desc"); err != nil {
		return rel, err
	}
	i := slices.IndexFunc(rs, func(r schema.Release) bool { return r.Current })
	if i < 0 {
		return rel, fmt.Errorf("%s%s has no releases.", hexagon, app)
	}
	return rs[i], nil
}

// releaseNamed gets release arg ("v5" or "5").
func (c *call) releaseNamed(api *client, app, arg string) (schema.Release, error) {
	var rel schema.Release
	v := strings.TrimPrefix(arg, "v")
	if _, err := strconv.Atoi(v); err != nil {
		return rel, c.usageErr("%s is not a release version like v5.", arg)
	}
	return rel, api.get(c.ctx, c.appPath(app, "releases", v), &rel)
}

func runReleasesInfo(c *call) error {
	name, api, err := c.appAndClient()
	if err != nil {
		return err
	}
	rel, err := c.release(api, name)
	if err != nil {
		return err
	}
	var sl *schema.Slug
	if rel.Slug != nil {
		sl = new(schema.Slug)
		if err := api.get(c.ctx, c.appPath(name, "slugs", rel.Slug.ID), sl); err != nil {
			return err
		}
	}
	var cfg schema.ConfigVars
	if err := api.get(c.ctx, c.appPath(name, "releases", strconv.Itoa(rel.Version), "config-vars"), &cfg); err != nil {
		return err
	}
	out := c.env.Stdout
	if c.flagSet("json") {
		return printJSON(out, struct {
			schema.Release
			SlugInfo   *schema.Slug      `json:"slug_info"`
			ConfigVars schema.ConfigVars `json:"config_vars"`
		}{rel, sl, cfg})
	}
	header(out, fmt.Sprintf("Release v%d", rel.Version))
	status := rel.Status
	if s := statusText(rel.Status); s != "" {
		status += " (" + s + ")"
	}
	fields := [][2]string{
		{"Change", rel.Description},
		{"By", rel.User.Email},
		{"When", c.clock().format(rel.CreatedAt)},
		{"Status", status},
	}
	if sl != nil {
		fields = append(fields,
			[2]string{"Commit", deref(sl.Commit)},
			[2]string{"Buildpack", deref(sl.BuildpackProvidedDescription)},
			[2]string{"Slug", fmt.Sprintf("%s (%s)", sl.ID, humanBytes(sl.Size))},
			[2]string{"Process types", processTypes(sl.ProcessTypes)})
	}
	printFields(out, fields)
	fmt.Fprintln(out)
	header(out, fmt.Sprintf("v%d Config vars", rel.Version))
	printFields(out, configFields(cfg, sortedKeys(cfg)))
	return nil
}

// processTypes is "web: cmd; worker: cmd", web first.
func processTypes(types map[string]string) string {
	names := make([]string, 0, len(types))
	for t := range types {
		names = append(names, t)
	}
	slices.SortFunc(names, func(a, b string) int {
		if (a == "web") != (b == "web") {
			if a == "web" {
				return -1
			}
			return 1
		}
		return strings.Compare(a, b)
	})
	parts := make([]string, len(names))
	for i, t := range names {
		parts[i] = t + ": " + types[t]
	}
	return strings.Join(parts, "; ")
}

func runSlugsDownload(c *call) error {
	name, api, err := c.appAndClient()
	if err != nil {
		return err
	}
	rel, err := c.release(api, name)
	if err != nil {
		return err
	}
	if rel.Slug == nil {
		return fmt.Errorf("Release v%d has no slug: nothing was deployed in it.", rel.Version)
	}
	var sl schema.Slug
	if err := api.get(c.ctx, c.appPath(name, "slugs", rel.Slug.ID), &sl); err != nil {
		return err
	}
	path := c.outputPath(fmt.Sprintf("%s-v%d.tar.gz", name, rel.Version))
	return c.action(fmt.Sprintf("Downloading the slug of v%d (%s) to %s", rel.Version, humanBytes(sl.Size), path), func() error {
		return saveNew(path, 0o644, func(w io.Writer) error { return api.streamCapability(c, sl.Blob.URL, w) })
	})
}

// outputPath is the --output flag (def without it), from the working
// directory.
func (c *call) outputPath(def string) string {
	path := c.opts["output"]
	if path == "" {
		path = def
	}
	if !filepath.IsAbs(path) {
		path = filepath.Join(c.env.Dir, path)
	}
	return path
}

// saveNew writes what write produces to path, a file that must not exist
// yet; a failed write leaves no file behind.
func saveNew(path string, mode os.FileMode, write func(io.Writer) error) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return err
	}
	err = write(f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
	}
	return err
}
