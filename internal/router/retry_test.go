package router

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"testing/iotest"
	"time"

	"github.com/dynogrid/grid/internal/grid"
)

// closingConn stands for a pooled connection the dyno closes just as the
// router reuses it: a request after the first on the connection fails
// before any byte of it is written.
type closingConn struct {
	net.Conn
	answered atomic.Bool
	failed   *atomic.Int64
}

func (c *closingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.answered.Store(true)
	}
	return n, err
}

func (c *closingConn) Write(p []byte) (int, error) {
	if c.answered.Swap(false) {
		c.failed.Add(1)
		c.Conn.Close()
		return 0, syscall.EPIPE
	}
	return c.Conn.Write(p)
}

// closeReused makes every connection to addr a closingConn.
func closeReused(addr string, failed *atomic.Int64) func(*Router) {
	return func(r *Router) {
		r.wrapConn = func(a string, c net.Conn) net.Conn {
			if a != addr {
				return c
			}
			return &closingConn{Conn: c, failed: failed}
		}
	}
}

// A request that never reached the dyno, because the pooled connection it
// was to go out on had just been closed, is sent again, whatever its
// method, with its body: on the same dyno over a new connection
// (the Transport's rule), or on another dyno when that one no longer
// listens (the router's).
func TestRequestOnClosedPooledConnIsRetried(t *testing.T) {
	t.Parallel()
	t.Run("same dyno", func(t *testing.T) {
		t.Parallel()
		a := newBackend(t, "web.1", nil)
		var failed atomic.Int64
		h := startRouterWith(t, nil, closeReused(a.addr(), &failed))
		h.app("reuse", 1)
		h.dyno("reuse", 1, grid.DynoUp, a.addr())
		h.await("reuse", endpointsAre(1))
		for i := 0; i < 20; i++ {
			payload := fmt.Sprint("payload-", i, strings.Repeat(".", i*1000))
			res, body := h.do(mustRequest(t, "POST", "http://reuse.localhost/", strings.NewReader(payload)))
			if res.StatusCode != 200 || body != "web.1:"+payload {
				t.Fatalf("request %d: %d %.40q", i, res.StatusCode, body)
			}
		}
		if failed.Load() == 0 || a.hits.Load() != 20 {
			t.Errorf("%d writes failed, dyno saw %d requests; want some, and 20", failed.Load(), a.hits.Load())
		}
	})
	t.Run("another dyno", func(t *testing.T) {
		t.Parallel()
		a, b := newBackend(t, "web.1", nil), newBackend(t, "web.2", nil)
		var failed atomic.Int64
		h := startRouterWith(t, func(c *Config) { c.Rand = func(int) int { return 0 } }, closeReused(a.addr(), &failed))
		h.app("moved", 2)
		h.dyno("moved", 1, grid.DynoUp, a.addr())
		h.await("moved", endpointsAre(1))
		if res, _ := h.do(mustRequest(t, "POST", "http://moved.localhost/", strings.NewReader("first"))); res.StatusCode != 200 {
			t.Fatalf("first request: %d", res.StatusCode)
		}
		a.Listener.Close() // shutting down: its pooled connection is still open
		h.dyno("moved", 2, grid.DynoUp, b.addr())
		h.await("moved", endpointsAre(2))
		res, body := h.do(mustRequest(t, "POST", "http://moved.localhost/", strings.NewReader("second")))
		if res.StatusCode != 200 || body != "web.2:second" {
			t.Errorf("%d %q", res.StatusCode, body)
		}
		if failed.Load() != 1 || a.hits.Load() != 1 || b.hits.Load() != 1 {
			t.Errorf("failed writes %d, hits %d and %d; want 1, 1, 1", failed.Load(), a.hits.Load(), b.hits.Load())
		}
	})
}

