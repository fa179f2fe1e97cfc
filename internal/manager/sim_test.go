package manager_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dynogrid/grid/internal/grid"
	"github.com/dynogrid/grid/internal/manager"
	"github.com/dynogrid/grid/internal/store"
)

// beat is the simulated hosts' and routers' heartbeat interval.
const beat = 50 * time.Millisecond

// startManager runs a manager with cfg (Store set here) until the test
// ends.
func startManager(t *testing.T, st *store.Store, cfg manager.Config) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	if testing.Verbose() {
		cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	cfg.Store = st
	m := manager.New(cfg)
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("manager: %v", err)
		}
	})
}

// sim plays the hosts and routers around a manager, writing the records
// they would write: hosts heartbeat and run their assignments (a dyno is
// up at once; its record goes when its assignment does), routers report
// the dynos revision they have seen. A host cut off does nothing until it
// is back, then catches up like an agent whose watch resumes.
type sim struct {
	t  *testing.T
	st *store.Store

	mu      sync.Mutex
	hosts   map[string]*simHost
	routers map[string]*simRouter
	dynoRev uint64 // latest dynos bucket revision seen
}

type simHost struct {
	rec grid.Host
	cut bool // no heartbeats, no dyno records written
}

type simRouter struct {
	rev    uint64
	frozen bool            // keeps heartbeating an old revision
	hung   []grid.HungDyno // dynos it reports hung
}

// newSim starts the simulation; with run unset, hosts only heartbeat and
// the test reports dyno states itself (hostUp).
func newSim(t *testing.T, st *store.Store, run bool) *sim {
	s := &sim{t: t, st: st, hosts: map[string]*simHost{}, routers: map[string]*simRouter{}}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { s.heartbeats(ctx) })
	if run {
		wg.Go(func() { s.agents(ctx) })
	}
	wg.Go(func() { s.followDynos(ctx) })
	t.Cleanup(func() { cancel(); wg.Wait() })
	return s
}

// addHost registers a host of mem MB and cores cores, which then
// heartbeats.
func (s *sim) addHost(id string, mem, cores int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	h := grid.Host{ID: id, MemoryMB: mem, Cores: cores, StartedAt: time.Now(), HeartbeatAt: time.Now()}
	if err := s.st.PutHost(context.Background(), h); err != nil {
		s.t.Errorf("register host %s: %v", id, err)
	}
	s.hosts[id] = &simHost{rec: h}
}

// removeHost stops a host for good (a provider released it).
func (s *sim) removeHost(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.hosts, id)
}

// cut cuts a host off (true) or brings it back (false).
func (s *sim) cut(id string, off bool) {
	s.mu.Lock()
	s.hosts[id].cut = off
	s.mu.Unlock()
	if !off {
		s.catchUp(context.Background(), id)
	}
}

// cutAll cuts every host off or brings every one back.
func (s *sim) cutAll(off bool) {
	s.mu.Lock()
	var ids []string
	for id := range s.hosts {
		ids = append(ids, id)
	}
	s.mu.Unlock()
	for _, id := range ids {
		s.cut(id, off)
	}
}

func (s *sim) addRouter(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.routers[id] = &simRouter{rev: s.dynoRev}
}

// reportHung sets the dynos a router reports hung.
func (s *sim) reportHung(id string, hung ...grid.HungDyno) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.routers[id].hung = hung
}

func (s *sim) freezeRouter(id string, frozen bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.routers[id].frozen = frozen
}

// heartbeats writes every beat while holding the lock, so that a host
// removed (released) never heartbeats again afterwards.
func (s *sim) heartbeats(ctx context.Context) {
	tk := time.NewTicker(beat)
	defer tk.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tk.C:
		}
		s.mu.Lock()
		for _, h := range s.hosts {
			if !h.cut {
				rec := h.rec
				rec.HeartbeatAt = time.Now()
				_ = s.st.PutHost(ctx, rec) // fails only while NATS is down
			}
		}
		for id, r := range s.routers {
			if !r.frozen {
				r.rev = s.dynoRev
			}
			_ = s.st.PutRouterState(ctx, grid.RouterState{ID: id, Revision: r.rev, HeartbeatAt: time.Now(), Hung: r.hung})
		}
		s.mu.Unlock()
	}
}

func (s *sim) followDynos(ctx context.Context) {
	ch, err := s.st.WatchDynos(ctx)
	if err != nil {
		s.t.Error(err)
		return
	}
	for ev := range ch {
		s.mu.Lock()
		s.dynoRev = max(s.dynoRev, ev.Revision)
		s.mu.Unlock()
	}
}

