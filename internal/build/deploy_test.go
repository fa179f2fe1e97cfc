package build_test

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/dynogrid/grid/internal/build"
	"github.com/dynogrid/grid/internal/grid"
	"github.com/dynogrid/grid/internal/sandbox"
	"github.com/dynogrid/grid/internal/sandbox/sandboxtest"
	"github.com/dynogrid/grid/internal/slug"
)

const apps = "testdata/apps/"

// checkReleased checks everything a successful deploy leaves behind:
// release, slug metadata and blob, adopted tree, formation, API log lines.
func (h *harness) checkReleased(t *testing.T, app string, rel grid.Release, version int, wantTypes map[string]string) grid.Slug {
	t.Helper()
	ctx := context.Background()
	a, err := h.st.App(ctx, app)
	if err != nil {
		t.Fatal(err)
	}
	if rel.Version != version || a.Release.Version != version || a.Release.SlugID == "" || a.Release.SlugID != rel.SlugID {
		t.Fatalf("release %+v, app's current %+v; want v%d with a slug", rel, a.Release, version)
	}
	if a.Release.Description != grid.DeployDescription(rel.Commit) || a.Release.User != "pusher@example.com" {
		t.Errorf("release description %q by %q", a.Release.Description, a.Release.User)
	}
	sl, err := h.st.Slug(ctx, rel.SlugID)
	if err != nil {
		t.Fatal(err)
	}
	for typ, cmd := range wantTypes {
		if sl.ProcessTypes[typ] != cmd {
			t.Errorf("slug process types %v, want %s: %s", sl.ProcessTypes, typ, cmd)
		}
	}
	if sl.Stack != grid.Stack || sl.Commit != rel.Commit || sl.App != app {
		t.Errorf("slug %+v", sl)
	}
	blob, err := h.st.OpenSlug(ctx, sl.ID)
	if err != nil {
		t.Fatal(err)
	}
	data, _ := io.ReadAll(blob)
	blob.Close()
	sum := sha256.Sum256(data)
	if int64(len(data)) != sl.Size || sl.Checksum != "SHA256:"+hex.EncodeToString(sum[:]) {
		t.Errorf("blob of %d bytes does not match slug size %d / checksum %s", len(data), sl.Size, sl.Checksum)
	}
	if fi, err := os.Stat(filepath.Join(h.slugs.Dir, sl.ID)); err != nil || !fi.IsDir() {
		t.Errorf("slug tree not adopted into the cache: %v", err)
	}
	f, err := h.st.Formation(ctx, app)
	if err != nil {
		t.Fatal(err)
	}
	if _, web := wantTypes["web"]; web && f.Types["web"].Quantity != 1 {
		t.Errorf("formation %+v, want web=1", f)
	}
	for typ, cmd := range wantTypes {
		if f.Types[typ].Command != cmd {
			t.Errorf("formation %s command %q, want %q", typ, f.Types[typ].Command, cmd)
		}
	}
	if ents, _ := os.ReadDir(filepath.Join(h.cfg.WorkDir, "builds")); len(ents) != 0 {
		t.Errorf("build dirs left behind: %v", ents)
	}
	return sl
}

// checkUnchanged checks a failed deploy left no trace: the app still at
// v1 without a slug, no slug records, no build dirs.
func (h *harness) checkUnchanged(t *testing.T, app string) {
	t.Helper()
	ctx := context.Background()
	a, err := h.st.App(ctx, app)
	if err != nil {
		t.Fatal(err)
	}
	if a.Release.Version != 1 || a.ReleaseSeq != 1 || a.Release.SlugID != "" {
		t.Errorf("app release changed: %+v (seq %d)", a.Release, a.ReleaseSeq)
	}
	if sl, err := h.st.Slugs(ctx, app); err != nil || len(sl) != 0 {
		t.Errorf("slugs left: %v, %v", sl, err)
	}
	if f, _ := h.st.Formation(ctx, app); len(f.Types) != 0 {
		t.Errorf("formation changed: %+v", f)
	}
	if ents, _ := os.ReadDir(filepath.Join(h.cfg.WorkDir, "builds")); len(ents) != 0 {
		t.Errorf("build dirs left behind: %v", ents)
	}
	if ents, _ := os.ReadDir(h.slugs.Dir); len(ents) != 0 {
		t.Errorf("slug trees left behind: %v", ents)
	}
}

