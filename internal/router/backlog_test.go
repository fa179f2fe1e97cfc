package router

import (
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dynogrid/grid/internal/grid"
)

// With every dyno at MaxInflight, requests wait in the app's backlog and
// go out as slots free up; beyond Backlog per dyno they get H11 at once.
func TestBacklogWaitsThenH11(t *testing.T) {
	t.Parallel()
	h := startRouter(t, func(c *Config) { c.MaxInflight, c.Backlog = 1, 1 })
	busy, open := gate(t, "web.1")
	h.app("busy", 1)
	h.dyno("busy", 1, grid.DynoUp, busy.addr())
	h.await("busy", endpointsAre(1))
	logs := h.tailRouter("busy")
	q := h.r.backlog("busy")

	results := make(chan string, 2)
	send := func() {
		res, err := h.client.Get("http://busy.localhost/")
		if err != nil {
			t.Error(err)
			results <- ""
			return
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		results <- res.Status + " " + string(body)
	}
	go send() // takes the dyno's one slot until the gate opens
	waitFor(t, "first request at the dyno", func() bool { return busy.hits.Load() == 1 })
	go send() // waits
	waitFor(t, "second request in the backlog", func() bool { return q.waiting() == 1 })

	res, body := h.get("http://busy.localhost/")
	if res.StatusCode != 503 || !strings.Contains(body, "Application error") {
		t.Errorf("beyond the backlog: %d %q", res.StatusCode, body)
	}
	if line := nextLine(t, logs); !strings.HasPrefix(line, `at=error code=H11 desc="Backlog too deep"`) || !strings.Contains(line, "dyno= connect= service= status=503") {
		t.Errorf("log line %s", line)
	}
	if busy.hits.Load() != 1 {
		t.Errorf("dyno saw %d requests while at its limit", busy.hits.Load())
	}
	open()
	for i := 0; i < 2; i++ {
		if got := <-results; got != "200 OK web.1" {
			t.Errorf("queued request: %q", got)
		}
	}
	if q.waiting() != 0 {
		t.Errorf("%d still waiting", q.waiting())
	}
}

// A request that waits BacklogTimeout without a slot gets H11.
func TestBacklogTimeoutIsH11(t *testing.T) {
	t.Parallel()
	h := startRouter(t, func(c *Config) { c.MaxInflight, c.BacklogTimeout = 1, 100*time.Millisecond })
	busy, _ := gate(t, "web.1")
	h.app("stuck", 1)
	h.dyno("stuck", 1, grid.DynoUp, busy.addr())
	h.await("stuck", endpointsAre(1))
	logs := h.tailRouter("stuck")
	go hold(h, "http://stuck.localhost/")
	waitFor(t, "first request at the dyno", func() bool { return busy.hits.Load() == 1 })
	res, _ := h.get("http://stuck.localhost/")
	if res.StatusCode != 503 {
		t.Errorf("status %d", res.StatusCode)
	}
	if line := nextLine(t, logs); !strings.Contains(line, `code=H11 desc="Backlog too deep"`) {
		t.Errorf("log line %s", line)
	}
}

// A request waiting in the backlog goes to a dyno that comes up.
func TestBacklogTakesNewDyno(t *testing.T) {
	t.Parallel()
	h := startRouter(t, func(c *Config) { c.MaxInflight = 1 })
	busy, _ := gate(t, "web.1")
	fresh := newBackend(t, "web.2", nil)
	h.app("grow", 2)
	h.dyno("grow", 1, grid.DynoUp, busy.addr())
	h.await("grow", endpointsAre(1))
	go hold(h, "http://grow.localhost/")
	waitFor(t, "first request at the dyno", func() bool { return busy.hits.Load() == 1 })
	var got atomic.Value
	done := make(chan struct{})
	go func() {
		defer close(done)
		res, err := h.client.Get("http://grow.localhost/")
		if err != nil {
			t.Error(err)
			return
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		got.Store(string(body))
	}()
	waitFor(t, "request in the backlog", func() bool { return h.r.backlog("grow").waiting() == 1 })
	h.dyno("grow", 2, grid.DynoUp, fresh.addr())
	<-done
	if got.Load() != "web.2:" {
		t.Errorf("queued request answered %q; want web.2's answer", got.Load())
	}
}

// Sequential requests to two idle dynos, one of which answers slowly,
// mostly go to the fast one: the balancer weighs latency.
func TestSlowDynoGetsLessTraffic(t *testing.T) {
	t.Parallel()
	h := startRouter(t, nil)
	fast := newBackend(t, "web.1", nil)
	slow := newBackend(t, "web.2", func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(20 * time.Millisecond) // the slowness under test, not synchronisation
		io.WriteString(w, "web.2")
	})
	h.app("mixed", 2)
	h.dyno("mixed", 1, grid.DynoUp, fast.addr())
	h.dyno("mixed", 2, grid.DynoUp, slow.addr())
	h.await("mixed", endpointsAre(2))
	const n = 100
	for i := 0; i < n; i++ {
		if res, _ := h.get("http://mixed.localhost/"); res.StatusCode != 200 {
			t.Fatalf("status %d", res.StatusCode)
		}
	}
	t.Logf("fast dyno %d, slow dyno %d of %d requests", fast.hits.Load(), slow.hits.Load(), n)
	if slow.hits.Load() > n/10 {
		t.Errorf("slow dyno got %d of %d requests", slow.hits.Load(), n)
	}
}

// hold sends a GET and reads its response to the end: with a gate
// backend, it holds a slot until the gate opens. (Closing the body early
// would end the request at the router.)
func hold(h *harness, url string) {
	res, err := h.client.Get(url)
	if err != nil {
		return
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
}

// An app's H11 lines are written in full up to h11LinesPerWindow a
// second; the rest are counted for one summary.
func TestH11LogRateLimit(t *testing.T) {
	t.Parallel()
	var l h11Log
	t0 := time.Unix(1000, 0)
	for i := range h11LinesPerWindow {
		if full, _ := l.admit(t0.Add(time.Duration(i) * time.Millisecond)); !full {
			t.Fatalf("H11 %d in the window not logged in full", i+1)
		}
	}
	if full, schedule := l.admit(t0.Add(500 * time.Millisecond)); full || !schedule {
		t.Errorf("first H11 over the limit: full %v, schedule %v; want false, true", full, schedule)
	}
	if full, schedule := l.admit(t0.Add(600 * time.Millisecond)); full || schedule {
		t.Errorf("second H11 over the limit: full %v, schedule %v; want false, false", full, schedule)
	}
	if full, _ := l.admit(t0.Add(h11Window)); !full {
		t.Error("first H11 of the next window not logged in full")
	}
	if n := l.take(); n != 2 {
		t.Errorf("unlogged %d, want 2", n)
	}
	if n := l.take(); n != 0 {
		t.Errorf("unlogged after take %d, want 0", n)
	}
}

// Past h11PaceAfter immediate refusals in a window, an app's H11s are
// held; a new window starts unpaced.
func TestH11Pacing(t *testing.T) {
	t.Parallel()
	var l h11Log
	t0 := time.Unix(1000, 0)
	for i := range h11PaceAfter {
		if d := l.refuse(t0); d != 0 {
			t.Fatalf("refusal %d held %v", i+1, d)
		}
	}
	if d := l.refuse(t0.Add(time.Millisecond)); d != h11Hold {
		t.Errorf("refusal past the limit held %v, want %v", d, h11Hold)
	}
	if d := l.refuse(t0.Add(h11Window)); d != 0 {
		t.Errorf("first refusal of the next window held %v", d)
	}
}
