package build_test

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"net/http/cgi"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/dynogrid/grid/internal/build"
	"github.com/dynogrid/grid/internal/grid"
	"github.com/dynogrid/grid/internal/sandbox/sandboxtest"
)

// buildpackHost is a web server outside the grid (in a network namespace
// of its own) serving buildpacks: tarballs under /files/ and git
// repositories under /git/ (git http-backend, the real smart HTTP).
type buildpackHost struct {
	url   string
	files string // served at /files/
	repos string // served at /git/
}

var outsideSeq atomic.Int32

func newBuildpackHost(t *testing.T) *buildpackHost {
	t.Helper()
	if sandboxtest.Manager == nil {
		t.Skip("needs root: starts real sandboxes")
	}
	git, err := exec.LookPath("git")
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(git, "--exec-path").Output()
	if err != nil {
		t.Fatal(err)
	}
	bh := &buildpackHost{files: t.TempDir(), repos: t.TempDir()}
	mux := http.NewServeMux()
	mux.Handle("/files/", http.StripPrefix("/files/", http.FileServer(http.Dir(bh.files))))
	mux.Handle("/git/", &cgi.Handler{
		Path: filepath.Join(strings.TrimSpace(string(out)), "git-http-backend"), Root: "/git",
		Env: []string{"GIT_PROJECT_ROOT=" + bh.repos, "GIT_HTTP_EXPORT_ALL=1"},
	})
	n := outsideSeq.Add(1)
	prefix := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 235, 250, byte(4 * n)}), 30)
	bh.url = sandboxtest.ServeOutside(t, fmt.Sprintf("build%d", n), prefix, mux)
	return bh
}

// tarball packs testdata buildpack name as files/<file>, under top/ when
// top is not empty.
func (bh *buildpackHost) tarball(t *testing.T, name, file, top string) string {
	t.Helper()
	src := "testdata/buildpacks/" + name
	return bh.writeTarball(t, file, func(tw *tar.Writer) error {
		return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
			if err != nil || p == src {
				return err
			}
			fi, err := d.Info()
			if err != nil {
				return err
			}
			hdr, err := tar.FileInfoHeader(fi, "")
			if err != nil {
				return err
			}
			rel, err := filepath.Rel(src, p)
			if err != nil {
				return err
			}
			hdr.Name = filepath.Join(top, rel)
			if d.IsDir() {
				hdr.Name += "/"
			}
			if err := tw.WriteHeader(hdr); err != nil || !fi.Mode().IsRegular() {
				return err
			}
			b, err := os.ReadFile(p)
			if err == nil {
				_, err = tw.Write(b)
			}
			return err
		})
	})
}