func wantLines(t *testing.T, out string, lines ...string) {
	t.Helper()
	for _, l := range lines {
		if !strings.Contains(out, l) {
			t.Errorf("output lacks %q", l)
		}
	}
}

// runDyno starts the slug tree like the host agent does and returns what
// GET / answers.
func runDyno(t *testing.T, tree string, uid int, command string, config map[string]string) string {
	t.Helper()
	resp, err := http.Get(startDyno(t, tree, uid, command, config) + "/")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return string(body)
}

// startDyno starts the slug tree's command like the host agent does,
// waits until it listens, and returns its base URL. The dyno is destroyed
// when the test ends.
func startDyno(t *testing.T, tree string, uid int, command string, config map[string]string) string {
	t.Helper()
	port := 10000 + rand.IntN(50000)
	var out syncBuffer
	sb, err := sandboxtest.Manager.Start(context.Background(), sandbox.Spec{
		ID: "buildtest-dyno-" + strconv.Itoa(port), Args: slug.ProcessCommand(command),
		Env: slug.ProcessEnv(config, "web.1", port), Dir: "/app", UID: uid, AppDir: tree, Network: true,
		Stdout: &out, Stderr: &out,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		sb.Destroy()
		if t.Failed() {
			t.Logf("dyno output:\n%s", out.String())
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := sb.WaitListening(ctx, port); err != nil {
		t.Fatalf("dyno did not listen: %v\n%s", err, out.String())
	}
	return "http://" + sb.Addr().String() + ":" + strconv.Itoa(port)
}

func TestDeployGo(t *testing.T) {
	h := newHarness(t, nil)
	app := h.createApp(t, "go-hello", map[string]string{"GREETING": "hi"})
	start := time.Now()
	rel, out, err := h.deploy(t, app.Name, apps+"go-hello", commit(1))
	cold := time.Since(start)
	if err != nil {
		t.Fatal(err)
	}
	wantLines(t, out,
		"-----> Building on the grid-24 stack\n",
		"-----> Determining which buildpack to use for this app\n",
		"-----> Go app detected\n",
		"-----> Running: go install example.com/go-hello\n",
		"-----> Discovering process types\n",
		"       Default types for buildpack -> web\n",
		"-----> Compressing...\n       Done: ",
		"-----> Checking that the app boots...\n       web bound to $PORT in ",
		"-----> Launching...\n       Released v2\n       http://go-hello.localhost:8080/ deployed to Grid\n",
	)
	sl := h.checkReleased(t, app.Name, rel, 2, map[string]string{"web": "bin/go-hello"})
	want := []string{
		"Build started by user pusher@example.com", "Build succeeded",
		"Deploy " + commit(1)[:8] + " by user pusher@example.com", "Release v2 created by user pusher@example.com",
		"Scaled to web@1:Standard-1X by user pusher@example.com",
	}
	if got := h.apiLines(t, app.Name); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("api log lines:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if got := runDyno(t, filepath.Join(h.slugs.Dir, sl.ID), app.UID, sl.ProcessTypes["web"], map[string]string{"GREETING": "hi"}); got != "hello from web.1: hi\n" {
		t.Errorf("GET / = %q", got)
	}

	start = time.Now()
	rel, _, err = h.deploy(t, app.Name, apps+"go-hello", commit(2))
	warm := time.Since(start)
	if err != nil {
		t.Fatal(err)
	}
	h.checkReleased(t, app.Name, rel, 3, map[string]string{"web": "bin/go-hello"})
	t.Logf("go-hello build+deploy: cold %v, warm %v", cold.Round(time.Millisecond), warm.Round(time.Millisecond))
	if warm >= cold {
		t.Errorf("warm rebuild (%v) not faster than cold (%v): is the build cache kept?", warm, cold)
	}
	if lines := h.apiLines(t, app.Name); strings.Contains(strings.Join(lines[len(want):], "\n"), "Scaled to") {
		t.Errorf("second deploy logged a scale: %v", lines)
	}
}

func TestDeployNode(t *testing.T) {
	h := newHarness(t, nil)
	app := h.createApp(t, "node-hello", map[string]string{"GREETING": "hey"})
	rel, out, err := h.deploy(t, app.Name, apps+"node-hello", commit(1))
	if err != nil {
		t.Fatal(err)
	}
	wantLines(t, out, "-----> Node.js app detected\n", "Installing node modules (package-lock.json)", "Default types for buildpack -> web\n", "Released v2\n")
	sl := h.checkReleased(t, app.Name, rel, 2, map[string]string{"web": "npm start"})
	got := runDyno(t, filepath.Join(h.slugs.Dir, sl.ID), app.UID, sl.ProcessTypes["web"], map[string]string{"GREETING": "hey"})
	if got != "hello from web.1: hey (production)\n" {
		t.Errorf("GET / = %q (NODE_ENV comes from .profile.d)", got)
	}
}

func TestDeployProcfileOnly(t *testing.T) {
	h := newHarness(t, nil)
	app := h.createApp(t, "static", nil)
	rel, out, err := h.deploy(t, app.Name, apps+"procfile-only", commit(1))
	if err != nil {
		t.Fatal(err)
	}
	wantLines(t, out, "-----> Procfile app detected\n", "       Procfile declares types -> web\n", "Released v2\n")
	sl := h.checkReleased(t, app.Name, rel, 2, map[string]string{"web": "python3 -m http.server $PORT"})
	if got := runDyno(t, filepath.Join(h.slugs.Dir, sl.ID), app.UID, sl.ProcessTypes["web"], nil); !strings.Contains(got, "hello from a Procfile-only app") {
		t.Errorf("GET / = %q", got)
	}
}

// TestDeploySlugignore: what .slugignore lists never reaches the
// buildpacks or the slug.
func TestDeploySlugignore(t *testing.T) {
	h := newHarness(t, nil)
	app := h.createApp(t, "ignoring", nil)
	src := t.TempDir()
	if err := os.CopyFS(src, os.DirFS(apps+"procfile-only")); err != nil {
		t.Fatal(err)
	}
	for name, content := range map[string]string{
		".slugignore":     "# not needed at runtime\ndocs/\n*.psd\n",
		"docs/manual.txt": strings.Repeat("m", 1<<20),
		"art/logo.psd":    "layers",
		"art/logo.png":    "pixels",
	} {
		p := filepath.Join(src, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	rel, out, err := h.deploy(t, app.Name, src, commit(1))
	if err != nil {
		t.Fatal(err)
	}
	wantLines(t, out, "       Removed 3 files and directories listed in .slugignore\n")
	sl := h.checkReleased(t, app.Name, rel, 2, map[string]string{"web": "python3 -m http.server $PORT"})
	tree := filepath.Join(h.slugs.Dir, sl.ID)
	for name, want := range map[string]bool{"docs": false, "art/logo.psd": false, "art/logo.png": true, "index.html": true} {
		if _, err := os.Lstat(filepath.Join(tree, name)); (err == nil) != want {
			t.Errorf("%s in the slug: %v, want %v", name, err == nil, want)
		}
	}
}

func TestDeployBrokenGo(t *testing.T) {
	h := newHarness(t, nil)
	app := h.createApp(t, "broken", nil)
	_, out, err := h.deploy(t, app.Name, apps+"broken-go", commit(1))
	if !errors.Is(err, grid.ErrInvalid) {
		t.Fatalf("Deploy: %v, want ErrInvalid", err)
	}
	wantLines(t, out, "cannot use \"5000\"", " !     Push rejected, failed to compile Go app.\n\n !     Push failed\n")
	h.checkUnchanged(t, app.Name)
	lines := h.apiLines(t, app.Name)
	if strings.Join(lines, "|") != "Build started by user pusher@example.com|Build failed -- check your build output" {
		t.Errorf("api log lines %q", lines)
	}
}

func TestDeployNoBind(t *testing.T) {
	h := newHarness(t, func(c *build.Config) { c.BootTimeout = 3 * time.Second })
	app := h.createApp(t, "no-bind", nil)
	_, out, err := h.deploy(t, app.Name, apps+"no-bind", commit(1))
	if !errors.Is(err, grid.ErrInvalid) {
		t.Fatalf("Deploy: %v, want ErrInvalid", err)
	}
	wantLines(t, out, " !     Push rejected: the web process did not bind to $PORT within 3 seconds\n", "starting but never listening")
	h.checkUnchanged(t, app.Name)
}

func TestDeployWebExits(t *testing.T) {
	h := newHarness(t, nil)
	app := h.createApp(t, "exits", nil)
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "Procfile"), []byte("web: echo oops >&2; exit 3\n"), 0o644)
	_, out, err := h.deploy(t, app.Name, dir, commit(1))
	if !errors.Is(err, grid.ErrInvalid) {
		t.Fatalf("Deploy: %v, want ErrInvalid", err)
	}
	wantLines(t, out, " !     Push rejected: the web process exited with status 3 before binding to $PORT\n", "oops")
	h.checkUnchanged(t, app.Name)
}

func TestDeployRejectsWithoutBuilding(t *testing.T) {
	h := newHarness(t, func(c *build.Config) { c.MaxSlugBytes = 16 << 10 })
	cases := []struct {
		name  string
		files map[string]string
		want  error
		line  string
	}{
		{"no buildpack", map[string]string{"README.md": "hi"}, grid.ErrInvalid, " !     No default language could be detected for this app.\n"},
		{"no process types", map[string]string{"package.json": `{"name":"x","version":"1.0.0"}`}, grid.ErrInvalid, " !     No process types: add a Procfile or use a buildpack that declares a default web process\n"},
		{"bad Procfile", map[string]string{"Procfile": "web: x\nweb y\n"}, grid.ErrInvalid, " !     Push rejected: Procfile line 2: expected \"type: command\"\n"},
		{"slug too large", map[string]string{"Procfile": "worker: sleep 1", "noise": noise(64 << 10)}, grid.ErrTooLarge, " !     Push rejected: the compiled slug is larger than the 16 KiB limit\n"},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			app := h.createApp(t, "reject-"+strconv.Itoa(i), nil)
			dir := t.TempDir()
			for name, body := range tc.files {
				os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644)
			}
			_, out, err := h.deploy(t, app.Name, dir, commit(i))
			if !errors.Is(err, tc.want) {
				t.Fatalf("Deploy: %v, want %v", err, tc.want)
			}
			wantLines(t, out, tc.line, " !     Push failed\n")
			h.checkUnchanged(t, app.Name)
		})
	}
}

