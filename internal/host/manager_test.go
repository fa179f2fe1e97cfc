package host_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/dynogrid/grid/internal/grid"
	"github.com/dynogrid/grid/internal/manager"
)

// The manager and the agent together: scaling starts real dynos, a new
// release replaces them start-before-stop, scaling to zero stops them.
func TestWithManager(t *testing.T) {
	h := newHarness(t, nil)
	h.start(t)
	ctx := context.Background()
	if err := h.st.CreateApp(ctx, grid.App{ID: "app-id", Name: appName, UID: appUID}); err != nil {
		t.Fatal(err)
	}
	h.release(t)
	mctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- manager.New(manager.Config{Store: h.st}).Run(mctx) }()
	t.Cleanup(func() { cancel(); <-done })

	begin := h.scale(t, 1)
	h.waitUp(t, 1, 1)
	t.Logf("ps:scale web=1 → up: %v", time.Since(begin))
	begin = h.scale(t, 3)
	h.waitUp(t, 3, 1)
	t.Logf("ps:scale web=3 → 3 up: %v", time.Since(begin))

	begin = time.Now()
	h.release(t)
	h.waitUp(t, 3, 2)
	t.Logf("release → 3 new dynos up: %v", time.Since(begin))
	h.waitDynos(t, "old dynos gone", func(ds []grid.Dyno) bool { return len(ds) == 3 })
	t.Logf("release → old dynos stopped: %v", time.Since(begin))
	lines := h.lines(t)
	for _, d := range []string{"web.1", "web.2", "web.3"} {
		// The second "up" (the new dyno) comes before the old one's stop.
		ups := 0
		for _, l := range lines {
			if l == "heroku["+d+"]: State changed from starting to up" {
				ups++
			}
			if l == "heroku["+d+"]: Stopping all processes with SIGTERM" && ups < 2 {
				t.Errorf("%s: old dyno stopped before the new one was up:\n%s", d, strings.Join(lines, "\n"))
			}
		}
	}

	h.scale(t, 0)
	h.waitDynos(t, "all stopped", func(ds []grid.Dyno) bool { return len(ds) == 0 })
}

func (h *harness) release(t *testing.T) {
	t.Helper()
	_, err := h.st.CommitRelease(context.Background(), appName, func(cur grid.App) (grid.Release, error) {
		return grid.Release{SlugID: h.slugID, Config: map[string]string{"GREETING": "hi there"}}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func (h *harness) scale(t *testing.T, n int) time.Time {
	t.Helper()
	begin := time.Now()
	_, err := h.st.UpdateFormation(context.Background(), appName, func(f *grid.Formation) error {
		f.Types["web"] = grid.FormationType{Quantity: n, Size: grid.DefaultSize, Command: webCmd}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return begin
}

// waitUp waits until n web dynos of release are up.
func (h *harness) waitUp(t *testing.T, n, release int) {
	t.Helper()
	h.waitDynos(t, "dynos up", func(ds []grid.Dyno) bool {
		c := 0
		for _, d := range ds {
			if d.State == grid.DynoUp && d.Release == release {
				c++
			}
		}
		return c == n
	})
}

func (h *harness) waitDynos(t *testing.T, what string, ok func([]grid.Dyno) bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ds, err := h.st.Dynos(context.Background(), appName)
		if err != nil {
			t.Fatal(err)
		}
		if ok(ds) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s: %+v", what, ds)
		}
		time.Sleep(5 * time.Millisecond) // polling interval, not synchronisation
	}
}
