package manager_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/dynogrid/grid/internal/grid"
	"github.com/dynogrid/grid/internal/manager"
	"github.com/dynogrid/grid/internal/store"
	"github.com/dynogrid/grid/internal/store/storetest"
)

// A web dyno that a live router reports hung is replaced start-before-
// stop: its successor is assigned before it is deleted. A dead router's
// report (its record from before the manager started, never renewed)
// is ignored, reports of dynos that are not assigned are ignored, and an
// app gets at most one replacement per HungEvery.
func TestManagerReplacesHungDyno(t *testing.T) {
	t.Parallel()
	st := storetest.Start(t)
	s := newSim(t, st, true)
	s.addHost("h1", 8192, 2)
	s.addHost("h2", 8192, 2)
	s.addRouter("r1")
	seedApp(t, st, 2)
	cfg := manager.Config{HostTimeout: time.Second, HungEvery: 3 * time.Second}

	// A first manager places the dynos; it stops, and a router that dies
	// leaves a report behind.
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		c := cfg
		c.Store = st
		manager.New(c).Run(ctx)
	}()
	first := waitUp(t, st, 2, "")
	cancel()
	<-done
	web1 := first[0]
	report := func(a grid.Assignment) grid.HungDyno {
		return grid.HungDyno{ID: a.DynoID, App: a.App, Name: a.Name, Since: time.Now()}
	}
	if err := st.PutRouterState(context.Background(), grid.RouterState{ID: "dead", HeartbeatAt: time.Now(), Hung: []grid.HungDyno{report(web1)}}); err != nil {
		t.Fatal(err)
	}

	changes := watchAssignmentOrder(t, st)
	startManager(t, st, cfg)
	observe(t, 3*cfg.HostTimeout, "a dead router's report is ignored", func() error {
		if as, _ := assignments(st); ids(as) != ids(first) {
			return fmt.Errorf("assignments changed: %s", describe(as))
		}
		return nil
	})

	// Unknown dynos and dynos of other apps are not acted on.
	s.reportHung("r1", grid.HungDyno{ID: "nosuch", App: "hello", Name: "web.9"}, grid.HungDyno{ID: web1.DynoID, App: "other", Name: "web.1"})
	observe(t, 3*cfg.HostTimeout, "reports of unassigned dynos are ignored", func() error {
		if as, _ := assignments(st); ids(as) != ids(first) {
			return fmt.Errorf("assignments changed: %s", describe(as))
		}
		return nil
	})

	// A live router reports web.1 hung: it is replaced, successor first.
	s.reportHung("r1", report(web1))
	as := waitAssignments(t, st, "web.1 replaced", func(as []grid.Assignment) bool {
		return len(as) == 2 && !hasID(as, web1.DynoID) && hasID(as, first[1].DynoID)
	})
	replacedAt := time.Now()
	successor := as[0]
	if successor.Name != "web.1" {
		t.Fatalf("successor %s", describe(as))
	}
	if put, del := changes.at(successor.DynoID, false), changes.at(web1.DynoID, true); put < 0 || del < 0 || put > del {
		t.Errorf("successor assigned at event %d, hung dyno deleted at %d: not start-before-stop", put, del)
	}

	// The successor hangs too, and so does web.2: the app already had its
	// replacement for this HungEvery.
	s.reportHung("r1", report(successor), report(first[1]))
	observe(t, time.Until(replacedAt.Add(cfg.HungEvery/3)), "one replacement per app per HungEvery", func() error {
		if as, _ := assignments(st); ids(as) != ids([]grid.Assignment{successor, first[1]}) {
			return fmt.Errorf("assignments changed: %s", describe(as))
		}
		return nil
	})
	// Later, one of them is replaced, and then the other.
	waitFor(t, 3*cfg.HungEvery, "both replaced in turn", func() error {
		as, err := assignments(st)
		if err != nil {
			return err
		}
		if len(as) != 2 || hasID(as, successor.DynoID) || hasID(as, first[1].DynoID) {
			return fmt.Errorf("assignments %s", describe(as))
		}
		return nil
	})
	if a, b := changes.at(successor.DynoID, true), changes.at(first[1].DynoID, true); a < 0 || b < 0 {
		t.Errorf("deletions not seen: %d, %d", a, b)
	}
}

func hasID(as []grid.Assignment, id string) bool {
	for _, a := range as {
		if a.DynoID == id {
			return true
		}
	}
	return false
}

// assignmentOrder numbers assignment puts and deletes as the watch saw
// them.
type assignmentOrder struct {
	t      *testing.T
	events chan store.Event[grid.Assignment]
	seen   []store.Event[grid.Assignment]
}

func watchAssignmentOrder(t *testing.T, st *store.Store) *assignmentOrder {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	ch, err := st.WatchAssignments(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	o := &assignmentOrder{t: t, events: make(chan store.Event[grid.Assignment], 1024)}
	go func() {
		for ev := range ch {
			if !ev.Synced {
				o.events <- ev
			}
		}
	}()
	return o
}

// at returns the index of the first put (deleted false) or delete of the
// dyno's assignment, waiting briefly for it; -1 if none came.
func (o *assignmentOrder) at(id string, deleted bool) int {
	deadline := time.After(5 * time.Second)
	for i := 0; ; i++ {
		for i >= len(o.seen) {
			select {
			case ev := <-o.events:
				o.seen = append(o.seen, ev)
			case <-deadline:
				return -1
			}
		}
		ev := o.seen[i]
		if ev.Deleted == deleted && (ev.Key == id || len(ev.Key) > len(id) && ev.Key[len(ev.Key)-len(id)-1:] == "."+id) {
			return i
		}
	}
}