func noise(n int) string {
	b := make([]byte, n)
	rand.NewChaCha8([32]byte{7}).Read(b)
	return string(b)
}

func TestDeployHostileSource(t *testing.T) {
	h := newHarness(t, nil)
	app := h.createApp(t, "hostile", nil)
	var src bytes.Buffer
	tw := tar.NewWriter(&src)
	tw.WriteHeader(&tar.Header{Name: "Procfile", Typeflag: tar.TypeSymlink, Linkname: "/etc/shadow"})
	tw.Close()
	var out syncBuffer
	_, err := h.b.Deploy(context.Background(), build.Request{App: app.Name, User: "u@example.com", Commit: commit(1), Source: &src, Output: &out})
	if !errors.Is(err, grid.ErrInvalid) {
		t.Fatalf("Deploy: %v, want ErrInvalid", err)
	}
	wantLines(t, out.String(), " !     Push rejected: the pushed source cannot be unpacked: ", " !     Push failed\n")
	h.checkUnchanged(t, app.Name)
}

// TestDeployOneAtATime pushes the same app twice at once: the second
// waits for the first, and both are released in turn.
func TestDeployOneAtATime(t *testing.T) {
	h := newHarness(t, nil)
	app := h.createApp(t, "twice", nil)
	var wg sync.WaitGroup
	outs := make([]string, 2)
	versions := make([]int, 2)
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rel, out, err := h.deploy(t, app.Name, apps+"procfile-only", commit(i))
			if err != nil {
				t.Error(err)
			}
			outs[i], versions[i] = out, rel.Version
		}()
	}
	wg.Wait()
	if versions[0]+versions[1] != 5 {
		t.Errorf("versions %v, want 2 and 3", versions)
	}
	if !strings.Contains(outs[0]+outs[1], "-----> Waiting for the build of app twice already in progress…\n") {
		t.Error("neither push said it waited")
	}
}

