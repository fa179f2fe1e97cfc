package cli

import (
	"archive/tar"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/dynogrid/grid/internal/schema"
)

// Builds without git: `grid deploy` packs a directory, uploads it to a
// source URL (POST /sources, then PUT without the API key: the URL is its
// own authority) and starts a build from it, following its output.

var deployCmd = &command{
	name:    "deploy",
	args:    "[DIR]",
	summary: "build and release DIR (default .) without git: its files, minus what .gitignore excludes in a git checkout",
	flags:   []flag{{name: "version", value: "LABEL", help: "what the release is of (default: the git commit, if any)"}},
	app:     true,
	run:     runDeploy,
}

var buildsCmd = &command{
	name:    "builds",
	summary: "list an app's builds made with grid deploy or the Build API, newest first",
	flags:   []flag{{name: "num", short: "n", value: "N", help: "how many builds to show (default 15)"}, jsonFlag},
	app:     true,
	run:     runBuilds,
}

var buildsOutputCmd = &command{
	name:    "builds:output",
	args:    "[ID]",
	summary: "show a build's output (default: the newest build), following it while it runs",
	app:     true,
	run:     runBuildsOutput,
}

var buildsPurgeCmd = &command{
	name:    "builds:cache:purge",
	summary: "empty an app's build cache: the next build starts cold",
	app:     true,
	run:     runBuildsPurge,
}

func runDeploy(c *call) error {
	if len(c.args) > 1 {
		return c.usageErr("Give at most one directory.")
	}
	dir := c.env.Dir
	if len(c.args) == 1 {
		dir = c.args[0]
		if !filepath.IsAbs(dir) {
			dir = filepath.Join(c.env.Dir, dir)
		}
	}
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		return fmt.Errorf("%s is not a directory.", dir)
	}
	name, api, err := c.appAndClient()
	if err != nil {
		return err
	}
	version := c.opts["version"]
	if version == "" {
		version = gitHead(c, dir)
	}
	out := c.env.Stdout
	tarball, err := os.CreateTemp("", "grid-deploy-*.tgz")
	if err != nil {
		return err
	}
	defer os.Remove(tarball.Name())
	defer tarball.Close()
	fmt.Fprintf(out, "Packing %s... ", dir)
	n, sum, err := packSource(c, dir, tarball)
	if err != nil {
		fmt.Fprintln(out, "!")
		return err
	}
	size, _ := tarball.Seek(0, io.SeekEnd)
	fmt.Fprintf(out, "done, %d files, %s\n", n, humanBytes(size))
	var src schema.Source
	if err := c.action("Uploading", func() error {
		if _, err := api.call(c.ctx, "POST", "/sources", nil, &src); err != nil {
			return err
		}
		if _, err := tarball.Seek(0, io.SeekStart); err != nil {
			return err
		}
		return api.putCapability(c, src.SourceBlob.PutURL, tarball, size)
	}); err != nil {
		return err
	}
	body := schema.BuildCreate{SourceBlob: &schema.BuildSource{URL: src.SourceBlob.GetURL, Checksum: &sum}}
	if version != "" {
		body.SourceBlob.Version = &version
	}
	var b schema.Build
	if _, err := api.call(c.ctx, "POST", c.appPath(name, "builds"), body, &b); err != nil {
		return err
	}
	return followBuild(c, api, name, b)
}

// followBuild streams a build's output to stdout, then reports how it
// ended: an error when it failed.
func followBuild(c *call, api *client, app string, b schema.Build) error {
	if err := api.streamCapability(c, b.OutputStreamURL, c.env.Stdout); err != nil {
		return err
	}
	if err := api.get(c.ctx, c.appPath(app, "builds", b.ID), &b); err != nil {
		return err
	}
	if b.Status != "succeeded" {
		return fmt.Errorf("Build %s %s.", b.ID, b.Status)
	}
	return nil
}

// gitHead is the commit dir's checkout is at, or "".
func gitHead(c *call, dir string) string {
	out, err := exec.CommandContext(c.ctx, "git", "-C", dir, "rev-parse", "HEAD").Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}

// sourceFiles lists what grid deploy sends from dir: in a git checkout,
// the files git would (tracked, and untracked ones .gitignore does not
// exclude); elsewhere every file, except .git.
func sourceFiles(c *call, dir string) ([]string, error) {
	out, err := exec.CommandContext(c.ctx, "git", "-C", dir, "ls-files", "-z", "--cached", "--others", "--exclude-standard").Output()
	if err == nil {
		var files []string
		for _, f := range strings.Split(string(out), "\x00") {
			if f != "" {
				files = append(files, f)
			}
		}
		return files, nil
	}
	var files []string
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && d.Name() == ".git" {
			return filepath.SkipDir
		}
		if !d.IsDir() {
			rel, _ := filepath.Rel(dir, p)
			files = append(files, filepath.ToSlash(rel))
		}
		return nil
	})
	return files, err
}

