package router

import (
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/dynogrid/grid/internal/grid"
)

// A dyno process killed under the router refuses connections: every
// request, whatever its method, goes to another dyno, and the dead one
// is quarantined.
func TestKilledDynoIsRoutedAround(t *testing.T) {
	t.Parallel()
	h := startRouter(t, nil)
	h.app("killed", 3)
	ps := []*proc{startProcess(t, "web.1"), startProcess(t, "web.2"), startProcess(t, "web.3")}
	for i, p := range ps {
		h.dyno("killed", i+1, grid.DynoUp, p.addr)
	}
	h.await("killed", endpointsAre(3))
	ps[2].kill()
	for i := 0; i < 30; i++ {
		payload := fmt.Sprint("charge-", i)
		res, body := h.do(mustRequest(t, "POST", "http://killed.localhost/", strings.NewReader(payload)))
		if res.StatusCode != 200 || !strings.HasSuffix(body, ":"+payload) || strings.HasPrefix(body, "web.3") {
			t.Fatalf("request %d: %d %q", i, res.StatusCode, body)
		}
	}
	if ep := h.endpoint("killed", "web.3"); !ep.quarantined(time.Now().UnixNano()) {
		t.Error("killed dyno not quarantined")
	}
}

// endpoint returns the app's endpoint of the named dyno.
func (h *harness) endpoint(app, dyno string) *endpoint {
	h.t.Helper()
	for _, ep := range h.r.table.Load().routes[app].endpoints {
		if ep.dyno == dyno {
			return ep
		}
	}
	h.t.Fatalf("no endpoint %s of %s", dyno, app)
	return nil
}

// gate is a backend that sends its response headers at once and holds
// the body until the gate opens: its requests stay in flight without
// timing out.
func gate(t *testing.T, name string) (*backend, func()) {
	open := make(chan struct{})
	b := newBackend(t, name, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(200)
		http.NewResponseController(w).Flush()
		<-open
		io.WriteString(w, name)
	})
	var once sync.Once
	release := func() { once.Do(func() { close(open) }) }
	t.Cleanup(release)
	return b, release
}

// A frozen dyno (SIGSTOP: the kernel still accepts connections) answers
// nothing: requests on it get H12, and at the third in a row the router
// reports it hung in its record and takes it out of rotation, so the
// app's other dyno serves everything. Once the process runs again the
// probe finds it answering: it is back in rotation, and the report is
// withdrawn.
func TestFrozenDynoIsEjectedProbedAndReported(t *testing.T) {
	t.Parallel()
	h := startRouter(t, func(c *Config) {
		c.RequestTimeout = 2 * time.Second
		c.ProbeInterval = 100 * time.Millisecond
	})
	web1, open := gate(t, "web.1")
	frozen := startProcess(t, "web.2")
	h.app("frozen", 2)
	h.dyno("frozen", 1, grid.DynoUp, web1.addr())
	h.dyno("frozen", 2, grid.DynoUp, frozen.addr)
	h.await("frozen", endpointsAre(2))
	records := h.watchRecords()
	logs := h.tailRouter("frozen")
	ep1, ep2 := h.endpoint("frozen", "web.1"), h.endpoint("frozen", "web.2")

	frozen.signal(syscall.SIGSTOP)
	// web.1 holds its requests, so the balancer sends about every other
	// one to web.2, where they hang. Send them one by one until web.2 has
	// HangLimit; they time out, and it is ejected.
	var wg sync.WaitGroup
	statuses := make(chan int, 100)
	for n := int64(1); ep2.inflight.Load() < DefaultHangLimit; n++ {
		if n > 60 {
			t.Fatal("web.2 got no requests")
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := h.client.Get("http://frozen.localhost/")
			if err != nil {
				t.Error(err)
				return
			}
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
			statuses <- res.StatusCode
		}()
		waitFor(t, "request in flight", func() bool { return ep1.inflight.Load()+ep2.inflight.Load() >= n })
	}
	waitFor(t, "web.2 ejected", ep2.hang.ejected.Load)
	open()
	wg.Wait()
	close(statuses)
	timedOut := 0
	for s := range statuses {
		if s == 503 {
			timedOut++
		}
	}
	if timedOut != DefaultHangLimit {
		t.Errorf("%d requests timed out before the dyno was ejected; want %d", timedOut, DefaultHangLimit)
	}
	var h12 int
	for h12 < DefaultHangLimit {
		if line := nextLine(t, logs); strings.Contains(line, "code=H12") {
			if !strings.Contains(line, "dyno=web.2") {
				t.Errorf("H12 from the wrong dyno: %s", line)
			}
			h12++
		}
	}

	// Out of rotation: web.1 serves everything, at once.
	for i := 0; i < 20; i++ {
		if res, body := h.get("http://frozen.localhost/"); res.StatusCode != 200 || body != "web.1" {
			t.Fatalf("with web.2 ejected: %d %q", res.StatusCode, body)
		}
	}
	rs := records.next()
	for len(rs.Hung) == 0 {
		rs = records.next()
	}
	if len(rs.Hung) != 1 || rs.Hung[0].ID != "d2" || rs.Hung[0].App != "frozen" || rs.Hung[0].Name != "web.2" || rs.Hung[0].Since.IsZero() {
		t.Errorf("record reports %+v; want d2 of frozen", rs.Hung)
	}

	frozen.signal(syscall.SIGCONT)
	for rs = records.next(); len(rs.Hung) > 0; rs = records.next() {
	}
	if ep2.hang.ejected.Load() {
		t.Error("report withdrawn, but the dyno is still ejected")
	}
	waitFor(t, "web.2 served again", func() bool {
		res, body := h.get("http://frozen.localhost/")
		return res.StatusCode == 200 && body == "web.2:"
	})
}