// TestDeployCacheOfOtherUID: a build cache left by a deleted app of the
// same name (another uid) is wiped, never handed to the new app.
func TestDeployCacheOfOtherUID(t *testing.T) {
	h := newHarness(t, nil)
	ctx := context.Background()
	cache := func(app grid.App) string { return filepath.Join(h.cfg.CacheDir, app.Name) }

	// An older grid's plain directory, and a volume another uid owns (an
	// app deleted, its name taken again): both wiped, never handed over.
	plain := h.createApp(t, "plaincache", nil)
	os.MkdirAll(cache(plain), 0o700)
	os.WriteFile(filepath.Join(cache(plain), "secret"), []byte("previous tenant"), 0o600)
	reborn := h.createApp(t, "reborn", nil)
	if err := sandbox.MakeVolume(cache(reborn)+".img", cache(reborn), 16, reborn.UID+1); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(cache(reborn), "secret"), []byte("previous tenant"), 0o600)
	if err := sandbox.UnmountVolume(cache(reborn)); err != nil {
		t.Fatal(err)
	}
	for _, app := range []grid.App{plain, reborn} {
		if _, _, err := h.deploy(t, app.Name, apps+"procfile-only", commit(1)); err != nil {
			t.Fatal(err)
		}
		look := t.TempDir()
		if err := sandbox.MountVolume(cache(app)+".img", look); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(filepath.Join(look, "secret")); !os.IsNotExist(err) {
			t.Errorf("%s: previous tenant's cache survived: %v", app.Name, err)
		}
		fi, err := os.Stat(look)
		if err != nil || fi.Sys().(*syscall.Stat_t).Uid != uint32(app.UID) {
			t.Errorf("%s: cache volume %v not owned by the app's uid %d", app.Name, err, app.UID)
		}
		sandbox.UnmountVolume(look)
		if _, err := h.st.App(ctx, app.Name); err != nil {
			t.Fatal(err)
		}
		if err := h.b.PurgeCache(app.Name); err != nil {
			t.Fatal(err)
		}
		for _, p := range []string{cache(app), cache(app) + ".img"} {
			if _, err := os.Stat(p); !os.IsNotExist(err) {
				t.Errorf("PurgeCache left %s: %v", p, err)
			}
		}
	}
}

