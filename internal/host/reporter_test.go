package host

import (
	"context"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dynogrid/grid/internal/grid"
	"github.com/dynogrid/grid/internal/store"
	"github.com/dynogrid/grid/internal/store/storetest"
)

// Records written while NATS is away are written once it is back: the
// newest state of each dyno, whatever failed meanwhile.
func TestReporterOutlastsOutage(t *testing.T) {
	cfg := store.ServerConfig{Dir: t.TempDir(), Secret: storetest.Secret}
	srv, err := store.StartServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Shutdown() })
	u, _ := url.Parse(srv.ClientURL())
	cfg.Listen = u.Host
	ts := &storetest.Server{Server: srv}
	st := ts.As(t, store.Role{Kind: store.RoleServer, ID: "test"})
	failures := &countingHandler{match: "dyno record write failed"}
	r := newReporter(ts.As(t, store.Role{Kind: store.RoleHost, ID: "h1"}), slog.New(failures))
	r.timeout = 200 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { r.run(ctx) })
	t.Cleanup(func() { cancel(); wg.Wait() })

	rec := grid.Dyno{ID: "d1", App: "app", Name: "web.1", Host: "h1", State: grid.DynoUp}
	waitClosed(t, r.put(rec), "first write")
	gone := grid.Dyno{ID: "d2", App: "app", Name: "web.2", Host: "h1", State: grid.DynoUp}
	waitClosed(t, r.put(gone), "second write")

	srv.Shutdown()
	rec.State, rec.Restarts = grid.DynoCrashed, 1
	crashed := r.put(rec)
	deadline := time.Now().Add(10 * time.Second)
	for failures.n.Load() == 0 { // the write times out: NATS is away
		if time.Now().After(deadline) {
			t.Fatal("no write failed while NATS was down")
		}
		time.Sleep(10 * time.Millisecond) // polling interval, not synchronisation
	}
	rec.State, rec.Restarts = grid.DynoUp, 2
	r.put(rec)
	r.remove(gone)

	if srv, err = store.StartServer(cfg); err != nil {
		t.Fatal(err)
	}
	fctx, fcancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer fcancel()
	r.flush(fctx)
	waitClosed(t, crashed, "the crashed state (replaced by a newer one)")
	ds, err := st.Dynos(fctx, "app")
	if err != nil || len(ds) != 1 || ds[0].ID != "d1" || ds[0].State != grid.DynoUp || ds[0].Restarts != 2 {
		t.Errorf("records after the outage: %+v, %v; want d1 up after 2 restarts", ds, err)
	}
}

func waitClosed(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(30 * time.Second):
		t.Fatalf("%s: not written", what)
	}
}

// countingHandler counts log records whose message contains match.
type countingHandler struct {
	match string
	n     atomic.Int64
}

func (h *countingHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *countingHandler) Handle(_ context.Context, r slog.Record) error {
	if strings.Contains(r.Message, h.match) {
		h.n.Add(1)
	}
	return nil
}
func (h *countingHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *countingHandler) WithGroup(string) slog.Handler      { return h }