// packSource writes dir's source files to w as a tar.gz and returns how
// many it packed and the tarball's checksum ("SHA256:<hex>"). Regular
// files and symlinks go in as they are; anything else is refused.
func packSource(c *call, dir string, w io.Writer) (int, string, error) {
	files, err := sourceFiles(c, dir)
	if err != nil {
		return 0, "", err
	}
	h := sha256.New()
	zw := gzip.NewWriter(io.MultiWriter(w, h))
	tw := tar.NewWriter(zw)
	n := 0
	for _, rel := range files {
		p := filepath.Join(dir, filepath.FromSlash(rel))
		fi, err := os.Lstat(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue // listed by git, deleted since
		}
		if err != nil {
			return n, "", err
		}
		link := ""
		switch {
		case fi.Mode().IsRegular():
		case fi.Mode()&fs.ModeSymlink != 0:
			if link, err = os.Readlink(p); err != nil {
				return n, "", err
			}
		default:
			return n, "", fmt.Errorf("%s is not a regular file or a symlink; remove it or add it to .gitignore.", rel)
		}
		hdr, err := tar.FileInfoHeader(fi, link)
		if err != nil {
			return n, "", err
		}
		hdr.Name, hdr.Uname, hdr.Gname, hdr.Uid, hdr.Gid = rel, "", "", 0, 0
		if err := tw.WriteHeader(hdr); err != nil {
			return n, "", err
		}
		if fi.Mode().IsRegular() {
			if err := copyFile(tw, p); err != nil {
				return n, "", err
			}
		}
		n++
	}
	if err := tw.Close(); err != nil {
		return n, "", err
	}
	if err := zw.Close(); err != nil {
		return n, "", err
	}
	return n, "SHA256:" + hex.EncodeToString(h.Sum(nil)), nil
}

func copyFile(w io.Writer, p string) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(w, f)
	return err
}

// putCapability uploads body to a capability URL.
func (c *client) putCapability(cl *call, url string, body io.Reader, size int64) error {
	resp, err := c.capability(cl, "PUT", url, body, size)
	if err != nil {
		return err
	}
	resp.Body.Close()
	return nil
}

// streamCapability copies what a capability URL answers to w, as it
// comes.
func (c *client) streamCapability(cl *call, url string, w io.Writer) error {
	resp, err := c.capability(cl, "GET", url, nil, 0)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, err = io.Copy(w, resp.Body)
	return err
}

// capability sends a request to a capability URL: without the API key
// (the URL is its own authority, and need not be the API's) and without
// the overall timeout of API calls (uploads and build output take a
// while). An error status is an error.
func (c *client) capability(cl *call, method, url string, body io.Reader, size int64) (*http.Response, error) {
	req, err := http.NewRequestWithContext(cl.ctx, method, url, body)
	if err != nil {
		return nil, err
	}
	req.ContentLength = size
	resp, err := c.raw.Do(req)
	if err != nil {
		return nil, c.transportError(cl.ctx, err)
	}
	if resp.StatusCode >= 300 {
		defer resp.Body.Close()
		return nil, responseError(req, resp)
	}
	return resp, nil
}

func runBuilds(c *call) error {
	n := 15
	if v, ok := c.opts["num"]; ok {
		if _, err := fmt.Sscan(v, &n); err != nil || n < 1 {
			return c.usageErr("--num must be a positive number, not %q.", v)
		}
	}
	name, api, err := c.appAndClient()
	if err != nil {
		return err
	}
	var bs []schema.Build
	if err := api.get(c.ctx, c.appPath(name, "builds"), &bs, "Range", fmt.Sprintf("created_at ..; max=%d, order=desc", n)); err != nil {
		return err
	}
	out := c.env.Stdout
	if c.flagSet("json") {
		return printJSON(out, bs)
	}
	if len(bs) == 0 {
		fmt.Fprintf(out, "%s%s has no builds.\n", hexagon, name)
		return nil
	}
	header(out, name+" Builds")
	clk := c.clock()
	rows := [][]string{{"ID", "Status", "Version", "User", "Created"}}
	for _, b := range bs {
		v := ""
		if b.SourceBlob.Version != nil {
			v = short(*b.SourceBlob.Version)
		}
		rows = append(rows, []string{b.ID, b.Status, v, b.User.Email, clk.format(b.CreatedAt)})
	}
	printTable(out, rows)
	return nil
}

func short(v string) string {
	if len(v) == 40 && strings.Trim(v, "0123456789abcdef") == "" {
		return v[:8]
	}
	return v
}

func runBuildsOutput(c *call) error {
	if len(c.args) > 1 {
		return c.usageErr("Give at most one build ID.")
	}
	name, api, err := c.appAndClient()
	if err != nil {
		return err
	}
	var b schema.Build
	if len(c.args) == 1 {
		err = api.get(c.ctx, c.appPath(name, "builds", c.args[0]), &b)
	} else {
		var bs []schema.Build
		err = api.get(c.ctx, c.appPath(name, "builds"), &bs, "Range", "created_at ..; max=1, order=desc")
		if err == nil && len(bs) == 0 {
			err = fmt.Errorf("%s%s has no builds.", hexagon, name)
		}
		if err == nil {
			b = bs[0]
		}
	}
	if err != nil {
		return err
	}
	return api.streamCapability(c, b.OutputStreamURL, c.env.Stdout)
}

func runBuildsPurge(c *call) error {
	if len(c.args) > 0 {
		return c.usageErr("builds:cache:purge takes no arguments.")
	}
	name, api, err := c.appAndClient()
	if err != nil {
		return err
	}
	return c.action(fmt.Sprintf("Purging the build cache of %s%s", hexagon, name), func() error {
		_, err := api.call(c.ctx, "DELETE", c.appPath(name, "build-cache"), nil, nil)
		return err
	})
}