// agents run every host's assignments: up at once, record deleted with
// the assignment.
func (s *sim) agents(ctx context.Context) {
	ch, err := s.st.WatchAssignments(ctx, "")
	if err != nil {
		s.t.Error(err)
		return
	}
	for ev := range ch {
		if ev.Synced {
			continue
		}
		host, id, _ := strings.Cut(ev.Key, ".")
		if s.isCut(host) {
			continue // caught up when the host is back
		}
		if ev.Deleted {
			s.deleteDyno(ctx, host, id)
		} else {
			s.putUp(ctx, ev.Value)
		}
	}
}

func (s *sim) isCut(host string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	h := s.hosts[host]
	return h == nil || h.cut
}

func (s *sim) putUp(ctx context.Context, a grid.Assignment) {
	d := grid.Dyno{ID: a.DynoID, App: a.App, Name: a.Name, Type: a.Type, Release: a.Release, Epoch: a.Epoch, Host: a.Host, State: grid.DynoUp, Addr: "10.0.0.1:5000"}
	if err := s.st.PutDyno(ctx, d); err != nil && ctx.Err() == nil {
		s.t.Errorf("put dyno: %v", err)
	}
}

func (s *sim) deleteDyno(ctx context.Context, host, id string) {
	ds, err := s.st.HostDynos(ctx, host)
	if err != nil {
		return
	}
	for _, d := range ds {
		if d.ID == id {
			_ = s.st.DeleteDyno(ctx, d)
		}
	}
}

// catchUp is a returning host's agent: stop what is no longer assigned,
// start what is.
func (s *sim) catchUp(ctx context.Context, host string) {
	as, err := s.st.Assignments(ctx, host)
	if err != nil {
		s.t.Error(err)
		return
	}
	ds, err := s.st.HostDynos(ctx, host)
	if err != nil {
		s.t.Error(err)
		return
	}
	assigned := map[string]bool{}
	for _, a := range as {
		assigned[a.DynoID] = true
	}
	running := map[string]bool{}
	for _, d := range ds {
		running[d.ID] = true
		if !assigned[d.ID] {
			_ = s.st.DeleteDyno(ctx, d)
		}
	}
	for _, a := range as {
		if !running[a.DynoID] {
			s.putUp(ctx, a)
		}
	}
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

// The helpers below read the store as a test would poll it.

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

// waitFor polls cond until it returns nil or the deadline passes.
func waitFor(t *testing.T, within time.Duration, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s: %v", within, what, err)
		}
		time.Sleep(5 * time.Millisecond) // polling interval, not synchronisation
	}
}

// waitAssignments waits until ok accepts the current assignments (sorted
// by name, then release).
func waitAssignments(t *testing.T, st *store.Store, what string, ok func([]grid.Assignment) bool) []grid.Assignment {
	t.Helper()
	var as []grid.Assignment
	waitFor(t, 10*time.Second, what, func() error {
		var err error
		if as, err = assignments(st); err != nil {
			return err
		}
		if !ok(as) {
			return fmt.Errorf("assignments: %s", describe(as))
		}
		return nil
	})
	return as
}

func assignments(st *store.Store) ([]grid.Assignment, error) {
	as, err := st.Assignments(context.Background(), "")
	sort.Slice(as, func(i, j int) bool {
		if as[i].Name != as[j].Name {
			return as[i].Name < as[j].Name
		}
		return as[i].Release < as[j].Release
	})
	return as, err
}

func describe(as []grid.Assignment) string {
	var s []string
	for _, a := range as {
		s = append(s, fmt.Sprintf("%s@%s[%s] v%d e%d", a.Name, a.Host, a.CPUs, a.Release, a.Epoch))
	}
	return "[" + strings.Join(s, " ") + "]"
}

func names(as []grid.Assignment) string {
	var s []string
	for _, a := range as {
		s = append(s, fmt.Sprintf("%s v%d", a.Name, a.Release))
	}
	return strings.Join(s, ",")
}

func ids(as []grid.Assignment) string {
	var s []string
	for _, a := range as {
		s = append(s, a.DynoID)
	}
	sort.Strings(s)
	return strings.Join(s, ",")
}

func perHost(as []grid.Assignment) map[string]int {
	m := map[string]int{}
	for _, a := range as {
		m[a.Host]++
	}
	return m
}