// hostileTarball writes files/<file> with the given entries as they are;
// regular files hold a small script.
func (bh *buildpackHost) hostileTarball(t *testing.T, file string, hdrs ...tar.Header) string {
	t.Helper()
	return bh.writeTarball(t, file, func(tw *tar.Writer) error {
		body := []byte("#!/bin/sh\necho escaped\n")
		for _, h := range hdrs {
			if h.Typeflag == tar.TypeReg {
				h.Size = int64(len(body))
			}
			if err := tw.WriteHeader(&h); err != nil {
				return err
			}
			if h.Typeflag == tar.TypeReg {
				if _, err := tw.Write(body); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

// writeTarball writes files/<file>, a gzipped tar of what add writes, and
// returns its URL.
func (bh *buildpackHost) writeTarball(t *testing.T, file string, add func(*tar.Writer) error) string {
	t.Helper()
	f, err := os.Create(filepath.Join(bh.files, file))
	if err != nil {
		t.Fatal(err)
	}
	zw := gzip.NewWriter(f)
	tw := tar.NewWriter(zw)
	err = add(tw)
	for _, c := range []interface{ Close() error }{tw, zw, f} {
		if cerr := c.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	return bh.url + "/files/" + file
}

// repo makes git repository repos/<name>.git holding testdata buildpack
// src, tagged v2, then one more commit on main whose bin/compile fails.
func (bh *buildpackHost) repo(t *testing.T, name, src string) string {
	t.Helper()
	work := t.TempDir()
	if err := os.CopyFS(work, os.DirFS("testdata/buildpacks/"+src)); err != nil {
		t.Fatal(err)
	}
	git := func(args ...string) {
		t.Helper()
		cmd := exec.Command("git", args...)
		cmd.Dir = work
		cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.com",
			"GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.com")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	git("init", "-q", "-b", "main")
	git("add", ".")
	git("commit", "-q", "-m", "works")
	git("tag", "v2")
	os.WriteFile(filepath.Join(work, "bin", "compile"), []byte("#!/bin/sh\necho ' !     broken on main' >&2\nexit 1\n"), 0o755)
	git("commit", "-q", "-am", "breaks")
	git("clone", "-q", "--bare", work, filepath.Join(bh.repos, name+".git"))
	return bh.url + "/git/" + name + ".git"
}

// setBuildpacks sets app's buildpack list as the API does.
func (h *harness) setBuildpacks(t *testing.T, app string, list ...string) {
	t.Helper()
	refs, err := grid.ParseBuildpacks(list)
	if err != nil {
		t.Fatal(err)
	}
	_, err = h.st.UpdateApp(context.Background(), app, func(a *grid.App) error {
		a.Buildpacks = nil
		for _, r := range refs {
			a.Buildpacks = append(a.Buildpacks, r.URL)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestDeployBuildpackList: an app's list is used in order, from a
// tarball (under a top directory) and from a git tag; the first one's
// export reaches the second, the last one's bin/release gives the
// process types, and no built-in is consulted.
func TestDeployBuildpackList(t *testing.T) {
	bh := newBuildpackHost(t)
	tools := bh.tarball(t, "tools", "tools.tgz", "tools-1.0")
	uses := bh.repo(t, "usetools", "usetools") + "#v2"
	h := newHarness(t, nil)
	app := h.createApp(t, "listed", nil)
	h.setBuildpacks(t, app.Name, tools, uses)
	rel, out, err := h.deploy(t, app.Name, apps+"plain", commit(1))
	if err != nil {
		t.Fatal(err)
	}
	wantLines(t, out,
		"-----> Using buildpacks from the app's settings:\n       1. "+tools+"\n       2. "+uses+"\n",
		"-----> Tools app detected\n-----> Installed the tool\n",
		"-----> UsesTools app detected\n-----> tool v1 at work\n",
		"       Default types for buildpack -> web\n",
		"Released v2\n")
	sl := h.checkReleased(t, app.Name, rel, 2, map[string]string{"web": "python3 -m http.server $PORT"})
	wantLines(t, out, "       Set config vars the buildpack asks for: TOOL_MODE\n")
	if a, _ := h.st.App(context.Background(), app.Name); a.Release.Config["TOOL_MODE"] != "fast" {
		t.Errorf("release config %v lacks bin/release's TOOL_MODE=fast", a.Release.Config)
	}
	if sl.BuildpackDescription != "UsesTools" {
		t.Errorf("slug's buildpack description %q, want the last buildpack's", sl.BuildpackDescription)
	}
	seen, err := os.ReadFile(filepath.Join(h.slugs.Dir, sl.ID, "seen"))
	if want := "/tmp/build/.tools " + grid.Stack + " " + commit(1) + "\n"; string(seen) != want {
		t.Errorf("the second buildpack saw TOOL_HOME STACK SOURCE_VERSION = %q, %v; want %q", seen, err, want)
	}
	if got := runDyno(t, filepath.Join(h.slugs.Dir, sl.ID), app.UID, sl.ProcessTypes["web"], nil); !strings.Contains(got, "<p>plain</p>") {
		t.Errorf("GET / = %q", got)
	}

	// One buildpack: named on its own line; the default branch is used
	// without a #ref, and there bin/compile fails.
	h.setBuildpacks(t, app.Name, strings.TrimSuffix(uses, "#v2"))
	_, out, err = h.deploy(t, app.Name, apps+"plain", commit(2))
	if !errors.Is(err, grid.ErrInvalid) {
		t.Fatalf("deploy at main: %v, want ErrInvalid", err)
	}
	wantLines(t, out, "-----> Using buildpack: "+strings.TrimSuffix(uses, "#v2")+"\n", "broken on main", " !     Push rejected, failed to compile UsesTools app.\n")
}

// TestDeployBuildpacksFile: without an app list, .buildpacks in the
// source names the buildpacks; built-ins by name.
func TestDeployBuildpacksFile(t *testing.T) {
	bh := newBuildpackHost(t)
	tools := bh.tarball(t, "tools", "tools.tar.gz", "")
	src := t.TempDir()
	os.WriteFile(filepath.Join(src, "index.html"), []byte("<p>from .buildpacks</p>\n"), 0o644)
	os.WriteFile(filepath.Join(src, "Procfile"), []byte("web: python3 -m http.server $PORT\n"), 0o644)
	os.WriteFile(filepath.Join(src, ".buildpacks"), []byte("# tools first\n"+tools+"\n\nheroku/procfile\n"), 0o644)
	h := newHarness(t, nil)
	app := h.createApp(t, "listfile", nil)
	rel, out, err := h.deploy(t, app.Name, src, commit(1))
	if err != nil {
		t.Fatal(err)
	}
	wantLines(t, out, "-----> Using buildpacks from .buildpacks:\n       1. "+tools+"\n       2. heroku/procfile\n",
		"-----> Tools app detected\n", "-----> Procfile app detected\n")
	sl := h.checkReleased(t, app.Name, rel, 2, map[string]string{"web": "python3 -m http.server $PORT"})
	if _, err := os.Stat(filepath.Join(h.slugs.Dir, sl.ID, ".tools", "tool")); err != nil {
		t.Errorf("the tarball buildpack's work is not in the slug: %v", err)
	}
}

// TestDeployBuildpackRefused: buildpacks that cannot be fetched, are
// not buildpacks, refuse the app or attack the host fail the push with
// a reason and leave nothing behind.
func TestDeployBuildpackRefused(t *testing.T) {
	bh := newBuildpackHost(t)
	local, err := filepath.Abs("testdata/buildpacks/tools")
	if err != nil {
		t.Fatal(err)
	}
	notBP := bh.tarball(t, "../apps/plain", "plain.tgz", "")
	os.WriteFile(filepath.Join(bh.files, "refuse.tgz"), nil, 0o644)
	hostile := bh.hostileTarball(t, "hostile.tgz",
		tar.Header{Name: "../../../../escape-dotdot", Typeflag: tar.TypeReg, Mode: 0o755},
		tar.Header{Name: "/escape-abs", Typeflag: tar.TypeReg, Mode: 0o755},
		tar.Header{Name: "bin", Typeflag: tar.TypeSymlink, Linkname: "/etc"},
		tar.Header{Name: "bin/compile", Typeflag: tar.TypeReg, Mode: 0o755},
	)
	repo := bh.repo(t, "usetools", "usetools")
	detectNo := bh.tarball(t, "nodetect", "nodetect.tgz", "")
	h := newHarness(t, nil)
	app := h.createApp(t, "refused", nil)
	for _, tc := range []struct {
		name, bp string
		lines    []string
	}{
		{"missing tarball", bh.url + "/files/nosuch.tgz",
			[]string{" !     Push rejected: could not fetch buildpack " + bh.url + "/files/nosuch.tgz:\n", "404"}},
		{"empty tarball", bh.url + "/files/refuse.tgz", []string{"could not fetch buildpack"}},
		{"not a buildpack", notBP, []string{"it has no bin/compile"}},
		{"hostile tarball", hostile, []string{"could not fetch buildpack " + hostile}},
		{"unknown ref", repo + "#nosuch", []string{"could not fetch buildpack " + repo + "#nosuch"}},
		{"detect refuses", detectNo, []string{" !     App not compatible with buildpack: " + detectNo + "\n"}},
		{"local, none allowed", local, []string{"this grid allows none"}},
	} {
		h.setBuildpacks(t, app.Name, tc.bp)
		_, out, err := h.deploy(t, app.Name, apps+"plain", commit(1))
		if !errors.Is(err, grid.ErrInvalid) {
			t.Errorf("%s: deploy: %v, want ErrInvalid", tc.name, err)
		}
		wantLines(t, out, tc.lines...)
		h.checkUnchanged(t, app.Name)
	}
	for _, p := range []string{"/escape-dotdot", "/escape-abs", filepath.Join(h.cfg.WorkDir, "escape-dotdot")} {
		if _, err := os.Lstat(p); err == nil {
			t.Errorf("the hostile tarball wrote %s on the host", p)
		}
	}
}

// TestDeployLocalBuildpack: a path under the operator's roots works; one
// outside them, or reaching out through a symlink, does not.
func TestDeployLocalBuildpack(t *testing.T) {
	roots, err := filepath.Abs("testdata/buildpacks")
	if err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, func(c *build.Config) { c.LocalBuildpackRoots = []string{roots} })
	app := h.createApp(t, "local", map[string]string{"TOOL_MODE": "mine"})
	h.setBuildpacks(t, app.Name, roots+"/tools", "file://"+roots+"/usetools")
	rel, out, err := h.deploy(t, app.Name, apps+"plain", commit(1))
	if err != nil {
		t.Fatal(err)
	}
	wantLines(t, out, "-----> tool v1 at work\n")
	h.checkReleased(t, app.Name, rel, 2, map[string]string{"web": "python3 -m http.server $PORT"})
	if a, _ := h.st.App(context.Background(), app.Name); a.Release.Config["TOOL_MODE"] != "mine" || strings.Contains(out, "Set config vars") {
		t.Errorf("bin/release's config_vars overrode the app's own TOOL_MODE: %v", a.Release.Config)
	}

	link := filepath.Join(t.TempDir(), "etc")
	os.Symlink("/etc", link)
	for _, p := range []string{"/etc", roots + "/../apps", link} {
		h.setBuildpacks(t, app.Name, filepath.Clean(p))
		_, out, err := h.deploy(t, app.Name, apps+"plain", commit(2))
		if !errors.Is(err, grid.ErrInvalid) {
			t.Errorf("local buildpack %s: deploy: %v, want ErrInvalid", p, err)
		}
		wantLines(t, out, "is not under a directory this grid allows")
	}
}
