package build_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dynogrid/grid/internal/build"
)

// TestGoSeed: the grid makes the Go standard library's build seed in a
// sandbox of its own, as a uid no app has; an app's first Go build starts
// from a copy of it, and later ones from the app's own cache; a tenant's
// build can read the seed but not write to it.
func TestGoSeed(t *testing.T) {
	roots, err := filepath.Abs("testdata/buildpacks")
	if err != nil {
		t.Fatal(err)
	}
	seeds := t.TempDir()
	h := newHarness(t, func(c *build.Config) {
		c.GoSeedDir = seeds
		c.GoSeedPackages = []string{"fmt", "log", "net/http", "os"} // go-hello's; the whole library takes minutes
		c.LocalBuildpackRoots = []string{roots}
	})
	v, err := os.ReadFile("/usr/local/go/VERSION")
	if err != nil {
		t.Fatal(err)
	}
	version, _, _ := strings.Cut(string(v), "\n")
	seed := filepath.Join(seeds, version)

	planter := h.createApp(t, "planter", nil)
	h.setBuildpacks(t, planter.Name, roots+"/seedwriter")
	plant := func(want ...string) {
		t.Helper()
		_, out, err := h.deploy(t, planter.Name, apps+"plain", commit(len(want)))
		if err != nil {
			t.Fatalf("deploy: %v\n%s", err, out)
		}
		wantLines(t, out, want...)
	}
	plant("-----> no seed\n") // none until it is complete

	// An older release's seed goes; what is not a seed stays.
	oldSeed := filepath.Join(seeds, "go1.20.1")
	for _, p := range []string{oldSeed + "/cache/00/entry", oldSeed + "/complete", oldSeed + ".lock", seeds + "/README"} {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := h.b.MakeGoSeed(context.Background()); err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]bool{oldSeed: false, oldSeed + ".lock": false, seeds + "/README": true} {
		if _, err := os.Stat(p); (err == nil) != want {
			t.Errorf("%s: %v, want it there: %v", p, err, want)
		}
	}
	if _, err := os.Stat(filepath.Join(seed, "complete")); err != nil {
		t.Fatalf("seed not complete: %v", err)
	}
	files := 0
	filepath.WalkDir(filepath.Join(seed, "cache"), func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		files++
		if st, err := os.Stat(p); err != nil || st.Sys().(*syscall.Stat_t).Uid != 199999 {
			t.Errorf("seed file %s: %v, want owned by the seed's uid", p, err)
			return filepath.SkipAll
		}
		return nil
	})
	if files < 100 {
		t.Errorf("the seed holds %d files, want net/http's build", files)
	}
	if err := h.b.MakeGoSeed(context.Background()); err != nil { // complete: nothing to do
		t.Fatal(err)
	}

	app := h.createApp(t, "seeded", nil)
	for i, want := range []bool{true, false} {
		start := time.Now()
		_, out, err := h.deploy(t, app.Name, apps+"go-hello", commit(i+1))
		t.Logf("build %d: %v", i+1, time.Since(start).Round(time.Millisecond))
		if err != nil {
			t.Fatalf("deploy %d: %v\n%s", i+1, err, out)
		}
		if got := strings.Contains(out, "-----> Starting from the grid's build of the standard library\n"); got != want {
			t.Errorf("build %d started from the seed: %v, want %v:\n%s", i+1, got, want, out)
		}
	}

	plant("-----> the seed is read-only\n", "-----> the seed is readable\n")
	if _, err := os.Lstat(filepath.Join(seed, "cache", "planted")); err == nil {
		t.Error("a tenant's build wrote to the seed")
	}
}
