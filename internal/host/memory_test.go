package host_test

import (
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dynogrid/grid/internal/grid"
	"github.com/dynogrid/grid/internal/host"
)

// Over its quota a dyno runs on with R14 in its log; at twice its quota
// the kernel kills it inside its cgroup: R15, a crash and a restart.
func TestMemoryQuotaR14AndR15(t *testing.T) {
	h := newHarness(t, func(c *host.Config) { c.MemoryCheck = 100 * time.Millisecond })
	h.start(t)
	// standard-1x: a 512 MB quota.
	over := h.assign(t, "worker.1", `python3 -c 'import time; b = bytearray(700 << 20); b[::4096] = b"x" * len(b[::4096]); time.sleep(60)'`, nil)
	lines := h.waitLines(t, 20*time.Second,
		"heroku[worker.1]: Error R14 (Memory quota exceeded)",
	)
	// Logged as soon as the use passes the quota: somewhere from 512 MB
	// (100 %) to the 700 MB the dyno holds.
	usage := regexp.MustCompile(`^heroku\[worker\.1\]: Process running mem=(5[1-9][0-9]|6[0-9]{2}|7[0-3][0-9])MB\(1[0-4][0-9]\.[0-9]%\)$`)
	if !slices.ContainsFunc(lines, usage.MatchString) {
		t.Errorf("no memory line over 100%% before R14:\n%s", strings.Join(lines, "\n"))
	}
	h.unassign(t, over)

	bomb := h.assign(t, "worker.2", `python3 -c 'b = bytearray(1200 << 20); b[::4096] = b"x" * len(b[::4096])'`, nil)
	h.waitLines(t, 20*time.Second,
		"heroku[worker.2]: Error R15 (Memory quota vastly exceeded)",
		"heroku[worker.2]: Stopping process with SIGKILL",
		"heroku[worker.2]: Process exited with status 137",
		"heroku[worker.2]: State changed from up to crashed",
	)
	h.waitDyno(t, bomb.DynoID, "restarted after R15", 20*time.Second, func(d grid.Dyno, found bool) bool { return found && d.Restarts >= 1 })
	h.unassign(t, bomb)
}
