package host_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/dynogrid/grid/internal/grid"
	"github.com/dynogrid/grid/internal/host"
	"github.com/dynogrid/grid/internal/sandbox"
	"github.com/dynogrid/grid/internal/sandbox/sandboxtest"
	"github.com/dynogrid/grid/internal/store"
)

const tickCmd = "while :; do echo tick; sleep 0.1; done"

// An agent that goes away leaves its dynos running; the next one adopts
// the healthy ones without touching them, restarts the one that died
// meanwhile and destroys the one whose assignment went.
func TestRestartAdoptsDynos(t *testing.T) {
	h := newHarness(t, func(c *host.Config) { c.StopDynosOnExit = false })
	first := h.start(t)
	healthy := []grid.Assignment{
		h.assign(t, "web.1", webCmd, nil),
		h.assign(t, "web.2", webCmd, nil),
		h.assign(t, "worker.1", tickCmd, nil),
	}
	dies := h.assign(t, "web.3", webCmd, nil)
	unassigned := h.assign(t, "web.4", webCmd, nil)
	before := map[string]grid.Dyno{}
	for _, a := range append(healthy, dies, unassigned) {
		before[a.DynoID] = h.waitDyno(t, a.DynoID, a.Name+" up", 30*time.Second, up)
	}
	h.waitLines(t, 5*time.Second, "app[worker.1]: tick")

	took := first.stop(t)
	t.Logf("agent exit with 5 dynos left running: %v", took)
	left := leftoversByDyno(t)
	if len(left) != 5 {
		t.Fatalf("leftovers after the agent left: %+v", left)
	}
	starts := map[string]uint64{}
	for id, lo := range left {
		if !lo.Running {
			t.Fatalf("%s not running after the agent left", id)
		}
		starts[id] = procStartTime(t, lo.Pid)
	}
	for _, a := range healthy[:2] {
		get(t, before[a.DynoID].Addr) // served without an agent
	}
	changes := h.recordChanges(t)
	ticks := count(h.lines(t), "app[worker.1]: tick")

	// While no agent runs, web.3 dies and web.4 is unassigned.
	if err := syscall.Kill(left[dies.DynoID].Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	h.unassign(t, unassigned)
	eventually(t, 10*time.Second, "web.3 to die", func() bool { return !alive(left[dies.DynoID].Pid) })

	begin := time.Now()
	h.cfg.StopDynosOnExit = true // the test ends with nothing left
	h.start(t)
	eventually(t, 30*time.Second, "leftovers adopted or collected", func() bool { return len(sandboxtest.Manager.Leftovers()) == 0 })
	t.Logf("new agent: all leftovers adopted or collected %v after start", time.Since(begin))
	h.waitDyno(t, unassigned.DynoID, "web.4 record deleted", 10*time.Second, gone)
	eventually(t, 10*time.Second, "web.4 destroyed", func() bool { return !alive(left[unassigned.DynoID].Pid) })
	d := h.waitDyno(t, dies.DynoID, "web.3 restarted", 30*time.Second, func(d grid.Dyno, found bool) bool {
		return found && d.State == grid.DynoUp && d.Restarts == 1
	})
	t.Logf("new agent: web.3 restarted and up %v after start", time.Since(begin))
	get(t, d.Addr)
	h.waitLines(t, 5*time.Second,
		"heroku[web.3]: Process exited with status 137",
		"heroku[web.3]: State changed from up to crashed",
		"heroku[web.3]: State changed from crashed to starting",
		"heroku[web.3]: State changed from starting to up",
	)

	h.untouched(t, healthy, left, starts, before, changes())
	// The worker's output reaches the new agent's log.
	eventually(t, 10*time.Second, "worker output after the restart", func() bool {
		return count(h.lines(t), "app[worker.1]: tick") > ticks+3
	})
	lines := h.lines(t)
	for _, a := range healthy {
		if n := count(lines, "heroku["+a.Name+"]: Starting process with command `"+a.Command+"`"); n != 1 {
			t.Errorf("%s started %d times", a.Name, n)
		}
	}
}

// untouched checks that the dynos as kept running across an agent
// restart: same process (pid and start time), address and record, which
// did not change meanwhile.
func (h *harness) untouched(t *testing.T, as []grid.Assignment, left map[string]sandbox.Leftover, starts map[string]uint64, before map[string]grid.Dyno, changes []store.Event[grid.Dyno]) {
	t.Helper()
	for _, a := range as {
		d := h.waitDyno(t, a.DynoID, a.Name+" up", time.Second, up)
		lo := left[a.DynoID]
		if !alive(lo.Pid) || procStartTime(t, lo.Pid) != starts[a.DynoID] {
			t.Errorf("%s: its process %d is gone", a.Name, lo.Pid)
		}
		if d.Addr != before[a.DynoID].Addr || !d.UpdatedAt.Equal(before[a.DynoID].UpdatedAt) {
			t.Errorf("%s record changed: %+v, was %+v", a.Name, d, before[a.DynoID])
		}
		if a.Type == "web" {
			get(t, d.Addr)
		}
		for _, ev := range changes {
			if strings.HasSuffix(ev.Key, a.DynoID) {
				t.Errorf("%s record changed during the restart: %+v", a.Name, ev)
			}
		}
	}
}

// leftoversByDyno lists the test sandbox manager's leftovers by dyno ID.
func leftoversByDyno(t *testing.T) map[string]sandbox.Leftover {
	t.Helper()
	out := map[string]sandbox.Leftover{}
	for _, lo := range sandboxtest.Manager.Leftovers() {
		out[lo.Labels["dyno"]] = lo
	}
	return out
}

// recordChanges watches dyno records from now on; the returned function
// lists the changes seen so far.
func (h *harness) recordChanges(t *testing.T) func() []store.Event[grid.Dyno] {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ch, err := h.st.WatchDynos(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu      sync.Mutex
		changes []store.Event[grid.Dyno]
		wg      sync.WaitGroup
	)
	synced := make(chan struct{})
	wg.Go(func() {
		live := false
		for ev := range ch {
			if ev.Synced {
				live = true
				close(synced)
				continue
			}
			if live {
				mu.Lock()
				changes = append(changes, ev)
				mu.Unlock()
			}
		}
	})
	t.Cleanup(func() { cancel(); wg.Wait() })
	<-synced
	return func() []store.Event[grid.Dyno] {
		mu.Lock()
		defer mu.Unlock()
		return append([]store.Event[grid.Dyno](nil), changes...)
	}
}

// procStartTime is a process's start time (/proc/<pid>/stat field 22).
func procStartTime(t *testing.T, pid int) uint64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	var start uint64
	fmt.Sscan(f[19], &start)
	return start
}

// alive reports whether process pid exists and has not exited.
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	return len(f) > 0 && f[0] != "Z" && f[0] != "X"
}

// eventually polls cond until it holds or limit passes.
func eventually(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for wait := time.Millisecond; !cond(); wait = min(2*wait, 50*time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", limit, what)
		}
		time.Sleep(wait) // polling interval, not synchronisation
	}
}
