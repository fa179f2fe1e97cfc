package store_test

import (
	"context"
	"errors"
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
	d := grid.Dyno{ID: "d1", App: "a1", Name: "web.1", State: grid.DynoStarting}
	if err := s.PutDyno(ctx, d); err != nil {
		t.Fatal(err)
	}
	ch, err := s.WatchDynos(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if ev := <-ch; ev.Key != "a1.d1" || ev.Value.State != grid.DynoStarting {
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
	if err := s.DeleteDyno(ctx, "a1", "d1"); err != nil {
		t.Fatal(err)
	}
	if ev := <-ch; !ev.Deleted || ev.Key != "a1.d1" {
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