// A request that did go out, on a reused connection the dyno then closed
// without a response byte, is sent again only when it is replayable by
// Go's rules (GET, HEAD, OPTIONS, TRACE, or an Idempotency-Key): the dyno
// may have acted on it.
func TestWrittenRequestRetriedOnlyWhenIdempotent(t *testing.T) {
	t.Parallel()
	type connKey struct{}
	var seen atomic.Int64
	// Every second request on a connection is read in full, then the
	// connection is closed without a response.
	rude := newBackendWith(t, "web.1", func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		seen.Add(1)
		if n := r.Context().Value(connKey{}).(*atomic.Int64); n.Add(1)%2 == 0 {
			if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
				conn.Close()
			}
			return
		}
		io.WriteString(w, "ok")
	}, func(s *http.Server) {
		s.ConnContext = func(ctx context.Context, _ net.Conn) context.Context {
			return context.WithValue(ctx, connKey{}, new(atomic.Int64))
		}
	})
	h := startRouter(t, nil)
	h.app("rude", 1)
	h.dyno("rude", 1, grid.DynoUp, rude.addr())
	h.await("rude", endpointsAre(1))
	cases := []struct {
		name   string
		method string
		key    string
		status int
		sent   int64 // times the dyno saw it
	}{
		{"GET", "GET", "", 200, 2},
		{"POST", "POST", "", 503, 1},
		{"POST with Idempotency-Key", "POST", "k-123", 200, 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// A first request leaves a pooled connection; the second goes
			// out on it and is dropped.
			for i := 0; i < 2; i++ {
				req := mustRequest(t, tc.method, "http://rude.localhost/", strings.NewReader("body"))
				if tc.key != "" {
					req.Header.Set("Idempotency-Key", tc.key)
				}
				before := seen.Load()
				res, _ := h.do(req)
				if i == 0 {
					continue
				}
				if res.StatusCode != tc.status || seen.Load()-before != tc.sent {
					t.Errorf("%d, dyno saw it %d times; want %d, %d", res.StatusCode, seen.Load()-before, tc.status, tc.sent)
				}
			}
			h.r.table.Load().routes["rude"].endpoints[0].closeIdle()
		})
	}
}

func TestClientBodyReplays(t *testing.T) {
	t.Parallel()
	read := func(r io.Reader) string {
		t.Helper()
		b, err := io.ReadAll(iotest.OneByteReader(r))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	t.Run("whole body, any number of times", func(t *testing.T) {
		b := newClientBody(strings.NewReader("hello world"))
		first := b.first()
		io.ReadFull(first, make([]byte, 5))
		again, err := b.rewind()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := first.Read(make([]byte, 1)); !errors.Is(err, errBodyRewound) {
			t.Errorf("abandoned reader read on: %v", err)
		}
		if got := read(again); got != "hello world" {
			t.Errorf("replay %q", got)
		}
		third, _ := b.rewind()
		if got := read(third); got != "hello world" {
			t.Errorf("second replay %q", got)
		}
	})
	t.Run("more than replayLimit read: lost", func(t *testing.T) {
		big := bytes.Repeat([]byte("x"), replayLimit+1)
		b := newClientBody(bytes.NewReader(big))
		if got := read(b.first()); len(got) != len(big) {
			t.Fatalf("read %d bytes", len(got))
		}
		if _, err := b.rewind(); !errors.Is(err, errBodyLost) {
			t.Errorf("rewind: %v", err)
		}
	})
	t.Run("read error is the client's", func(t *testing.T) {
		b := newClientBody(iotest.ErrReader(io.ErrUnexpectedEOF))
		b.first().Read(make([]byte, 4))
		if !b.err() {
			t.Error("read error not remembered")
		}
	})
}

// A request's retry keeps off the host of the dyno it failed on, when
// another host has a dyno: a host that dies takes all its dynos at once,
// and a GET resent to a sibling of the dyno that dropped it would be
// dropped again, with the one resend it gets spent (H13). With every dyno
// on that host, the retry goes to a sibling after all.
func TestRetryKeepsOffTheFailedDynosHost(t *testing.T) {
	t.Parallel()
	var dropped atomic.Int64
	dying := func(w http.ResponseWriter, r *http.Request) {
		dropped.Add(1)
		if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
			conn.Close()
		}
	}
	h := startRouter(t, nil)
	h.app("cut", 3)
	h.dynoOn("h2", "cut", 1, grid.DynoUp, newBackend(t, "web.1", dying).addr())
	h.dynoOn("h2", "cut", 2, grid.DynoUp, newBackend(t, "web.2", dying).addr())
	h.dynoOn("h1", "cut", 3, grid.DynoUp, newBackend(t, "web.3", nil).addr())
	h.await("cut", endpointsAre(3))
	const n = 40
	for range n {
		if res, body := h.get("http://cut.localhost/"); res.StatusCode != 200 || !strings.HasPrefix(body, "web.3") {
			t.Fatalf("%d %q, want web.3's answer", res.StatusCode, body)
		}
	}
	if d := dropped.Load(); d == 0 || d > n {
		t.Errorf("the dying dynos saw %d requests; want some, and none twice", d)
	}

	h.app("onehost", 2)
	h.dynoOn("h1", "onehost", 1, grid.DynoUp, newBackend(t, "web.1", dying).addr())
	h.dynoOn("h1", "onehost", 2, grid.DynoUp, newBackend(t, "web.2", nil).addr())
	h.await("onehost", endpointsAre(2))
	for range n {
		if res, body := h.get("http://onehost.localhost/"); res.StatusCode != 200 || !strings.HasPrefix(body, "web.2") {
			t.Fatalf("one host: %d %q, want web.2's answer", res.StatusCode, body)
		}
	}
}

