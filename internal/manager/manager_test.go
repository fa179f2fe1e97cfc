package manager_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/dynogrid/grid/internal/grid"
	"github.com/dynogrid/grid/internal/manager"
	"github.com/dynogrid/grid/internal/store"
	"github.com/dynogrid/grid/internal/store/storetest"
)

// start runs a manager until the test ends.
func start(t *testing.T, st *store.Store, hostTimeout time.Duration) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var logger *slog.Logger
	if testing.Verbose() {
		logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	m := manager.New(manager.Config{Store: st, Logger: logger, HostTimeout: hostTimeout})
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("manager: %v", err)
		}
	})
}

func seedApp(t *testing.T, st *store.Store, web int) {
	t.Helper()
	ctx := context.Background()
	if err := st.CreateApp(ctx, grid.App{ID: store.NewID(), Name: "hello", UID: 200001}); err != nil {
		t.Fatal(err)
	}
	release(t, st, "slug1")
	if _, err := st.UpdateFormation(ctx, "hello", func(f *grid.Formation) error {
		f.Types["web"] = grid.FormationType{Quantity: web, Size: "standard-1x", Command: "bin/web"}
		f.Types["worker"] = grid.FormationType{Quantity: 0, Size: "standard-1x", Command: "bin/worker"}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

func release(t *testing.T, st *store.Store, slug string) grid.Release {
	t.Helper()
	r, err := st.CommitRelease(context.Background(), "hello", func(cur grid.App) (grid.Release, error) {
		return grid.Release{Description: "Deploy " + slug, SlugID: slug, Config: map[string]string{"GREETING": "hi"}}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func putHost(t *testing.T, st *store.Store, id string) {
	t.Helper()
	if err := st.PutHost(context.Background(), grid.Host{ID: id, MemoryMB: 65536, Cores: 2, HeartbeatAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
}

func scale(t *testing.T, st *store.Store, typ string, q int) {
	t.Helper()
	if _, err := st.UpdateFormation(context.Background(), "hello", func(f *grid.Formation) error {
		ft := f.Types[typ]
		ft.Quantity = q
		f.Types[typ] = ft
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

// waitAssignments waits until ok accepts the current assignments.
func waitAssignments(t *testing.T, st *store.Store, what string, ok func([]grid.Assignment) bool) []grid.Assignment {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		as, err := st.Assignments(context.Background(), "")
		if err != nil {
			t.Fatal(err)
		}
		sort.Slice(as, func(i, j int) bool {
			if as[i].Name != as[j].Name {
				return as[i].Name < as[j].Name
			}
			return as[i].Release < as[j].Release
		})
		if ok(as) {
			return as
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s; assignments: %s", what, describe(as))
		}
		time.Sleep(5 * time.Millisecond) // polling interval, not synchronisation
	}
}

func describe(as []grid.Assignment) string {
	var s []string
	for _, a := range as {
		s = append(s, fmt.Sprintf("%s@%s v%d e%d", a.Name, a.Host, a.Release, a.Epoch))
	}
	return "[" + strings.Join(s, " ") + "]"
}

// hostUp plays a host: it reports every assignment's dyno as up.
func hostUp(t *testing.T, st *store.Store, as []grid.Assignment) {
	t.Helper()
	for _, a := range as {
		d := grid.Dyno{ID: a.DynoID, App: a.App, Name: a.Name, Type: a.Type, Release: a.Release, Epoch: a.Epoch, Host: a.Host, State: grid.DynoUp, Addr: "10.0.0.1:5000"}
		if err := st.PutDyno(context.Background(), d); err != nil {
			t.Fatal(err)
		}
	}
}

func names(as []grid.Assignment) string {
	var s []string
	for _, a := range as {
		s = append(s, fmt.Sprintf("%s v%d", a.Name, a.Release))
	}
	return strings.Join(s, ",")
}

func TestManagerLifecycle(t *testing.T) {
	st := storetest.Start(t)
	putHost(t, st, "h1")
	putHost(t, st, "h2")
	seedApp(t, st, 2)
	start(t, st, time.Minute)

	as := waitAssignments(t, st, "web.1 and web.2", func(as []grid.Assignment) bool { return names(as) == "web.1 v1,web.2 v1" })
	if as[0].Host == as[1].Host {
		t.Errorf("both web dynos on %s; want them spread", as[0].Host)
	}
	a := as[0]
	if a.SlugID != "slug1" || a.Command != "bin/web" || a.Env["GREETING"] != "hi" || a.UID != 200001 || a.Size != "standard-1x" {
		t.Errorf("assignment %+v", a)
	}
	hostUp(t, st, as)

	// A new release starts new dynos; the old ones stay until those are up.
	release(t, st, "slug2")
	as = waitAssignments(t, st, "new release placed", func(as []grid.Assignment) bool { return len(as) == 4 })
	var fresh []grid.Assignment
	for _, a := range as {
		if a.Release == 2 {
			fresh = append(fresh, a)
		}
	}
	hostUp(t, st, fresh[:1])
	waitAssignments(t, st, "old web.1 removed", func(as []grid.Assignment) bool { return names(as) == "web.1 v2,web.2 v1,web.2 v2" })
	hostUp(t, st, fresh[1:])
	waitAssignments(t, st, "old web.2 removed", func(as []grid.Assignment) bool { return names(as) == "web.1 v2,web.2 v2" })

	// Records of dynos whose hosts forgot them are the hosts' to delete;
	// the manager leaves up dynos on live hosts alone.
	scale(t, st, "web", 0)
	waitAssignments(t, st, "scale to 0", func(as []grid.Assignment) bool { return len(as) == 0 })
}

func TestManagerScaleLatency(t *testing.T) {
	st := storetest.Start(t)
	putHost(t, st, "h1")
	seedApp(t, st, 0)
	start(t, st, time.Minute)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ch, err := st.WatchAssignments(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	for ev := range ch {
		if ev.Synced {
			break
		}
	}
	var worst, total time.Duration
	const rounds = 20
	for i := 1; i <= rounds; i++ {
		begin := time.Now()
		scale(t, st, "web", i)
		want := grid.DynoName("web", i)
		for ev := range ch {
			if !ev.Deleted && ev.Value.Name == want {
				break
			}
		}
		d := time.Since(begin)
		total += d
		worst = max(worst, d)
	}
	t.Logf("ps:scale → assignment written: mean %v, worst %v over %d scale-ups", total/rounds, worst, rounds)
	if worst > time.Second {
		t.Errorf("worst latency %v", worst)
	}
}

func TestManagerLostHost(t *testing.T) {
	st := storetest.Start(t)
	putHost(t, st, "h1")
	putHost(t, st, "h2")
	seedApp(t, st, 2)
	ctx, cancel := context.WithCancel(context.Background())
	hb := make(chan struct{})
	go func() { // h1 heartbeats; h2 has died
		defer close(hb)
		tk := time.NewTicker(50 * time.Millisecond)
		defer tk.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tk.C:
				if err := st.PutHost(ctx, grid.Host{ID: "h1", MemoryMB: 65536, Cores: 2, HeartbeatAt: time.Now()}); err != nil && ctx.Err() == nil {
					t.Error(err)
				}
			}
		}
	}()
	t.Cleanup(func() { cancel(); <-hb })
	start(t, st, 500*time.Millisecond)

	as := waitAssignments(t, st, "placed on both", func(as []grid.Assignment) bool { return len(as) == 2 && as[0].Host != as[1].Host })
	hostUp(t, st, as)
	waitAssignments(t, st, "moved off h2", func(as []grid.Assignment) bool {
		return names(as) == "web.1 v1,web.2 v1" && as[0].Host == "h1" && as[1].Host == "h1"
	})
	// The lost dyno's record is forgotten.
	deadline := time.Now().Add(10 * time.Second)
	for {
		ds, err := st.Dynos(context.Background(), "hello")
		if err != nil {
			t.Fatal(err)
		}
		lost := 0
		for _, d := range ds {
			if d.Host == "h2" {
				lost++
			}
		}
		if lost == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("dyno records on the lost host remain: %+v", ds)
		}
		time.Sleep(10 * time.Millisecond) // polling interval
	}
}

func TestManagerDeletedApp(t *testing.T) {
	st := storetest.Start(t)
	putHost(t, st, "h1")
	seedApp(t, st, 1)
	start(t, st, time.Minute)
	waitAssignments(t, st, "placed", func(as []grid.Assignment) bool { return len(as) == 1 })
	if err := st.DeleteApp(context.Background(), "hello"); err != nil {
		t.Fatal(err)
	}
	waitAssignments(t, st, "removed with the app", func(as []grid.Assignment) bool { return len(as) == 0 })
}