// TestDeployDiskLimits: a build that writes without end fills its own
// volumes (BUILD_DIR, CACHE_DIR), gets ENOSPC, and the host's disk and
// the next build are fine. The cache persists between builds.
func TestDeployDiskLimits(t *testing.T) {
	mod := withBuildpack(t, "filler")
	h := newHarness(t, func(c *build.Config) { mod(c); c.BuildDiskMB = 64; c.CacheDiskMB = 32 })
	app := h.createApp(t, "filler", nil)
	src := t.TempDir()
	os.WriteFile(filepath.Join(src, "Procfile"), []byte("worker: sleep 1\n"), 0o644)
	for i, want := range []string{"cache: first build", "cache: seen before"} {
		_, out, err := h.deploy(t, app.Name, src, commit(i+1))
		if err != nil {
			t.Fatal(err)
		}
		wantLines(t, out, want)
		for _, what := range []struct {
			dir string
			max int
		}{{"build", 64}, {"cache", 32}} {
			m := regexp.MustCompile(what.dir + `: wrote (\d+) MB, then No space left on device`).FindStringSubmatch(out)
			if m == nil {
				t.Fatalf("no ENOSPC in %s:\n%s", what.dir, out)
			}
			if n, _ := strconv.Atoi(m[1]); n > what.max {
				t.Errorf("%s: wrote %d MB into a %d MB volume", what.dir, n, what.max)
			}
		}
	}
	if ents, _ := os.ReadDir(filepath.Join(h.cfg.WorkDir, "builds")); len(ents) != 0 {
		t.Errorf("build volumes left behind: %v", ents)
	}
}

// TestDeployWaitsForDynos: with WaitForDynos set, Deploy reports whether
// a web dyno of the new release came up.
func TestDeployWaitsForDynos(t *testing.T) {
	h := newHarness(t, func(c *build.Config) { c.WaitForDynos = time.Second })
	app := h.createApp(t, "waiter", nil)
	_, out, err := h.deploy(t, app.Name, apps+"procfile-only", commit(1))
	if err != nil {
		t.Fatal(err)
	}
	wantLines(t, out, "       Waiting for web dynos... not up after 1s; see `grid ps` and `grid logs`\n")
	// v3 is next: a host agent that already runs it is seen at once.
	err = h.st.PutDyno(context.Background(), grid.Dyno{ID: "d1", Host: "h1", App: app.Name, Name: "web.1", Type: "web", Release: 3, State: grid.DynoUp})
	if err != nil {
		t.Fatal(err)
	}
	_, out, err = h.deploy(t, app.Name, apps+"procfile-only", commit(2))
	if err != nil {
		t.Fatal(err)
	}
	wantLines(t, out, "       Released v3\n", "       Waiting for web dynos... done\n")
}