// When the manager holds a host lost, the requests waiting for an answer
// from its dynos that may be sent again (a GET, a POST with an
// Idempotency-Key) go to another dyno at once, rather than wait out
// RequestTimeout on a machine that may be dead and will close nothing.
// A POST without a key waits on (its dyno may have acted on it, and may
// yet answer), and the lost dyno is not dialled again.
func TestLostHostsWaitingRequestsGoElsewhere(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	var waiting atomic.Int64
	stuck := newBackend(t, "web.1", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if r.URL.Path == "/hang" {
			waiting.Add(1)
			<-release
		}
		fmt.Fprintf(w, "web.1:%s", body)
	})
	var once sync.Once
	free := func() { once.Do(func() { close(release) }) }
	t.Cleanup(free) // before the backend closes
	h := startRouter(t, nil)
	h.app("lost", 1)
	h.dynoOn("h2", "lost", 1, grid.DynoUp, stuck.addr())
	h.await("lost", endpointsAre(1))
	if res, body := h.get("http://lost.localhost/"); res.StatusCode != 200 { // leaves a pooled link
		t.Fatalf("%d %q", res.StatusCode, body)
	}

	type result struct {
		name, body string
		status     int
		err        error
	}
	results := make(chan result, 3)
	send := func(name, method, key string, body io.Reader) {
		req := mustRequest(t, method, "http://lost.localhost/hang", body)
		if key != "" {
			req.Header.Set("Idempotency-Key", key)
		}
		go func() {
			res, err := h.client.Do(req)
			if err != nil {
				results <- result{name: name, err: err}
				return
			}
			b, err := io.ReadAll(res.Body)
			res.Body.Close()
			results <- result{name, string(b), res.StatusCode, err}
		}()
	}
	send("GET", "GET", "", nil)                               // the fast path, on the pooled link
	send("keyed POST", "POST", "k-1", strings.NewReader("a")) // net/http's
	send("POST", "POST", "", strings.NewReader("b"))
	for waiting.Load() < 3 {
		time.Sleep(5 * time.Millisecond)
	}
	lost := h.r.table.Load().routes["lost"].endpoints[0]
	h.dynoOn("h1", "lost", 2, grid.DynoUp, newBackend(t, "web.2", nil).addr())
	h.await("lost", endpointsAre(2))
	if _, err := h.st.UpdateHostControl(bg, "h2", func(c *grid.HostControl) error { c.Lost = true; return nil }); err != nil {
		t.Fatal(err)
	}

	want := map[string]string{"GET": "web.2:", "keyed POST": "web.2:a"}
	for range want {
		select {
		case r := <-results:
			if r.err != nil || r.status != 200 || r.body != want[r.name] {
				t.Errorf("%s: %d %q %v; want 200 %q", r.name, r.status, r.body, r.err, want[r.name])
			}
		case <-time.After(10 * time.Second):
			t.Fatal("requests waiting on the lost host's dyno still wait")
		}
	}
	select {
	case r := <-results:
		t.Fatalf("%s answered %d %q %v while its dyno still had it", r.name, r.status, r.body, r.err)
	case <-time.After(200 * time.Millisecond):
	}
	if _, err := h.r.dial(bg, lost); !errors.Is(err, errHostLost) {
		t.Errorf("dialling the lost dyno: %v, want errHostLost", err)
	}
	free()
	if r := <-results; r.err != nil || r.status != 200 || r.body != "web.1:b" {
		t.Errorf("%s: %d %q %v; want web.1's answer", r.name, r.status, r.body, r.err)
	}
}

