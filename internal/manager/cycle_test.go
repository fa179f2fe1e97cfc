package manager_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/dynogrid/grid/internal/grid"
	"github.com/dynogrid/grid/internal/manager"
	"github.com/dynogrid/grid/internal/store/storetest"
)

// A day and more after a manager placed them, every dyno is cycled with
// the default settings: one at a time, each start-before-stop (its
// successor assigned first, the old one deleted once the successor is up
// and routed). The successors, young, are not cycled, and neither is a
// one-off dyno however old. The day passes on the clock of a second
// manager (a restart or failover): deadlines come from the assignments
// alone.
func TestManagerCyclesDynos(t *testing.T) {
	t.Parallel()
	st := storetest.Start(t)
	s := newSim(t, st, true)
	s.addHost("h1", 8192, 2)
	s.addHost("h2", 8192, 2)
	s.addRouter("r1")
	seedApp(t, st, 2)
	cfg := manager.Config{HostTimeout: time.Second}

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
	oneOff := grid.Assignment{DynoID: "run1", App: "hello", Host: "h1", Name: "run.1", Type: "run", Command: "bash", Release: 1, SlugID: "slug1", Size: "standard-1x", OneOff: true, CreatedAt: time.Now().Add(-72 * time.Hour)}
	if err := st.PutAssignment(context.Background(), oneOff); err != nil {
		t.Fatal(err)
	}

	// 28 h later: past 24 h and the largest jitter, 216 min.
	changes := watchAssignmentOrder(t, st)
	cfg.Now = func() time.Time { return time.Now().Add(28 * time.Hour) }
	startManager(t, st, cfg)
	as := waitAssignments(t, st, "both web dynos cycled", func(as []grid.Assignment) bool {
		return len(as) == 3 && !hasID(as, first[0].DynoID) && !hasID(as, first[1].DynoID) && hasID(as, oneOff.DynoID)
	})
	successors := map[string]grid.Assignment{}
	for _, a := range as {
		successors[a.Name] = a
	}
	type cycle struct{ put, del int }
	var cycles []cycle
	for _, old := range first {
		c := cycle{put: changes.at(successors[old.Name].DynoID, false), del: changes.at(old.DynoID, true)}
		if c.put < 0 || c.del < 0 || c.put > c.del {
			t.Errorf("%s: successor assigned at event %d, old dyno deleted at %d: not start-before-stop", old.Name, c.put, c.del)
		}
		cycles = append(cycles, c)
	}
	if a, b := cycles[0], cycles[1]; a.put < b.del && b.put < a.del {
		t.Errorf("web.1 (events %d–%d) and web.2 (events %d–%d) cycled at once; want one at a time", a.put, a.del, b.put, b.del)
	}

	observe(t, 3*cfg.HostTimeout, "successors and one-off dynos are not cycled", func() error {
		if got, _ := assignments(st); ids(got) != ids(as) {
			return fmt.Errorf("assignments changed: %s", describe(got))
		}
		return nil
	})
}

// A dyno becoming due while nothing changes is cycled: the resync looks
// at every app's deadlines. The successor's deadline runs from its own
// creation.
func TestManagerCyclesWhenDue(t *testing.T) {
	t.Parallel()
	st := storetest.Start(t)
	newSim(t, st, true).addHost("h1", 8192, 2)
	seedApp(t, st, 1)
	const after = 2 * time.Second
	startManager(t, st, manager.Config{HostTimeout: time.Second, Resync: 200 * time.Millisecond, CycleAfter: after, CycleJitter: -1})
	first := waitUp(t, st, 1, "")[0]

	var successor grid.Assignment
	waitFor(t, after+5*time.Second, "web.1 cycled", func() error {
		as, err := assignments(st)
		if err != nil {
			return err
		}
		if len(as) != 1 || as[0].DynoID == first.DynoID {
			return fmt.Errorf("assignments %s", describe(as))
		}
		successor = as[0]
		return nil
	})
	if age := successor.CreatedAt.Sub(first.CreatedAt); age < after {
		t.Errorf("cycled %v after it was created, before CycleAfter %v", age, after)
	}
	observe(t, time.Until(successor.CreatedAt.Add(after/2)), "the successor is not cycled at once", func() error {
		if as, _ := assignments(st); len(as) != 1 || as[0].DynoID != successor.DynoID {
			return fmt.Errorf("assignments changed: %s", describe(as))
		}
		return nil
	})
}