// withBuildpack replaces the detection list with testdata/buildpacks/name.
func withBuildpack(t *testing.T, name string) func(*build.Config) {
	dir, err := filepath.Abs("testdata/buildpacks/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return func(c *build.Config) { c.Buildpacks = []build.Buildpack{{Name: name, Dir: dir}} }
}

func TestDeployBuildTimeout(t *testing.T) {
	mod := withBuildpack(t, "sleepy")
	h := newHarness(t, func(c *build.Config) { mod(c); c.BuildTimeout = 2 * time.Second })
	app := h.createApp(t, "sleepy", nil)
	start := time.Now()
	_, out, err := h.deploy(t, app.Name, apps+"procfile-only", commit(1))
	if !errors.Is(err, grid.ErrInvalid) {
		t.Fatalf("Deploy: %v, want ErrInvalid", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("a 2s build limit took %v to enforce", d)
	}
	wantLines(t, out, "-----> sleepy app detected\n-----> Sleeping\n", " !     Push rejected: the build took longer than the 2s limit\n")
	h.checkUnchanged(t, app.Name)
}

func TestDeployFifoInSlug(t *testing.T) {
	h := newHarness(t, withBuildpack(t, "fifo"))
	app := h.createApp(t, "fifo", nil)
	_, out, err := h.deploy(t, app.Name, apps+"procfile-only", commit(1))
	if !errors.Is(err, grid.ErrInvalid) {
		t.Fatalf("Deploy: %v, want ErrInvalid", err)
	}
	wantLines(t, out, " !     Push rejected: the slug cannot be packed: pipe: a fifo is not a regular file, directory or symlink\n")
	h.checkUnchanged(t, app.Name)
}

// TestDeploySpecialBits: setuid, setgid and sticky bits a build sets do
// not survive into the adopted tree, as they do not survive Unpack.
func TestDeploySpecialBits(t *testing.T) {
	h := newHarness(t, withBuildpack(t, "suid"))
	app := h.createApp(t, "suid", nil)
	rel, out, err := h.deploy(t, app.Name, apps+"procfile-only", commit(1))
	if err != nil {
		t.Fatal(err)
	}
	wantLines(t, out, "       No web process type: skipped\n")
	sl := h.checkReleased(t, app.Name, rel, 2, map[string]string{"worker": "sleep 1"})
	for name, want := range map[string]os.FileMode{"tool": 0o755, "shared": os.ModeDir | 0o777} {
		fi, err := os.Lstat(filepath.Join(h.slugs.Dir, sl.ID, name))
		if err != nil || fi.Mode() != want {
			t.Errorf("%s: %v, %v; want %v", name, fi.Mode(), err, want)
		}
	}
}

// TestDeployPython: requirements.txt is installed with pip into a venv at
// /app/.venv from a wheel shipped with the app (no index is reachable);
// the dyno finds the venv's python on its PATH.
func TestDeployPython(t *testing.T) {
	h := newHarness(t, nil)
	app := h.createApp(t, "pyhello", nil)
	src := t.TempDir()
	if err := os.CopyFS(src, os.DirFS(apps+"python-hello")); err != nil {
		t.Fatal(err)
	}
	writeWheel(t, filepath.Join(src, "wheels", "greet-1.0-py3-none-any.whl"), map[string]string{
		"greet/__init__.py":            "def hello():\n    return 'hello from a local wheel'\n",
		"greet-1.0.dist-info/METADATA": "Metadata-Version: 2.1\nName: greet\nVersion: 1.0\n",
		"greet-1.0.dist-info/WHEEL":    "Wheel-Version: 1.0\nGenerator: grid-test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
		"greet-1.0.dist-info/RECORD":   "greet/__init__.py,,\ngreet-1.0.dist-info/METADATA,,\ngreet-1.0.dist-info/WHEEL,,\ngreet-1.0.dist-info/RECORD,,\n",
	})
	rel, out, err := h.deploy(t, app.Name, src, commit(1))
	if err != nil {
		t.Fatal(err)
	}
	wantLines(t, out, "-----> Python app detected\n", "-----> Creating the virtual environment at /app/.venv\n",
		"Successfully installed greet-1.0", "       Installed: greet==1.0 \n")
	sl := h.checkReleased(t, app.Name, rel, 2, map[string]string{"web": "python app.py"})
	if got := runDyno(t, filepath.Join(h.slugs.Dir, sl.ID), app.UID, sl.ProcessTypes["web"], nil); got != "hello from a local wheel; venv /app/.venv\n" {
		t.Errorf("GET / = %q", got)
	}
}

// writeWheel writes a wheel (a zip) holding files.
func writeWheel(t *testing.T, path string, files map[string]string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	zw := zip.NewWriter(f)
	for name, body := range files {
		w, err := zw.Create(name)
		if err == nil {
			_, err = io.WriteString(w, body)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	f.Close()
}

// TestDeployStatic: a site with static.json is served by nginx with its
// clean URLs, single-page fallback, redirects, headers, error page and
// gzip; dotfiles never.
func TestDeployStatic(t *testing.T) {
	h := newHarness(t, nil)
	app := h.createApp(t, "site", nil)
	rel, out, err := h.deploy(t, app.Name, apps+"static-site", commit(1))
	if err != nil {
		t.Fatal(err)
	}
	wantLines(t, out, "-----> Static app detected\n", "-----> Using nginx/", "       Configured from static.json\n",
		"       Default types for buildpack -> web\n")
	sl := h.checkReleased(t, app.Name, rel, 2, map[string]string{"web": ".grid-static/start"})
	base := startDyno(t, filepath.Join(h.slugs.Dir, sl.ID), app.UID, sl.ProcessTypes["web"], nil)
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, tc := range []struct {
		path, accept string
		status       int
		body         string            // contained
		headers      map[string]string // exact
	}{
		{"/", "", 200, "<p>static home</p>", map[string]string{"Content-Type": "text/html; charset=utf-8"}},
		{"/about", "", 200, "<p>about us</p>", nil},
		{"/about.html", "", 200, "<p>about us</p>", nil},
		{"/app/settings/profile", "", 200, "<p>static home</p>", nil},
		{"/old", "", 301, "", map[string]string{"Location": "/about"}},
		{"/nope", "", 404, "<p>no such page</p>", nil},
		{"/.env", "", 404, "<p>no such page</p>", nil},
		{"/static.json", "", 404, "", nil},
		{"/assets/app.css", "gzip", 200, "", map[string]string{
			"Cache-Control": "public, max-age=31536000, immutable", "Content-Encoding": "gzip", "Vary": "Accept-Encoding",
			"Content-Type": "text/css; charset=utf-8"}},
		{"/assets/app.css", "", 200, ".c99 { color: #000063; }", nil},
	} {
		req, _ := http.NewRequest("GET", base+tc.path, nil)
		req.Header.Set("Accept-Encoding", tc.accept)
		if tc.accept == "" {
			req.Header.Set("Accept-Encoding", "identity")
		}
		resp, err := noRedirect.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.status || !strings.Contains(string(body), tc.body) {
			t.Errorf("GET %s: %d %q, want %d with %q", tc.path, resp.StatusCode, body, tc.status, tc.body)
		}
		for k, v := range tc.headers {
			if got := resp.Header.Get(k); got != v {
				t.Errorf("GET %s: %s = %q, want %q", tc.path, k, got, v)
			}
		}
		if tc.status == 200 && (resp.Header.Get("ETag") == "" || resp.Header.Get("Last-Modified") == "") {
			t.Errorf("GET %s: no ETag or Last-Modified", tc.path)
		}
	}

	// A static.json nginx cannot take fails the build with the reason.
	src := t.TempDir()
	os.WriteFile(filepath.Join(src, "index.html"), []byte("x"), 0o644)
	os.WriteFile(filepath.Join(src, "static.json"), []byte(`{"routes": {"/a\"; } evil {": "index.html"}}`), 0o644)
	_, out, err = h.deploy(t, app.Name, src, commit(2))
	if !errors.Is(err, grid.ErrInvalid) {
		t.Fatalf("bad static.json: %v, want ErrInvalid", err)
	}
	wantLines(t, out, "static.json: '/a\"; } evil {': a path glob starts with / and has only URL path characters and *")
}

// TestDeployGoToolchain: a Go release the host lacks comes from the module
// proxy; one that does not exist fails the build with a reason.
func TestDeployGoToolchain(t *testing.T) {
	h := newHarness(t, nil)
	bad := h.createApp(t, "gonotoolchain", map[string]string{"GOTOOLCHAIN": "go1.99.0"})
	_, out, err := h.deploy(t, bad.Name, apps+"go-version", commit(2))
	if !errors.Is(err, grid.ErrInvalid) {
		t.Fatalf("deploy with go1.99.0: %v, want ErrInvalid", err)
	}
	wantLines(t, out, " !     Could not get the Go toolchain go.mod or GOTOOLCHAIN asks for (go1.99.0).\n")
	h.checkUnchanged(t, bad.Name)

	app := h.createApp(t, "gotoolchain", map[string]string{"GOTOOLCHAIN": "go1.25.5"})
	rel, out, err := h.deploy(t, app.Name, apps+"go-version", commit(1))
	if err != nil {
		t.Fatal(err)
	}
	wantLines(t, out, "-----> Using go1.25.5 from the module proxy (the host has go1.")
	sl := h.checkReleased(t, app.Name, rel, 2, map[string]string{"web": "bin/goversion"})
	if got := runDyno(t, filepath.Join(h.slugs.Dir, sl.ID), app.UID, sl.ProcessTypes["web"], nil); got != "go1.25.5\n" {
		t.Errorf("GET / = %q, want the binary built with go1.25.5", got)
	}
}

// TestDeployNodePackageManagers: the lockfile chooses the package
// manager, packageManager its version; pnpm and yarn come from the npm
// registry once and are kept in the build cache. engines.node must
// accept the host's node.
func TestDeployNodePackageManagers(t *testing.T) {
	h := newHarness(t, nil)
	for _, tc := range []struct {
		app, install, using, lock, body string
	}{
		{"node-pnpm", "-----> Installing pnpm@9.15.9\n", "       Using pnpm 9.15.9\n", "(pnpm-lock.yaml)", "pnpm app: 2m\n"},
		{"node-yarn", "-----> Installing yarn@1\n", "       Using yarn 1.", "(yarn.lock)", "yarn app: 2m\n"},
	} {
		app := h.createApp(t, tc.app, nil)
		rel, out, err := h.deploy(t, app.Name, apps+tc.app, commit(1))
		if err != nil {
			t.Fatal(err)
		}
		wantLines(t, out, tc.install, tc.using, "Installing node modules "+tc.lock)
		sl := h.checkReleased(t, app.Name, rel, 2, map[string]string{"web": "npm start"})
		if got := runDyno(t, filepath.Join(h.slugs.Dir, sl.ID), app.UID, sl.ProcessTypes["web"], nil); got != tc.body {
			t.Errorf("%s: GET / = %q, want %q", tc.app, got, tc.body)
		}
		// The second build finds the package manager in the cache.
		_, out, err = h.deploy(t, app.Name, apps+tc.app, commit(2))
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(out, tc.install) {
			t.Errorf("%s: the second build installed the package manager again", tc.app)
		}
		wantLines(t, out, tc.using)
	}

	src := t.TempDir()
	os.WriteFile(filepath.Join(src, "package.json"), []byte(`{"name":"old","version":"1.0.0","engines":{"node":">=99"},"scripts":{"start":"node x.js"}}`), 0o644)
	app := h.createApp(t, "node-future", nil)
	_, out, err := h.deploy(t, app.Name, src, commit(1))
	if !errors.Is(err, grid.ErrInvalid) {
		t.Fatalf("engines >=99: %v, want ErrInvalid", err)
	}
	wantLines(t, out, " !     package.json asks for node >=99 (engines.node); this grid's hosts have v")
}

// TestDeployGoVendored: with vendor/, the build uses it and needs no
// module proxy (GOPROXY=off here), for a module no proxy has.
func TestDeployGoVendored(t *testing.T) {
	h := newHarness(t, nil)
	app := h.createApp(t, "vendored", map[string]string{"GOPROXY": "off"})
	rel, out, err := h.deploy(t, app.Name, apps+"go-vendored", commit(1))
	if err != nil {
		t.Fatal(err)
	}
	wantLines(t, out, "       Using vendored dependencies\n")
	sl := h.checkReleased(t, app.Name, rel, 2, map[string]string{"web": "bin/vendored"})
	if got := runDyno(t, filepath.Join(h.slugs.Dir, sl.ID), app.UID, sl.ProcessTypes["web"], nil); got != "hello from vendor/\n" {
		t.Errorf("GET / = %q", got)
	}
}