// A dial under way to a dyno when its host is lost ends then, rather
// than at ConnectTimeout (a dead machine answers no SYN), and the request
// goes to another dyno.
func TestLostHostsDialsEnd(t *testing.T) {
	t.Parallel()
	dark := blackhole(t)
	dialling := make(chan struct{}, 8)
	h := startRouterWith(t, func(c *Config) { c.ConnectTimeout = time.Minute }, func(r *Router) {
		r.dialer.ControlContext = func(_ context.Context, _, addr string, _ syscall.RawConn) error {
			if addr == dark {
				dialling <- struct{}{}
			}
			return nil
		}
	})
	h.app("dark", 1)
	h.dynoOn("h2", "dark", 1, grid.DynoUp, dark)
	h.await("dark", endpointsAre(1))
	type result struct {
		status int
		body   string
		err    error
	}
	done := make(chan result, 1)
	go func() {
		res, err := h.client.Get("http://dark.localhost/")
		if err != nil {
			done <- result{err: err}
			return
		}
		b, err := io.ReadAll(res.Body)
		res.Body.Close()
		done <- result{res.StatusCode, string(b), err}
	}()
	<-dialling
	h.dynoOn("h1", "dark", 2, grid.DynoUp, newBackend(t, "web.2", nil).addr())
	h.await("dark", endpointsAre(2))
	if _, err := h.st.UpdateHostControl(bg, "h2", func(c *grid.HostControl) error { c.Lost = true; return nil }); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-done:
		if r.err != nil || r.status != 200 || r.body != "web.2:" {
			t.Errorf("%d %q %v; want web.2's answer", r.status, r.body, r.err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the dial to the lost host's dyno still waits")
	}
}

// A replayable request that went out on a pooled connection the dyno
// then closed unanswered is sent at most once more, even when the dyno
// no longer listens for the same-dyno resend (rule 1): that failed dial
// does not wipe out that the request went out. Here every dyno drops the
// request and stops listening, so it must reach exactly two of them, on
// the fast path (a GET) and on net/http's (a keyed POST).
func TestFailedRedialStillCountsTheResend(t *testing.T) {
	t.Parallel()
	for _, method := range []string{"GET", "POST"} {
		t.Run(method, func(t *testing.T) {
			t.Parallel()
			var trap atomic.Bool
			var dropped atomic.Int64
			var dynos []*backend
			for i := 1; i <= 3; i++ {
				var b *backend
				b = newBackend(t, fmt.Sprint("web.", i), func(w http.ResponseWriter, r *http.Request) {
					io.Copy(io.Discard, r.Body)
					if !trap.Load() {
						io.WriteString(w, "ok")
						return
					}
					dropped.Add(1)
					b.Listener.Close()
					if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
						conn.Close()
					}
				})
				dynos = append(dynos, b)
			}
			h := startRouter(t, func(c *Config) { c.SlowStart = time.Nanosecond })
			h.app("drop", 3)
			for i, b := range dynos {
				h.dyno("drop", i+1, grid.DynoUp, b.addr())
			}
			h.await("drop", endpointsAre(3))
			send := func() int {
				req := mustRequest(t, method, "http://drop.localhost/", nil)
				if method == "POST" {
					req = mustRequest(t, method, "http://drop.localhost/", strings.NewReader("body"))
					req.Header.Set("Idempotency-Key", "k-1")
				}
				res, _ := h.do(req)
				return res.StatusCode
			}
			// Each dyno answers once at least, leaving a pooled connection.
			for i := 0; i < 200 && slices.ContainsFunc(dynos, func(b *backend) bool { return b.hits.Load() == 0 }); i++ {
				send()
			}
			trap.Store(true)
			if status := send(); status != 503 || dropped.Load() != 2 {
				t.Errorf("%d, sent %d times; want 503, 2", status, dropped.Load())
			}
		})
	}
}
