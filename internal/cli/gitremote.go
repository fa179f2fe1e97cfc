package cli

import (
	"bufio"
	"context"
	"fmt"
	"net/url"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
)

var appNameRE = regexp.MustCompile(`^[a-z][a-z0-9-]{1,29}$`)

// appName is the app the command works on: -a/--app, else GRID_APP, else
// the app of the git remote in the working directory.
func (c *call) appName() (string, error) {
	if c.app != "" {
		return c.app, nil
	}
	app := c.opts["app"]
	if app == "" {
		app = c.env.Getenv("GRID_APP")
	}
	if app == "" {
		api, err := c.client()
		if err != nil {
			return "", err
		}
		if app, err = appFromGit(c.ctx, c.env.Dir, api.base); err != nil {
			return "", err
		}
	}
	if app == "" {
		return "", c.usageErr("No app specified.\nRun this command from an app folder or specify which app to use with --app APP.")
	}
	c.app = app
	return app, nil
}

// remote is one git remote.
type remote struct{ name, url string }

// gitRemotes lists the remotes of the repository around dir; none if dir
// is not in a repository or git is missing.
func gitRemotes(ctx context.Context, dir string) []remote {
	cmd := exec.CommandContext(ctx, "git", "remote", "-v")
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		return nil
	}
	var rs []remote
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) >= 2 && !slices.Contains(rs, remote{f[0], f[1]}) {
			rs = append(rs, remote{f[0], f[1]})
		}
	}
	return rs
}

// appFromGit finds the app whose git URL (<api>/<app>.git, with or
// without credentials) a remote of dir points at. With several apps, the
// remote named "grid" wins, then "heroku"; otherwise the user must choose.
func appFromGit(ctx context.Context, dir, apiURL string) (string, error) {
	byRemote := map[string]string{}
	var apps []string
	for _, r := range gitRemotes(ctx, dir) {
		if app, ok := appFromURL(r.url, apiURL); ok {
			byRemote[r.name] = app
			if !slices.Contains(apps, app) {
				apps = append(apps, app)
			}
		}
	}
	switch {
	case len(apps) <= 1:
		return strings.Join(apps, ""), nil
	case byRemote["grid"] != "":
		return byRemote["grid"], nil
	case byRemote["heroku"] != "":
		return byRemote["heroku"], nil
	}
	return "", &usageError{msg: fmt.Sprintf("Several git remotes point at grid apps (%s).\nSpecify which app to use with --app APP.", strings.Join(apps, ", "))}
}

// appFromURL returns the app of a git URL on the API's origin.
func appFromURL(gitURL, apiURL string) (string, bool) {
	g, err := url.Parse(gitURL)
	if err != nil {
		return "", false
	}
	a, err := url.Parse(apiURL)
	if err != nil || !strings.EqualFold(g.Host, a.Host) || g.Host == "" {
		return "", false
	}
	prefix := strings.TrimRight(a.Path, "/") + "/"
	name, ok := strings.CutPrefix(strings.TrimRight(g.Path, "/"), prefix)
	if !ok {
		return "", false
	}
	name, ok = strings.CutSuffix(name, ".git")
	if !ok || !appNameRE.MatchString(name) {
		return "", false
	}
	return name, true
}

// gitTopLevel is the top directory of the work tree dir is in, or "".
func gitTopLevel(ctx context.Context, dir string) string {
	cmd := exec.CommandContext(ctx, "git", "rev-parse", "--show-toplevel")
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}

// git runs a git command in dir.
func git(ctx context.Context, dir string, args ...string) error {
	cmd := exec.CommandContext(ctx, "git", args...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("git %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// sameDir reports whether a and b are the same directory ("" is the
// working directory).
func sameDir(a, b string) bool {
	norm := func(p string) string {
		if p == "" {
			p = "."
		}
		if abs, err := filepath.Abs(p); err == nil {
			p = abs
		}
		if real, err := filepath.EvalSymlinks(p); err == nil {
			p = real
		}
		return p
	}
	return norm(a) == norm(b)
}