// The only dyno of an app is never ejected, however hung: it is
// reported, and requests still go to it (H12 each), for there is no
// other dyno to send them to.
func TestLastDynoIsNeverEjected(t *testing.T) {
	t.Parallel()
	h := startRouter(t, func(c *Config) {
		c.RequestTimeout = 200 * time.Millisecond
		c.ProbeInterval = 100 * time.Millisecond
	})
	frozen := startProcess(t, "web.1")
	h.app("alone", 1)
	h.dyno("alone", 1, grid.DynoUp, frozen.addr)
	h.await("alone", endpointsAre(1))
	records := h.watchRecords()
	logs := h.tailRouter("alone")
	frozen.signal(syscall.SIGSTOP)
	for i := 0; i < DefaultHangLimit+1; i++ {
		if res, _ := h.get("http://alone.localhost/"); res.StatusCode != 503 {
			t.Fatalf("request %d: %d", i, res.StatusCode)
		}
		if line := nextLine(t, logs); !strings.HasPrefix(line, `at=error code=H12 desc="Request timeout"`) || !strings.Contains(line, "dyno=web.1") {
			t.Fatalf("request %d: %s", i, line)
		}
	}
	ep := h.endpoint("alone", "web.1")
	if ep.hang.ejected.Load() || ep.hang.hungSince().IsZero() {
		t.Errorf("ejected %v, hung since %v; want kept in rotation, and hung", ep.hang.ejected.Load(), ep.hang.hungSince())
	}
	rs := records.next()
	for !slices.ContainsFunc(rs.Hung, func(d grid.HungDyno) bool { return d.ID == "d1" }) {
		rs = records.next()
	}
}

// waitFor polls cond until it holds, failing the test after 20 s.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond) // polling interval, not synchronisation
	}
}

// A dyno that does not accept the connection within ConnectTimeout is
// quarantined and the request goes to another dyno; with nowhere else to
// go the answer is H19.
func TestUnacceptedConnectionIsRoutedAroundOrH19(t *testing.T) {
	t.Parallel()
	h := startRouter(t, func(c *Config) { c.ConnectTimeout = 200 * time.Millisecond })
	dark := blackhole(t)
	good := newBackend(t, "web.2", nil)
	h.app("dark", 2)
	h.dyno("dark", 1, grid.DynoUp, dark)
	h.dyno("dark", 2, grid.DynoUp, good.addr())
	h.await("dark", endpointsAre(2))
	for i := 0; i < 10; i++ {
		payload := fmt.Sprint("p", i)
		if res, body := h.do(mustRequest(t, "POST", "http://dark.localhost/", strings.NewReader(payload))); res.StatusCode != 200 || body != "web.2:"+payload {
			t.Fatalf("request %d: %d %q", i, res.StatusCode, body)
		}
	}
	if !h.endpoint("dark", "web.1").quarantined(time.Now().UnixNano()) {
		t.Error("dark dyno not quarantined")
	}

	h.app("alldark", 1)
	h.dyno("alldark", 1, grid.DynoUp, dark)
	h.await("alldark", endpointsAre(1))
	logs := h.tailRouter("alldark")
	if res, _ := h.get("http://alldark.localhost/"); res.StatusCode != 503 {
		t.Errorf("status %d", res.StatusCode)
	}
	if line := nextLine(t, logs); !strings.HasPrefix(line, `at=error code=H19 desc="Backend connection timeout"`) {
		t.Errorf("log line %s", line)
	}
}
