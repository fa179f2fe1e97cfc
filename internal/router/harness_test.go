package router

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dynogrid/grid/internal/grid"
	"github.com/dynogrid/grid/internal/logs"
	"github.com/dynogrid/grid/internal/store"
	"github.com/dynogrid/grid/internal/store/storetest"
)

// harness is a router serving on a loopback port with a real store and
// log stream, and a client that sends every request to it whatever the
// URL's host (so URLs read like "http://hello.localhost/"). The router
// runs with a router's credentials, as in production, so a permission
// mistake fails the tests; fixtures are written with a server's.
type harness struct {
	t      testing.TB
	st     *store.Store // server role: fixtures, reading logs and router records
	rst    *store.Store // the router's own connection (role router.r1)
	logs   *logs.Log    // read side, on st
	r      *Router
	addr   string // the router's listener
	client *http.Client
}

var (
	serverRole = store.Role{Kind: store.RoleServer, ID: "s"}
	routerRole = store.Role{Kind: store.RoleRouter, ID: "r1"}
)

func startRouter(t testing.TB, tune func(*Config)) *harness {
	t.Helper()
	return startRouterWith(t, tune, nil)
}

// startRouterWith is startRouter with prep to adjust the router before it
// runs.
func startRouterWith(t testing.TB, tune func(*Config), prep func(*Router)) *harness {
	t.Helper()
	srv := storetest.NewServer(t)
	return startRouterOn(t, srv.As(t, serverRole), srv.As(t, routerRole), tune, prep)
}

// startRouterOn starts a router on rst, with fixtures on admin. prep, if
// set, may adjust the router before it runs.
func startRouterOn(t testing.TB, admin, rst *store.Store, tune func(*Config), prep func(*Router)) *harness {
	t.Helper()
	lg, err := logs.Open(context.Background(), admin) // creates the stream
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(lg.Close)
	rlg, err := logs.Open(context.Background(), rst)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rlg.Close)
	cfg := Config{Store: rst, Logs: rlg, Domain: "localhost", Logger: testLogger(t)}
	if tune != nil {
		tune(&cfg)
	}
	r := New(cfg)
	if prep != nil {
		prep(r)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); r.Run(ctx) }()
	go func() { defer wg.Done(); r.Serve(ctx, ln) }()
	h := &harness{t: t, st: admin, rst: rst, logs: lg, r: r, addr: ln.Addr().String()}
	h.client = &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "tcp", h.addr)
		},
		MaxIdleConnsPerHost: 100,
	}}
	t.Cleanup(func() {
		h.client.CloseIdleConnections()
		cancel()
		wg.Wait()
	})
	select {
	case <-r.Ready():
	case <-time.After(10 * time.Second):
		t.Fatal("router not ready in 10s")
	}
	return h
}

// testLogger fails the test on router faults (slog errors).
func testLogger(t testing.TB) *slog.Logger {
	return slog.New(failHandler{t})
}

type failHandler struct{ t testing.TB }

func (h failHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelWarn }
func (h failHandler) Handle(_ context.Context, r slog.Record) error {
	if r.Level >= slog.LevelError {
		h.t.Errorf("router logged an error: %s", r.Message)
	}
	return nil
}
func (h failHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h failHandler) WithGroup(string) slog.Handler      { return h }

var bg = context.Background()

// app creates an app with a deployed release and web dynos wanted.
func (h *harness) app(name string, web int) {
	h.t.Helper()
	if err := h.st.CreateApp(bg, grid.App{ID: store.NewID(), Name: name, Release: grid.Release{Version: 2, SlugID: "slug-" + name}}); err != nil {
		h.t.Fatal(err)
	}
	h.scale(name, web)
}

func (h *harness) scale(name string, web int) {
	h.t.Helper()
	_, err := h.st.UpdateFormation(bg, name, func(f *grid.Formation) error {
		f.Types["web"] = grid.FormationType{Quantity: web, Command: "serve"}
		return nil
	})
	if err != nil {
		h.t.Fatal(err)
	}
}

func (h *harness) maintenance(name string, on bool) {
	h.t.Helper()
	if _, err := h.st.UpdateApp(bg, name, func(a *grid.App) error { a.Maintenance = on; return nil }); err != nil {
		h.t.Fatal(err)
	}
}

// dyno records web.<n> of app, with id "d<n>", on host h1.
func (h *harness) dyno(app string, n int, state grid.DynoState, addr string) {
	h.t.Helper()
	h.dynoOn("h1", app, n, state, addr)
}

// dynoOn is dyno on the given host.
func (h *harness) dynoOn(host, app string, n int, state grid.DynoState, addr string) {
	h.t.Helper()
	d := grid.Dyno{ID: fmt.Sprint("d", n), Host: host, App: app, Name: fmt.Sprint("web.", n), Type: "web", State: state, Addr: addr}
	if err := h.st.PutDyno(bg, d); err != nil {
		h.t.Fatal(err)
	}
}

// await waits until the app's route satisfies ok: watch-driven, woken by
// each new table, no polling.
func (h *harness) await(app string, ok func(*route) bool) {
	h.t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		t := h.r.table.Load()
		if rt := t.routes[app]; rt != nil && ok(rt) {
			return
		}
		select {
		case <-t.changed:
		case <-deadline:
			h.t.Fatalf("route of %s never reached the wanted state; last %+v", app, h.r.table.Load().routes[app])
		}
	}
}

func endpointsAre(n int) func(*route) bool {
	return func(rt *route) bool { return len(rt.endpoints) == n }
}

func (h *harness) get(url string) (*http.Response, string) {
	h.t.Helper()
	return h.do(mustRequest(h.t, "GET", url, nil))
}

func (h *harness) do(req *http.Request) (*http.Response, string) {
	h.t.Helper()
	res, err := h.client.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		h.t.Fatal(err)
	}
	return res, string(body)
}

func mustRequest(t testing.TB, method, url string, body io.Reader) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

// tailRouter follows the app's router log lines.
func (h *harness) tailRouter(app string) <-chan logs.Line {
	h.t.Helper()
	ctx, cancel := context.WithCancel(bg)
	h.t.Cleanup(cancel)
	ch, err := h.logs.Read(ctx, app, logs.Query{Dyno: "router", Tail: true})
	if err != nil {
		h.t.Fatal(err)
	}
	return ch
}

func nextLine(t testing.TB, ch <-chan logs.Line) string {
	t.Helper()
	select {
	case l := <-ch:
		return l.Text
	case <-time.After(5 * time.Second):
		t.Fatal("no router log line within 5s")
	}
	return ""
}

// backend is a dyno stand-in: it answers with its name and counts hits.
type backend struct {
	*httptest.Server
	name string
	hits atomic.Int64
	last atomic.Pointer[http.Request] // last request seen (headers only)
}

func newBackend(t testing.TB, name string, h http.HandlerFunc) *backend {
	t.Helper()
	return newBackendWith(t, name, h, nil)
}

// newBackendWith is newBackend with config to adjust its server before it
// starts.
func newBackendWith(t testing.TB, name string, h http.HandlerFunc, config func(*http.Server)) *backend {
	t.Helper()
	b := &backend{name: name}
	b.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.hits.Add(1)
		b.last.Store(r.Clone(context.Background()))
		if h != nil {
			h(w, r)
			return
		}
		body, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "%s:%s", name, body)
	}))
	if config != nil {
		config(b.Config)
	}
	b.Start()
	t.Cleanup(b.Close)
	return b
}

func (b *backend) addr() string { return strings.TrimPrefix(b.URL, "http://") }
