package store_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/dynogrid/grid/internal/grid"
	"github.com/dynogrid/grid/internal/store"
	"github.com/dynogrid/grid/internal/store/storetest"
)

func TestAppsAndReleases(t *testing.T) {
	s := storetest.Start(t)
	ctx := context.Background()
	if err := s.CreateApp(ctx, grid.App{ID: store.NewID(), Name: "hello"}); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateApp(ctx, grid.App{ID: store.NewID(), Name: "hello"}); !errors.Is(err, grid.ErrConflict) {
		t.Fatalf("second create: %v, want ErrConflict", err)
	}
	if _, err := s.App(ctx, "nope"); !errors.Is(err, grid.ErrNotFound) {
		t.Fatalf("missing app: %v", err)
	}
	// Concurrent config changes: every one must land, none lost.
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			key := string(rune('A' + i))
			_, err := s.CommitRelease(ctx, "hello", func(cur grid.App) (grid.Release, error) {
				v := "x"
				cfg, desc, err := grid.PatchConfig(cur.Release.Config, map[string]*string{key: &v})
				return grid.Release{Config: cfg, Description: desc}, err
			})
			if err != nil {
				t.Error(err)
			}
		}(i)
	}
	wg.Wait()
	a, err := s.App(ctx, "hello")
	if err != nil {
		t.Fatal(err)
	}
	if a.Release.Version != 8 || len(a.Release.Config) != 8 {
		t.Fatalf("after 8 concurrent changes: v%d with %d vars, want v8 with 8", a.Release.Version, len(a.Release.Config))
	}
	rs, err := s.Releases(ctx, "hello")
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range rs {
		if r.Version != i+1 || len(r.Config) != i+1 {
			t.Errorf("release %d: v%d with %d vars", i, r.Version, len(r.Config))
		}
	}
}

