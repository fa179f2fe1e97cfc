package router

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dynogrid/grid/internal/grid"
	"github.com/dynogrid/grid/internal/gridtest"
	"github.com/dynogrid/grid/internal/store"
	"github.com/dynogrid/grid/internal/store/storetest"
)

// When NATS goes away the router keeps routing on its last table, for as
// long as it takes; when it is back, the router re-syncs and applies what
// changed meanwhile, replacing the table in one swap.
//
// The router reaches NATS through a proxy the test can cut, so it can stay
// cut off after the server is back while a server role changes the routes.
func TestRoutesThroughNATSOutage(t *testing.T) {
	t.Parallel()
	dir, natsAddr := t.TempDir(), gridtest.FreeAddr(t)
	var nats atomic.Pointer[store.Server]
	startNATS := func() {
		t.Helper()
		s, err := store.StartServer(store.ServerConfig{Dir: dir, Listen: natsAddr, Secret: storetest.Secret})
		if err != nil {
			t.Fatal(err)
		}
		nats.Store(s)
	}
	startNATS()
	t.Cleanup(func() { nats.Load().Shutdown() }) // after the clients close (cleanups run last first)
	admin := (&storetest.Server{Server: nats.Load()}).As(t, serverRole)
	link := newLinkProxy(t, natsAddr)
	rst := openStore(t, "nats://"+link.addr(), routerRole)

	h := startRouterOn(t, admin, rst, func(c *Config) {
		c.Heartbeat = 50 * time.Millisecond
		c.Logger = slog.New(logHandler{t})
	}, nil)
	h.app("steady", 2)
	a, b := newBackend(t, "web.1", nil), newBackend(t, "web.2", nil)
	h.dyno("steady", 1, grid.DynoUp, a.addr())
	h.dyno("steady", 2, grid.DynoUp, b.addr())
	h.await("steady", endpointsAre(2))

	load := startLoad(t, h, 4, func() *http.Request { return mustRequest(t, "GET", "http://steady.localhost/", nil) })
	tables := watchTables(t, h.r, func(rt map[string]*route) bool { return rt["steady"] != nil && len(rt["steady"].endpoints) > 0 })

	// All of NATS goes down mid-traffic.
	load.await(500)
	before, down := load.ok.Load(), time.Now()
	nats.Load().Shutdown()
	awaitLink(t, rst, false)
	load.await(before + 20000)
	link.cut() // the router stays cut off after the server is back
	startNATS()
	awaitLink(t, admin, true)

	// Meanwhile web.2 is removed and web.3 comes up.
	c := newBackend(t, "web.3", nil)
	retry(t, func() error {
		return admin.DeleteDyno(bg, grid.Dyno{ID: "d2", Host: "h1", App: "steady"})
	})
	retry(t, func() error {
		return admin.PutDyno(bg, grid.Dyno{ID: "d3", Host: "h1", App: "steady", Name: "web.3", Type: "web", State: grid.DynoUp, Addr: c.addr()})
	})
	rev := lastDynoRevision(t, admin)
	load.await(load.ok.Load() + 1000)
	if rt := h.r.table.Load().routes["steady"]; len(rt.endpoints) != 2 || rt.endpoints[1].dyno != "web.2" {
		t.Fatalf("route changed while the router was cut off: %+v", rt.endpoints)
	}
	during, outage := load.ok.Load()-before, time.Since(down)

	// Back: the re-sync applies both changes, and the record says so.
	// (A watch opened before the restart can take many seconds to resume,
	// which is why the router re-syncs on reconnecting.)
	link.restore()
	rs := h.watchRecords().until(rev)
	routed := h.r.table.Load().routes["steady"].endpoints
	if len(routed) != 2 || routed[0].dyno != "web.1" || routed[1].dyno != "web.3" {
		t.Fatalf("after the re-sync (record %+v) routes %v", rs, routed)
	}
	// Requests that chose web.2 before the swap may still be on their
	// way to it: let every load worker finish one (4 workers, 100
	// requests) before counting.
	load.await(load.ok.Load() + 100)
	hitsB := b.hits.Load()
	load.await(load.ok.Load() + 1000)
	if b.hits.Load() != hitsB {
		t.Errorf("removed dyno got %d requests after the re-sync", b.hits.Load()-hitsB)
	}
	if c.hits.Load() == 0 {
		t.Error("new dyno got no requests")
	}
	ok, failed := load.stop()
	n, bad := tables.stop()
	t.Logf("%d requests in the %v NATS was away or cut off, %d in all, %d failed; %d tables seen, %d empty or partial", during, outage.Round(time.Millisecond), ok, failed, n, bad)
	if failed != 0 || bad != 0 {
		t.Errorf("%d requests failed, %d tables lacked the app's dynos", failed, bad)
	}
}

func openStore(t *testing.T, url string, role store.Role) *store.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(bg, 30*time.Second)
	defer cancel()
	st, err := store.Open(ctx, store.Config{URL: url, Role: role, Password: role.Password(storetest.Secret), Name: t.Name()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	return st
}

// awaitLink waits until st's connection is up (or down).
func awaitLink(t *testing.T, st *store.Store, up bool) {
	t.Helper()
	nc := st.Conn()
	ch := nc.StatusChanged()
	defer nc.RemoveStatusListener(ch)
	deadline := time.After(10 * time.Second)
	for nc.IsConnected() != up {
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("store connected=%v after 10s", nc.IsConnected())
		}
	}
}

