package manager

import (
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
	"pgregory.net/rapid"

	"github.com/dynogrid/grid/internal/grid"
	"github.com/dynogrid/grid/internal/store"
)

// Whatever sequence of events and own writes (done, some undone) the
// view sees, its aggregates match a recount from its assignments and
// records.
func TestPropertyViewAggregates(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		v := newView()
		hosts := []string{"h1", "h2"}
		apps := []string{"a", "b"}
		for i := range rapid.IntRange(0, 60).Draw(t, "steps") {
			id := fmt.Sprintf("d%d", rapid.IntRange(0, 8).Draw(t, "id"))
			host, app := rapid.SampledFrom(hosts).Draw(t, "host"), rapid.SampledFrom(apps).Draw(t, "app")
			a := grid.Assignment{
				DynoID: id, App: app, Host: host, Name: "web.1",
				Type: rapid.SampledFrom([]string{"web", "worker"}).Draw(t, "type"),
				Size: rapid.SampledFrom([]string{"standard-1x", "standard-2x", "eco"}).Draw(t, "size"),
				CPUs: rapid.SampledFrom([]string{"", "0", "1", "0-1", "3", "bad"}).Draw(t, "cpus"),
			}
			d := grid.Dyno{ID: id, App: app, Host: host, State: grid.DynoUp}
			switch rapid.IntRange(0, 5).Draw(t, "op") {
			case 0:
				v.applyAssignment(store.Event[grid.Assignment]{Key: host + "." + id, Value: a, Revision: uint64(i)})
			case 1:
				v.applyAssignment(store.Event[grid.Assignment]{Key: host + "." + id, Deleted: true})
			case 2:
				v.applyDyno(store.Event[grid.Dyno]{Key: host + "." + app + "." + id, Value: d, Revision: uint64(i)}, t0)
			case 3:
				v.applyDyno(store.Event[grid.Dyno]{Key: host + "." + app + "." + id, Deleted: true}, t0)
			case 4:
				act := action{Op: opPut, Assignment: a}
				if old, ok := v.assignments[id]; ok && rapid.Bool().Draw(t, "delete") {
					act = action{Op: opDelete, Assignment: old}
				}
				v.do(act)
				if rapid.Bool().Draw(t, "fails") && act.Op == opDelete {
					v.undo(act)
				}
			case 5:
				if old, ok := v.dynos[id]; ok {
					act := action{Op: opDeleteDyno, Dyno: old.Dyno}
					v.do(act)
					if rapid.Bool().Draw(t, "fails") {
						v.undo(act)
					}
				}
			}
		}
		want := newView()
		for _, a := range v.assignments {
			want.putAssignment(a)
		}
		for _, d := range v.dynos {
			want.putDyno(d)
		}
		opt := cmp.AllowUnexported(hostUse{}, typeUse{})
		if diff := cmp.Diff(trim(want.use), trim(v.use), opt); diff != "" {
			t.Fatalf("use (-recount +kept):\n%s", diff)
		}
		if diff := cmp.Diff(want.records, v.records); diff != "" {
			t.Fatalf("records (-recount +kept):\n%s", diff)
		}
		if diff := cmp.Diff(want.appAssignments, v.appAssignments); diff != "" {
			t.Fatalf("assignment index (-recount +kept):\n%s", diff)
		}
		if diff := cmp.Diff(want.appDynos, v.appDynos); diff != "" {
			t.Fatalf("dyno index (-recount +kept):\n%s", diff)
		}
	})
}

// trim drops trailing zero core counts, which depend on history only.
func trim(use map[string]*hostUse) map[string]*hostUse {
	out := map[string]*hostUse{}
	for h, u := range use {
		c := *u
		c.load, c.idleLoad = trimZeros(u.load), trimZeros(u.idleLoad)
		c.apps = map[string]map[string]*typeUse{}
		for app, types := range u.apps {
			c.apps[app] = map[string]*typeUse{}
			for typ, tu := range types {
				c.apps[app][typ] = &typeUse{n: tu.n, cores: trimZeros(tu.cores)}
			}
		}
		out[h] = &c
	}
	return out
}

func trimZeros(xs []int) []int {
	for len(xs) > 0 && xs[len(xs)-1] == 0 {
		xs = xs[:len(xs)-1]
	}
	if len(xs) == 0 {
		return nil
	}
	return xs
}