func TestWatchSeesChangesAfterSync(t *testing.T) {
	s := storetest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	d := grid.Dyno{ID: "d1", App: "a1", Host: "h1", Name: "web.1", State: grid.DynoStarting}
	if err := s.PutDyno(ctx, d); err != nil {
		t.Fatal(err)
	}
	ch, err := s.WatchDynos(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if ev := <-ch; ev.Key != "h1.a1.d1" || ev.Value.State != grid.DynoStarting {
		t.Fatalf("first event %+v", ev)
	}
	if ev := <-ch; !ev.Synced {
		t.Fatalf("want synced marker, got %+v", ev)
	}
	d.State = grid.DynoUp
	if err := s.PutDyno(ctx, d); err != nil {
		t.Fatal(err)
	}
	if ev := <-ch; ev.Value.State != grid.DynoUp {
		t.Fatalf("update %+v", ev)
	}
	if err := s.DeleteDyno(ctx, d); err != nil {
		t.Fatal(err)
	}
	if ev := <-ch; !ev.Deleted || ev.Key != "h1.a1.d1" {
		t.Fatalf("delete %+v", ev)
	}
}

func TestAPIKeys(t *testing.T) {
	s := storetest.Start(t)
	ctx := context.Background()
	if err := s.PutAPIKey(ctx, "secret", "admin@example.com"); err != nil {
		t.Fatal(err)
	}
	if e, err := s.LookupAPIKey(ctx, "secret"); err != nil || e != "admin@example.com" {
		t.Fatalf("lookup: %q %v", e, err)
	}
	if _, err := s.LookupAPIKey(ctx, "wrong"); !errors.Is(err, grid.ErrUnauthorized) {
		t.Fatalf("wrong key: %v", err)
	}
}

// TestRolePermissions checks that a host's credentials reach only its own
// subjects, and a router's only what routing needs.
func TestRolePermissions(t *testing.T) {
	srv := storetest.NewServer(t)
	admin := srv.As(t, store.Role{Kind: store.RoleServer, ID: "s1"})
	ctx := context.Background()
	for _, a := range []grid.Assignment{{Host: "h1", DynoID: "d1", App: "a"}, {Host: "h2", DynoID: "d2", App: "a", Env: map[string]string{"SECRET": "x"}}} {
		if err := admin.PutAssignment(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	if err := admin.CreateApp(ctx, grid.App{ID: "id", Name: "a", Release: grid.Release{Config: map[string]string{"SECRET": "x"}}}); err != nil {
		t.Fatal(err)
	}
	if err := admin.PutDefaultCert(ctx, grid.Cert{ID: "c", Name: "default", Key: "PRIVATE"}); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.CreateDomain(ctx, grid.Domain{ID: "d", Hostname: "www.example.com", App: "a"}); err != nil {
		t.Fatal(err)
	}
	// A denied request gets no answer (NATS drops it), so each check has
	// its own short deadline.
	allowed := func(what string, f func(context.Context) error) {
		t.Helper()
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		if err := f(ctx); err != nil {
			t.Errorf("%s: %v", what, err)
		}
	}
	denied := func(what string, f func(context.Context) error) {
		t.Helper()
		ctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
		defer cancel()
		if err := f(ctx); err == nil {
			t.Errorf("%s was allowed", what)
		}
	}
	h1 := srv.As(t, store.Role{Kind: store.RoleHost, ID: "h1"})
	allowed("h1 reading its own assignments", func(ctx context.Context) error {
		as, err := h1.Assignments(ctx, "h1")
		if err == nil && len(as) != 1 {
			err = fmt.Errorf("got %d", len(as))
		}
		return err
	})
	denied("h1 reading h2's assignments", func(ctx context.Context) error { _, err := h1.Assignments(ctx, "h2"); return err })
	allowed("h1 writing its own dyno", func(ctx context.Context) error { return h1.PutDyno(ctx, grid.Dyno{Host: "h1", App: "a", ID: "d1"}) })
	denied("h1 writing h2's dyno", func(ctx context.Context) error { return h1.PutDyno(ctx, grid.Dyno{Host: "h2", App: "a", ID: "d2"}) })
	allowed("h1 heartbeat", func(ctx context.Context) error { return h1.PutHost(ctx, grid.Host{ID: "h1"}) })
	denied("h1 writing h2's host record", func(ctx context.Context) error { return h1.PutHost(ctx, grid.Host{ID: "h2"}) })
	denied("h1 reading an app record (config vars)", func(ctx context.Context) error { _, err := h1.App(ctx, "a"); return err })
	denied("h1 writing an assignment", func(ctx context.Context) error {
		return h1.PutAssignment(ctx, grid.Assignment{Host: "h1", DynoID: "d9"})
	})
	allowed("h1 watching app metadata", func(ctx context.Context) error { _, err := h1.WatchAppMeta(ctx); return err })
	denied("h1 reading certificates (private keys)", func(ctx context.Context) error { _, err := h1.DefaultCert(ctx); return err })
	denied("h1 watching certificates (private keys)", func(ctx context.Context) error { _, err := h1.WatchCerts(ctx); return err })
	denied("h1 watching domains", func(ctx context.Context) error { _, err := h1.WatchDomains(ctx); return err })

	r1 := srv.As(t, store.Role{Kind: store.RoleRouter, ID: "r1"})
	denied("router reading an app record", func(ctx context.Context) error { _, err := r1.App(ctx, "a"); return err })
	denied("router reading assignments", func(ctx context.Context) error { _, err := r1.Assignments(ctx, ""); return err })
	allowed("router watching app metadata", func(ctx context.Context) error {
		w, err := r1.WatchAppMeta(ctx)
		if err != nil {
			return err
		}
		if ev := <-w; ev.Value.Name != "a" || ev.Value.ID != "id" {
			return fmt.Errorf("first event %+v", ev)
		}
		return nil
	})
	allowed("router watching certificates", func(ctx context.Context) error {
		w, err := r1.WatchCerts(ctx)
		if err != nil {
			return err
		}
		if ev := <-w; !store.IsDefaultCertKey(ev.Key) || ev.Value.Key != "PRIVATE" {
			return fmt.Errorf("first event %+v", ev)
		}
		return nil
	})
	allowed("router watching domains", func(ctx context.Context) error {
		w, err := r1.WatchDomains(ctx)
		if err != nil {
			return err
		}
		if ev := <-w; ev.Value.App != "a" || store.HostnameOfKey(ev.Key) != "www.example.com" {
			return fmt.Errorf("first event %+v", ev)
		}
		return nil
	})
	allowed("router reporting its state", func(ctx context.Context) error {
		return r1.PutRouterState(ctx, grid.RouterState{ID: "r1", Revision: 1})
	})
	denied("router r1 writing r2's state", func(ctx context.Context) error { return r1.PutRouterState(ctx, grid.RouterState{ID: "r2"}) })

	bad := store.Role{Kind: store.RoleServer, ID: "s9"}
	denied("a wrong password", func(ctx context.Context) error {
		_, err := store.Open(ctx, store.Config{URL: srv.ClientURL(), Role: bad, Password: "guess"})
		return err
	})
}

func TestLeaseHasOneHolder(t *testing.T) {
	s := storetest.Start(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	aCtx, cancelA := context.WithCancel(ctx)
	la, err := s.Lead(aCtx, "manager", "a")
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan string, 1)
	go func() {
		if _, err := s.Lead(ctx, "manager", "b"); err == nil {
			got <- "b"
		}
	}()
	select {
	case <-got:
		t.Fatal("b led while a held the lease")
	case <-time.After(store.LeaseTTL / 2):
	}
	cancelA()
	<-la.Done()
	select {
	case <-got:
	case <-time.After(store.LeaseTTL * 2):
		t.Fatal("b did not take over after a stepped down")
	}
	if h, _ := s.LeaseHolder(ctx, "manager"); h != "b" {
		t.Errorf("holder %q", h)
	}
}

// TestDomains checks that a hostname has one holder and that deleting an
// app's data releases its domains and certificates.
func TestDomains(t *testing.T) {
	s := storetest.Start(t)
	ctx := context.Background()
	for _, d := range []grid.Domain{{ID: "1", Hostname: "www.example.com", App: "a"}, {ID: "2", Hostname: "*.example.com", App: "a"}} {
		if _, err := s.CreateDomain(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	holder, err := s.CreateDomain(ctx, grid.Domain{ID: "3", Hostname: "www.example.com", App: "b"})
	if !errors.Is(err, grid.ErrConflict) || holder.App != "a" {
		t.Fatalf("second claim: holder %+v, err %v", holder, err)
	}
	if d, err := s.Domain(ctx, "*.example.com"); err != nil || d.ID != "2" {
		t.Fatalf("wildcard: %+v, %v", d, err)
	}
	if err := s.CreateCert(ctx, grid.Cert{ID: "c", Name: "one", App: "a"}); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteAppData(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if ds, err := s.Domains(ctx, ""); err != nil || len(ds) != 0 {
		t.Errorf("domains after delete: %+v, %v", ds, err)
	}
	if cs, err := s.Certs(ctx, "a"); err != nil || len(cs) != 0 {
		t.Errorf("certs after delete: %+v, %v", cs, err)
	}
}

// TestReleaseReach: a release lets the app's dynos reach the endpoints of
// the add-ons attached to it when it is made, each once, whatever its
// config vars say; one with a host name is left out.
func TestReleaseReach(t *testing.T) {
	s := storetest.Start(t)
	ctx := context.Background()
	for _, app := range []string{"shop", "other"} {
		if err := s.CreateApp(ctx, grid.App{ID: store.NewID(), Name: app}); err != nil {
			t.Fatal(err)
		}
	}
	addons := []grid.Addon{
		{ID: "pg", App: "shop", URL: "postgres://u:p@10.228.0.1/db"},      // the scheme's port
		{ID: "rd", App: "shop", URL: "redis://u:p@10.228.0.1:16379"},      //
		{ID: "rd2", App: "other", URL: "redis://u:p@10.228.0.1:16380"},    // attached to both
		{ID: "named", App: "shop", URL: "redis://u:p@cache.example:6379"}, // the internet's
	}
	for _, a := range addons {
		if err := s.PutAddon(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	for _, at := range []grid.Attachment{
		{App: "shop", AddonID: "pg", Name: "DATABASE"}, {App: "shop", AddonID: "rd", Name: "REDIS"},
		{App: "shop", AddonID: "rd2", Name: "OTHER_REDIS"}, {App: "shop", AddonID: "rd2", Name: "SAME_REDIS"},
		{App: "shop", AddonID: "named", Name: "NAMED"}, {App: "other", AddonID: "rd2", Name: "REDIS"},
	} {
		if err := s.CreateAttachment(ctx, at); err != nil {
			t.Fatal(err)
		}
	}
	commit := func(app string) grid.Release {
		t.Helper()
		r, err := s.CommitRelease(ctx, app, func(cur grid.App) (grid.Release, error) {
			return grid.Release{Config: map[string]string{"REDIS_URL": "redis://10.228.0.1:16381"}}, nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	if got, want := fmt.Sprint(commit("shop").Reach), "[10.228.0.1:5432 10.228.0.1:16379 10.228.0.1:16380]"; got != want {
		t.Errorf("shop's reach %s, want %s", got, want)
	}
	if got, want := fmt.Sprint(commit("other").Reach), "[10.228.0.1:16380]"; got != want {
		t.Errorf("other's reach %s, want %s", got, want)
	}
	if err := s.DeleteAttachment(ctx, "other", "REDIS"); err != nil {
		t.Fatal(err)
	}
	if r := commit("other"); len(r.Reach) != 0 {
		t.Errorf("after detaching: reach %v", r.Reach)
	}
	if a, err := s.App(ctx, "other"); err != nil || len(a.Release.Reach) != 0 {
		t.Errorf("the app's current release: reach %v, %v", a.Release.Reach, err)
	}

	// A release from before releases carried their reach (or an attach
	// cut short) is repaired at a server's start by a new release.
	if _, err := s.UpdateApp(ctx, "shop", func(a *grid.App) error { a.Release.Reach = nil; return nil }); err != nil {
		t.Fatal(err)
	}
	before, _ := s.App(ctx, "shop")
	if got, err := s.RepairReach(ctx); err != nil || fmt.Sprint(got) != "[shop]" {
		t.Fatalf("RepairReach released %v, %v; want [shop]", got, err)
	}
	after, _ := s.App(ctx, "shop")
	if after.Release.Version != before.Release.Version+1 || len(after.Release.Reach) != 3 || after.Release.Config["REDIS_URL"] == "" {
		t.Errorf("after repair: v%d (was v%d), reach %v, config %v", after.Release.Version, before.Release.Version, after.Release.Reach, after.Release.Config)
	}
	if got, err := s.RepairReach(ctx); err != nil || len(got) != 0 {
		t.Errorf("a second RepairReach released %v, %v", got, err)
	}
}
