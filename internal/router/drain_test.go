package router

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dynogrid/grid/internal/grid"
)

// hostStopDelay is how long a host waits between marking a dyno down and
// sending it SIGTERM (host agent; here the test plays the host).
const hostStopDelay = 100 * time.Millisecond

// dynoServer is a web dyno as an app runs it: a real listener and Go's
// http.Server, which on SIGTERM (Shutdown) stops listening, closes idle
// keep-alive connections and finishes the requests in flight.
type dynoServer struct {
	grid.Dyno
	srv    *http.Server
	served chan error
	hits   atomic.Int64
}

func startDyno(t testing.TB, app string, n int) *dynoServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	d := &dynoServer{
		Dyno:   grid.Dyno{ID: fmt.Sprint("d", n), Host: "h1", App: app, Name: "web.1", Type: "web", State: grid.DynoUp, Addr: ln.Addr().String()},
		served: make(chan error, 1),
	}
	// The handler checks the body arrived whole: a replayed or truncated
	// body would fail the request.
	d.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d.hits.Add(1)
		n, err := io.Copy(io.Discard, r.Body)
		if err != nil || r.ContentLength >= 0 && n != r.ContentLength || r.Header.Get("X-Len") != "" && r.Header.Get("X-Len") != strconv.FormatInt(n, 10) {
			http.Error(w, fmt.Sprintf("body: %d bytes, %v", n, err), http.StatusBadRequest)
			return
		}
		fmt.Fprintf(w, "%s %d", d.ID, n)
	})}
	go func() { d.served <- d.srv.Serve(ln) }()
	t.Cleanup(func() { d.srv.Close(); <-d.served; d.served <- nil })
	return d
}

// stop is SIGTERM for an app that shuts down gracefully.
func (d *dynoServer) stop(t testing.TB) {
	t.Helper()
	ctx, cancel := context.WithTimeout(bg, 30*time.Second)
	defer cancel()
	if err := d.srv.Shutdown(ctx); err != nil {
		t.Errorf("dyno %s shutdown: %v", d.ID, err)
	}
	if err := <-d.served; !errors.Is(err, http.ErrServerClosed) {
		t.Errorf("dyno %s: %v", d.ID, err)
	}
	d.served <- nil
}

// A release replaces a web dyno start-before-stop, as the manager and the
// host do it: the new dyno comes up and every router acknowledges it;
// then the host marks the old one down, waits, and sends SIGTERM. Under a
// steady load of keep-alive clients, no request fails, deploy after
// deploy.
//
// Were the host not to wait, requests would still be in flight to the old
// dyno, on pooled connections its shutdown closes under them. Then a
// request that is safe to send again is retried (classify.go) and still
// no client sees an error; only a plain POST that went out just as its
// connection closed may fail (nobody can tell whether the dyno saw it).
func TestDeploysLoseNoRequests(t *testing.T) {
	t.Parallel()
	post := func(i int64, idempotent bool) *http.Request {
		body := strings.Repeat("x", int(i%5000))
		req := mustRequest(t, "POST", "http://deploy.localhost/charge", strings.NewReader(body))
		req.Header.Set("X-Len", strconv.Itoa(len(body)))
		if idempotent {
			req.Header.Set("Idempotency-Key", fmt.Sprint("key-", i))
		}
		return req
	}
	for _, tc := range []struct {
		name      string
		stopDelay time.Duration
		request   func(i int64) *http.Request
	}{
		{"GET and POST, host waits", hostStopDelay, func(i int64) *http.Request {
			if i%2 == 0 {
				return mustRequest(t, "GET", "http://deploy.localhost/", nil)
			}
			return post(i, false)
		}},
		{"GET and idempotent POST, host does not wait", 0, func(i int64) *http.Request {
			if i%2 == 0 {
				return mustRequest(t, "GET", "http://deploy.localhost/", nil)
			}
			return post(i, true)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ok, failed := deploys(t, 20, tc.stopDelay, tc.request)
			t.Logf("20 deploys, %d requests, %d failed", ok, failed)
			if failed != 0 {
				t.Errorf("%d requests failed", failed)
			}
		})
	}
}

// deploys replaces the web dyno of an app n times under load.
func deploys(t *testing.T, n int, stopDelay time.Duration, request func(i int64) *http.Request) (ok, failed int64) {
	h := startRouter(t, nil)
	h.app("deploy", 1)
	revs, records := h.watchDynoRevisions(), h.watchRecords()
	put := func(d grid.Dyno) uint64 {
		t.Helper()
		if err := h.st.PutDyno(bg, d); err != nil {
			t.Fatal(err)
		}
		return revs.of(d.Host + "." + d.App + "." + d.ID)
	}
	old := startDyno(t, "deploy", 0)
	records.until(put(old.Dyno))

	var seq atomic.Int64
	load := startLoad(t, h, 8, func() *http.Request { return request(seq.Add(1)) })
	for i := 1; i <= n; i++ {
		load.await(load.ok.Load() + 300)
		next := startDyno(t, "deploy", i)
		records.until(put(next.Dyno)) // every router routes to it

		down := old.Dyno
		down.State = grid.DynoDown
		put(down)
		time.Sleep(stopDelay) // the host's delay, not a synchronisation
		old.stop(t)
		if err := h.st.DeleteDyno(bg, old.Dyno); err != nil {
			t.Fatal(err)
		}
		if old.hits.Load() == 0 {
			t.Errorf("dyno %s served nothing", old.ID)
		}
		old = next
	}
	load.await(load.ok.Load() + 300)
	return load.stop()
}

// When a dyno leaves the table, the router closes its pooled connections
// to it: idle ones at once, busy ones when their request is done. A dyno
// stopping later has none to close under a request.
func TestRemovedDynoConnectionsClosed(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	done := sync.OnceFunc(func() { close(release) })
	open := make(chan int, 1)
	var n atomic.Int64
	a := newBackendWith(t, "web.1", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			<-release
		}
		io.WriteString(w, "ok")
	}, func(s *http.Server) {
		s.ConnState = func(_ net.Conn, s http.ConnState) {
			switch s {
			case http.StateNew:
				n.Add(1)
			case http.StateClosed, http.StateHijacked:
				n.Add(-1)
			default:
				return
			}
			select {
			case open <- 0: // wake awaitOpen
			default:
			}
		}
	})
	awaitOpen := func(want int) {
		t.Helper()
		deadline := time.After(5 * time.Second)
		for int(n.Load()) != want {
			select {
			case <-open:
			case <-deadline:
				t.Fatalf("%d connections open to the dyno, want %d", n.Load(), want)
			}
		}
	}
	h := startRouter(t, nil)
	t.Cleanup(done) // before the router and the dyno stop, should the test fail
	h.app("leaving", 1)
	h.dyno("leaving", 1, grid.DynoUp, a.addr())
	h.await("leaving", endpointsAre(1))

	slow := make(chan int, 1)
	go func() {
		res, err := h.client.Get("http://leaving.localhost/slow")
		if err != nil {
			slow <- 0
			return
		}
		res.Body.Close()
		slow <- res.StatusCode
	}()
	awaitOpen(1)
	if res, _ := h.get("http://leaving.localhost/"); res.StatusCode != 200 {
		t.Fatalf("status %d", res.StatusCode)
	}
	awaitOpen(2) // one busy, one idle in the pool

	h.dyno("leaving", 1, grid.DynoDown, a.addr())
	awaitOpen(1) // the idle one, at once
	done()
	if code := <-slow; code != 200 {
		t.Errorf("request in flight: %d", code)
	}
	awaitOpen(0) // the busy one, once done
}
