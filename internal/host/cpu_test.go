package host_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dynogrid/grid/internal/grid"
	"github.com/dynogrid/grid/internal/sandbox/sandboxtest"
)

// TestCPUBoundDynoRunsIdle: a dyno that keeps using its whole CPU cap is
// moved to the idle scheduling class; a dyno that mostly sleeps stays at
// normal priority. (The way back is TestCPUWatchObserve's: it takes
// seconds of calm, which a loaded machine makes a poor thing to wait
// for.)
func TestCPUBoundDynoRunsIdle(t *testing.T) {
	h := newHarness(t, nil)
	h.start(t)
	// basic: a one-core cap that one busy loop fills (eco dynos are in
	// the idle class from the start and not watched).
	hog := h.assign(t, "worker.1", `while :; do :; done`, func(a *grid.Assignment) { a.Size = "basic" })
	calm := h.assign(t, "clock.1", "while :; do sleep 0.2; done", nil)
	idle := func(a grid.Assignment) string {
		matches, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup/cpu", sandboxtest.CgroupParent, "d-"+strings.ReplaceAll(a.DynoID, "-", "")[:12]+"-*", "cpu.idle"))
		if len(matches) != 1 {
			return "?"
		}
		b, _ := os.ReadFile(matches[0])
		return strings.TrimSpace(string(b))
	}
	waitIdle := func(a grid.Assignment, want string, limit time.Duration) {
		t.Helper()
		deadline := time.Now().Add(limit)
		for idle(a) != want {
			if time.Now().After(deadline) {
				t.Fatalf("%s: cpu.idle %s, want %s", a.Name, idle(a), want)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	waitIdle(hog, "1", time.Minute)
	if got := idle(calm); got != "0" {
		t.Errorf("a sleeping dyno's cpu.idle is %s", got)
	}

}
