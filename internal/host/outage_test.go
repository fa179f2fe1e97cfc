package host_test

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dynogrid/grid/internal/grid"
	"github.com/dynogrid/grid/internal/host"
	"github.com/dynogrid/grid/internal/sandbox/sandboxtest"
)

// With NATS gone, dynos run on and crashed ones restart; once it is
// back, the agent catches up: records as they are now, and the current
// assignments (new ones started, removed ones stopped).
func TestNATSOutage(t *testing.T) {
	h := newHarness(t, func(c *host.Config) {
		c.Backoff = host.Backoff{BootWindow: time.Minute, CoolOff: 100 * time.Millisecond, Max: 200 * time.Millisecond}
	})
	h.start(t)
	web := h.assign(t, "web.1", webCmd, nil)
	crasher := h.assign(t, "worker.1", "sleep 0.3; exit 3", nil)
	d := h.waitDyno(t, web.DynoID, "web.1 up", 30*time.Second, up)
	h.waitDyno(t, crasher.DynoID, "worker.1 crashing", 30*time.Second, func(d grid.Dyno, found bool) bool { return found && d.Restarts >= 1 })

	seen := attemptCounter(t, crasher.DynoID)
	eventually(t, 10*time.Second, "a worker.1 sandbox", func() bool { return seen() > 0 })
	h.srv.Shutdown()
	down := time.Now()
	from := seen()
	eventually(t, 20*time.Second, "worker.1 restarts without NATS", func() bool { return seen() >= from+3 })
	get(t, d.Addr) // still serving
	during := seen()
	t.Logf("NATS down %v: web.1 serving, worker.1 restarted %d times meanwhile", time.Since(down).Round(time.Millisecond), during-from)

	h.startNATS(t)
	back := time.Now()
	// Changes the agent learns of once it is back.
	retry(t, func(ctx context.Context) error { return h.st.DeleteAssignment(ctx, hostID, web.DynoID) })
	added := newAssignment("web.2", webCmd, func(a *grid.Assignment) { a.SlugID = h.slugID })
	retry(t, func(ctx context.Context) error { return h.st.PutAssignment(ctx, added) })
	h.waitDyno(t, web.DynoID, "web.1 stopped after the outage", 30*time.Second, gone)
	h.waitDyno(t, added.DynoID, "web.2 up after the outage", 30*time.Second, up)
	t.Logf("NATS back: removed dyno stopped and new one up %v later", time.Since(back).Round(time.Millisecond))
	rec := h.waitDyno(t, crasher.DynoID, "worker.1's record to catch up", 30*time.Second, func(d grid.Dyno, found bool) bool {
		return found && d.Restarts >= during-1
	})
	t.Logf("NATS back: worker.1 record at restart %d %v later", rec.Restarts, time.Since(back).Round(time.Millisecond))
}

// retry runs f until it succeeds (the store reconnects after a restart).
func retry(t *testing.T, f func(context.Context) error) {
	t.Helper()
	var err error
	eventually(t, 30*time.Second, "the store to take writes", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		err = f(ctx)
		return err == nil
	})
}

// attemptCounter returns a function that tells how many sandboxes the
// dyno has had so far: the highest attempt number (d-<dyno>-<n>) it has
// seen among the cgroups of the test sandbox manager, plus one.
func attemptCounter(t *testing.T, dynoID string) func() int {
	t.Helper()
	prefix := "d-" + strings.ReplaceAll(dynoID, "-", "")[:12] + "-"
	n := 0
	return func() int {
		entries, err := os.ReadDir(filepath.Join("/sys/fs/cgroup/pids", sandboxtest.CgroupParent))
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			if a, err := strconv.Atoi(strings.TrimPrefix(e.Name(), prefix)); err == nil && strings.HasPrefix(e.Name(), prefix) {
				n = max(n, a+1)
			}
		}
		return n
	}
}