// retry retries a store write that may fail while JetStream recovers.
func retry(t *testing.T, write func() error) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		err := write()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal(err)
		}
		t.Logf("store write: %v (retrying)", err)
	}
}

// lastDynoRevision is the dynos bucket's latest revision, deletions
// included.
func lastDynoRevision(t *testing.T, st *store.Store) uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(bg, 10*time.Second)
	defer cancel()
	ch, err := st.WatchDynos(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var rev uint64
	for ev := range ch {
		if ev.Synced {
			return rev
		}
		rev = max(rev, ev.Revision)
	}
	t.Fatal("dyno watch ended before it synced")
	return 0
}

// load is clients sending requests through the router in a loop.
type load struct {
	ok, failed atomic.Int64
	progress   chan struct{} // signalled after each success
	cancel     context.CancelFunc
	wg         sync.WaitGroup
	t          testing.TB
}

func startLoad(t testing.TB, h *harness, clients int, req func() *http.Request) *load {
	ctx, cancel := context.WithCancel(bg)
	l := &load{progress: make(chan struct{}, 1), cancel: cancel, t: t}
	for i := 0; i < clients; i++ {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for ctx.Err() == nil {
				l.one(h, req())
			}
		}()
	}
	t.Cleanup(func() { l.stop() })
	return l
}

func (l *load) one(h *harness, req *http.Request) {
	res, err := h.client.Do(req)
	if err != nil {
		l.fail("%s %s: %v", req.Method, req.URL, err)
		return
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	if res.StatusCode != 200 {
		l.fail("%s %s: %s %s", req.Method, req.URL, res.Status, res.Header.Get("Via"))
		return
	}
	l.ok.Add(1)
	select {
	case l.progress <- struct{}{}:
	default:
	}
}

func (l *load) fail(format string, args ...any) {
	if l.failed.Add(1) <= 10 {
		l.t.Logf("request failed: "+format, args...)
	}
}

// await waits until n requests have succeeded in all.
func (l *load) await(n int64) {
	l.t.Helper()
	deadline := time.After(30 * time.Second)
	for l.ok.Load() < n {
		select {
		case <-l.progress:
		case <-deadline:
			l.t.Fatalf("only %d of %d requests succeeded in 30s (%d failed)", l.ok.Load(), n, l.failed.Load())
		}
	}
}

func (l *load) stop() (ok, failed int64) {
	l.cancel()
	l.wg.Wait()
	return l.ok.Load(), l.failed.Load()
}

// tableWatch checks every table the router publishes.
type tableWatch struct {
	n, bad atomic.Int64
	stopc  chan struct{}
	done   chan struct{}
}

func watchTables(t testing.TB, r *Router, ok func(map[string]*route) bool) *tableWatch {
	w := &tableWatch{stopc: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		for {
			tb := r.table.Load()
			w.n.Add(1)
			if !ok(tb.routes) {
				w.bad.Add(1)
			}
			select {
			case <-tb.changed:
			case <-w.stopc:
				return
			}
		}
	}()
	t.Cleanup(func() { w.stop() })
	return w
}

func (w *tableWatch) stop() (n, bad int64) {
	select {
	case <-w.stopc:
	default:
		close(w.stopc)
	}
	<-w.done
	return w.n.Load(), w.bad.Load()
}

// linkProxy forwards TCP connections to target until cut.
type linkProxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	down   bool
	conns  map[net.Conn]struct{}
	wg     sync.WaitGroup
}

func newLinkProxy(t testing.TB, target string) *linkProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &linkProxy{ln: ln, target: target, conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(func() {
		ln.Close()
		p.cut()
		p.wg.Wait()
	})
	return p
}

func (p *linkProxy) addr() string { return p.ln.Addr().String() }

func (p *linkProxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			p.pipe(c)
		}()
	}
}

func (p *linkProxy) pipe(c net.Conn) {
	defer c.Close()
	if !p.track(c) {
		return
	}
	defer p.untrack(c)
	up, err := net.Dial("tcp", p.target)
	if err != nil {
		return
	}
	defer up.Close()
	if !p.track(up) {
		return
	}
	defer p.untrack(up)
	done := make(chan struct{}, 2)
	go func() { io.Copy(up, c); done <- struct{}{} }()
	go func() { io.Copy(c, up); done <- struct{}{} }()
	<-done
	c.Close()
	up.Close()
	<-done
}

func (p *linkProxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.down {
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *linkProxy) untrack(c net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.conns, c)
}

// cut closes every forwarded connection and refuses new ones.
func (p *linkProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = true
	for c := range p.conns {
		c.Close()
	}
}

func (p *linkProxy) restore() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = false
}

// logHandler shows the router's own log in the test's and fails the test
// on errors.
type logHandler struct{ t testing.TB }

func (h logHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelInfo }
func (h logHandler) Handle(_ context.Context, r slog.Record) error {
	msg := r.Message
	r.Attrs(func(a slog.Attr) bool { msg += " " + a.String(); return true })
	h.t.Logf("router %s: %s", r.Level, msg)
	if r.Level >= slog.LevelError {
		h.t.Errorf("router logged an error: %s", r.Message)
	}
	return nil
}
func (h logHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h logHandler) WithGroup(string) slog.Handler      { return h }
