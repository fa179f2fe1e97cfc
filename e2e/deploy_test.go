package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dynogrid/grid/internal/gridtest"
)

// TestDeployWithoutGit: grid deploy packs a directory (in a git checkout,
// what git would track: .gitignore is honoured), uploads it through the
// Source API and builds it through the Build API, streaming the output;
// the build is listed and its output kept. A build that fails says so and
// leaves the app serving.
func TestDeployWithoutGit(t *testing.T) {
	g := gridtest.Start(t, "--boot-timeout", "10s")
	g.MustCLI("apps:create", "nogit")
	dir := t.TempDir()
	files := map[string]string{
		"Procfile":    "web: python3 -m http.server $PORT\n",
		"index.html":  "<p>deployed without git</p>\n",
		".gitignore":  "secret.txt\n",
		"secret.txt":  "never uploaded\n",
		"extra.html":  "<p>untracked but not ignored</p>\n",
		"sub/a.txt":   "nested\n",
		"static.json": "{}\n",
	}
	for name, body := range files {
		os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755)
		os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644)
	}
	g.Git(dir, "init", "-q", "-b", "main")
	g.Git(dir, "add", "Procfile", "index.html", ".gitignore", "sub/a.txt", "static.json")
	g.Commit(dir, "initial")
	head := strings.TrimSpace(g.Git(dir, "rev-parse", "HEAD"))

	out, stderr, err := g.CLI("deploy", dir, "-a", "nogit")
	if err != nil {
		t.Fatalf("grid deploy: %v\n%s%s", err, out, stderr)
	}
	for _, want := range []string{"Packing " + dir + "... done, 6 files", "Uploading... done", "-----> Static app detected", "Released v2"} {
		if !strings.Contains(out, want) {
			t.Errorf("deploy output lacks %q:\n%s", want, out)
		}
	}
	g.WaitBody("nogit", "/", "deployed without git", 30*time.Second)
	for path, want := range map[string]int{"/extra.html": 200, "/sub/a.txt": 200, "/secret.txt": 404} {
		if code, _, _, err := g.Get("nogit", path); err != nil || code != want {
			t.Errorf("GET %s: %d, %v; want %d", path, code, err, want)
		}
	}
	if rel := g.MustCLI("releases", "-a", "nogit"); !strings.Contains(rel, "Deploy "+head[:8]) {
		t.Errorf("releases lack the deploy of %s:\n%s", head[:8], rel)
	}
	info := g.MustCLI("releases:info", "-a", "nogit")
	for _, want := range []string{"=== Release v2", "Change:        Deploy " + head[:8], "Commit:        " + head, "Buildpack:     Static",
		"Process types: web: python3 -m http.server $PORT", "=== v2 Config vars"} {
		if !strings.Contains(info, want) {
			t.Errorf("releases:info lacks %q:\n%s", want, info)
		}
	}
	work := t.TempDir()
	if out, stderr, err := g.CLIIn(work, "slugs:download", "v2", "-a", "nogit"); err != nil || !strings.Contains(out, "to "+filepath.Join(work, "nogit-v2.tar.gz")+"... done") {
		t.Fatalf("slugs:download: %v\n%s%s", err, out, stderr)
	}
	listing, err := exec.Command("tar", "-tzf", filepath.Join(work, "nogit-v2.tar.gz")).Output()
	if err != nil || !strings.Contains(string(listing), "index.html") || !strings.Contains(string(listing), "extra.html") || strings.Contains(string(listing), "secret.txt") {
		t.Errorf("the slug holds:\n%s (%v)", listing, err)
	}

	// Outside git, --version labels the release; a build that fails is a
	// failed command and a failed build, and v2 keeps serving.
	bad := t.TempDir()
	os.WriteFile(filepath.Join(bad, "README"), []byte("nothing to run\n"), 0o644)
	out, _, err = g.CLI("deploy", bad, "-a", "nogit", "--version", "broken-1")
	if err == nil || !strings.Contains(out, "No default language could be detected") {
		t.Errorf("deploy of an app no buildpack takes: %v\n%s", err, out)
	}
	builds := g.MustCLI("builds", "-a", "nogit")
	if !strings.Contains(builds, "failed") || !strings.Contains(builds, "broken-1") || !strings.Contains(builds, "succeeded") || !strings.Contains(builds, head[:8]) {
		t.Errorf("builds:\n%s", builds)
	}
	if lines := strings.Split(strings.TrimSpace(builds), "\n"); len(lines) < 4 || !strings.Contains(lines[3], "failed") {
		t.Errorf("builds, newest first, should start with the failed one:\n%s", builds)
	}
	if replay := g.MustCLI("builds:output", "-a", "nogit"); !strings.Contains(replay, "No default language could be detected") {
		t.Errorf("builds:output of the newest build:\n%s", replay)
	}
	g.WaitBody("nogit", "/", "deployed without git", 10*time.Second)
	if out := g.MustCLI("builds:cache:purge", "-a", "nogit"); !strings.Contains(out, "done") {
		t.Errorf("builds:cache:purge: %s", out)
	}
}
