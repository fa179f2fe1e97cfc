package manager

import (
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/dynogrid/grid/internal/grid"
)

var t0 = time.Date(2026, 1, 5, 14, 0, 0, 0, time.UTC)

// fixture builds a view: app "a" at release v3 with a slug, hosts h1 and
// h2 live (8 GB each), formation web=2 worker=0 unless changed.
type fixture struct {
	v *view
}

func newFixture() *fixture {
	v := newView()
	v.apps["a"] = grid.App{ID: "app-a", Name: "a", UID: 200001, Release: grid.Release{Version: 3, SlugID: "slug3", Config: map[string]string{"K": "v"}}}
	v.formations["a"] = grid.Formation{App: "a", Types: map[string]grid.FormationType{
		"web":    {Quantity: 2, Size: "standard-1x", Command: "bin/web"},
		"worker": {Quantity: 0, Size: "standard-1x", Command: "bin/worker"},
	}}
	for _, h := range []string{"h1", "h2"} {
		v.hosts[h] = seenHost{Host: grid.Host{ID: h, MemoryMB: 8192, Cores: 2}, Seen: t0, Heard: true}
	}
	return &fixture{v: v}
}

// assign adds an assignment of app a; state "" means no dyno record.
func (f *fixture) assign(id, host, name string, release, epoch int, state grid.DynoState) *fixture {
	typ := name[:len(name)-2]
	f.v.putAssignment(grid.Assignment{DynoID: id, App: "a", Host: host, Name: name, Type: typ, Release: release, Epoch: epoch, Size: "standard-1x", CreatedAt: t0})
	if state != "" {
		f.dyno(id, host, name, state, t0)
	}
	return f
}

func (f *fixture) dyno(id, host, name string, state grid.DynoState, since time.Time) *fixture {
	f.v.removeDyno(id)
	f.v.putDyno(seenDyno{Dyno: grid.Dyno{ID: id, App: "a", Name: name, Host: host, State: state}, Since: since})
	return f
}

// upAt says dyno id became up at a dynos bucket revision, at a time.
func (f *fixture) upAt(id string, rev uint64, since time.Time) *fixture {
	d := f.v.dynos[id]
	d.State, d.UpRev, d.Since = grid.DynoUp, rev, since
	f.v.dynos[id] = d
	return f
}

// router adds a router that has applied rev, last heard from at seen.
func (f *fixture) router(id string, rev uint64, seen time.Time) *fixture {
	f.v.routers[id] = seenRouter{RouterState: grid.RouterState{ID: id, Revision: rev}, Seen: seen}
	return f
}

// host changes a host's record as the manager sees it.
func (f *fixture) host(id string, fn func(h *seenHost)) *fixture {
	h := f.v.hosts[id]
	fn(&h)
	f.v.hosts[id] = h
	return f
}

func (f *fixture) drain(id string) *fixture {
	f.v.controls[id] = grid.HostControl{ID: id, Draining: true}
	return f
}

func (f *fixture) scale(typ string, q int) *fixture {
	ft := f.v.formations["a"].Types[typ]
	ft.Quantity = q
	f.v.formations["a"].Types[typ] = ft
	return f
}

func (f *fixture) with(fn func(v *view)) *fixture { fn(f.v); return f }

var testTiming = timing{HostTimeout: 6 * time.Second, ForgetAfter: 45 * time.Second, RouterWait: 5 * time.Second}

func decide(v *view, now time.Time, hold ...func(*policy)) decision {
	n := 0
	p := newPolicy(v, now, testTiming, func() string { n++; return fmt.Sprintf("new%d", n) })
	for _, fn := range hold {
		fn(&p)
	}
	return reconcile(v, "a", p)
}

func TestReconcile(t *testing.T) {
	now := t0.Add(time.Second)
	tests := []struct {
		name     string
		f        *fixture
		now      time.Time
		want     []string
		unplaced []string
		waiting  bool
		policy   func(*policy)
	}{
		{
			name: "scale up from nothing spreads over hosts",
			f:    newFixture(),
			want: []string{"put web.1 v3 e0 on h1 cpus 0", "put web.2 v3 e0 on h2 cpus 0"},
		},
		{
			name: "dynos are spread over hosts, then over their cores",
			f:    newFixture().scale("web", 4).scale("worker", 2),
			want: []string{
				"put web.1 v3 e0 on h1 cpus 0", "put web.2 v3 e0 on h2 cpus 0", "put web.3 v3 e0 on h1 cpus 1", "put web.4 v3 e0 on h2 cpus 1",
				"put worker.1 v3 e0 on h1 cpus 0", "put worker.2 v3 e0 on h2 cpus 0",
			},
		},
		{
			name: "existing pins count",
			f: newFixture().scale("web", 2).assign("d1", "h1", "web.1", 3, 0, grid.DynoUp).with(func(v *view) {
				a := v.assignments["d1"]
				v.removeAssignment("d1")
				a.CPUs = "0"
				v.putAssignment(a)
				v.putAssignment(grid.Assignment{DynoID: "b1", App: "b", Host: "h2", Name: "web.1", Type: "web", Size: "standard-2x", CPUs: "0-1"})
				v.putAssignment(grid.Assignment{DynoID: "b2", App: "b", Host: "h2", Name: "web.2", Type: "web", Size: "standard-1x", CPUs: "1"})
			}),
			want: []string{"put web.2 v3 e0 on h2 cpus 0"},
		},
		{
			name: "performance dynos get every core of a small host",
			f: newFixture().scale("web", 1).with(func(v *view) {
				ft := v.formations["a"].Types["web"]
				ft.Size = "performance-m"
				v.formations["a"].Types["web"] = ft
			}),
			want: []string{"put web.1 v3 e0 on h1 cpus 0-1"},
		},
		{
			name: "converged does nothing",
			f:    newFixture().assign("d1", "h1", "web.1", 3, 0, grid.DynoUp).assign("d2", "h2", "web.2", 3, 0, grid.DynoStarting),
		},
		{
			name: "scale down deletes the highest names",
			f:    newFixture().scale("web", 1).assign("d1", "h1", "web.1", 3, 0, grid.DynoUp).assign("d2", "h2", "web.2", 3, 0, grid.DynoUp),
			want: []string{"delete web.2 d2 (not in formation)"},
		},
		{
			name: "scale to zero deletes all",
			f:    newFixture().scale("web", 0).assign("d1", "h1", "web.1", 3, 0, grid.DynoUp).assign("d2", "h2", "web.2", 3, 0, grid.DynoUp),
			want: []string{"delete web.1 d1 (not in formation)", "delete web.2 d2 (not in formation)"},
		},
		{
			name: "new release starts new dynos, old keep serving",
			f:    newFixture().scale("web", 1).assign("old", "h1", "web.1", 2, 0, grid.DynoUp),
			want: []string{"put web.1 v3 e0 on h2 cpus 0"},
		},
		{
			name: "old stays while the new one starts",
			f:    newFixture().scale("web", 1).assign("old", "h1", "web.1", 2, 0, grid.DynoUp).assign("new", "h2", "web.1", 3, 0, grid.DynoStarting),
		},
		{
			name: "old stays until the new one has a record",
			f:    newFixture().scale("web", 1).assign("old", "h1", "web.1", 2, 0, grid.DynoUp).assign("new", "h2", "web.1", 3, 0, ""),
		},
		{
			name: "old is deleted once the new one is up",
			f:    newFixture().scale("web", 1).assign("old", "h1", "web.1", 2, 0, grid.DynoUp).assign("new", "h2", "web.1", 3, 0, grid.DynoUp),
			want: []string{"delete web.1 old (replaced by new)"},
		},
		{
			name: "a crashed new dyno replaces the old one too",
			f:    newFixture().scale("web", 1).assign("old", "h1", "web.1", 2, 0, grid.DynoUp).assign("new", "h2", "web.1", 3, 0, grid.DynoCrashed),
			want: []string{"delete web.1 old (replaced by new)"},
		},
		{
			name: "epoch bump replaces start-before-stop",
			f: newFixture().scale("web", 1).assign("old", "h1", "web.1", 3, 0, grid.DynoUp).with(func(v *view) {
				ft := v.formations["a"].Types["web"]
				ft.Epoch = 1
				v.formations["a"].Types["web"] = ft
			}),
			want: []string{"put web.1 v3 e1 on h2 cpus 0"},
		},
		{
			name: "duplicate fresh assignments keep the up one",
			f:    newFixture().scale("web", 1).assign("d1", "h1", "web.1", 3, 0, grid.DynoStarting).assign("d2", "h2", "web.1", 3, 0, grid.DynoUp),
			want: []string{"delete web.1 d1 (duplicate of d2)"},
		},
		{
			name: "app deleted",
			f: newFixture().assign("d1", "h1", "web.1", 3, 0, grid.DynoUp).with(func(v *view) {
				delete(v.apps, "a")
				delete(v.formations, "a")
				v.putAssignment(grid.Assignment{DynoID: "r1", App: "a", Host: "h2", Name: "run.1", Type: "run", OneOff: true})
			}),
			want: []string{"delete run.1 r1 (app deleted)", "delete web.1 d1 (app deleted)"},
		},
		{
			name: "no slug yet runs nothing",
			f: newFixture().with(func(v *view) {
				a := v.apps["a"]
				a.Release = grid.Release{Version: 1}
				v.apps["a"] = a
			}),
		},
		{
			name: "types without a command are not run",
			f: newFixture().scale("web", 0).scale("worker", 1).with(func(v *view) {
				ft := v.formations["a"].Types["worker"]
				ft.Command = ""
				v.formations["a"].Types["worker"] = ft
			}),
		},
		{
			name: "a host heard from within the timeout is live",
			f:    newFixture().scale("web", 1).assign("d1", "h2", "web.1", 3, 0, grid.DynoUp),
			now:  t0.Add(5 * time.Second),
			want: nil,
		},
		{
			name: "lost host after the timeout",
			f: newFixture().scale("web", 1).assign("d1", "h2", "web.1", 3, 0, grid.DynoUp).with(func(v *view) {
				h := v.hosts["h1"]
				h.Seen = t0.Add(5 * time.Second)
				v.hosts["h1"] = h
			}),
			now:  t0.Add(7 * time.Second),
			want: []string{"put web.1 v3 e0 on h1 cpus 0"},
		},
		{
			name:     "no live hosts: nothing placed, reported",
			f:        newFixture().scale("web", 1),
			now:      t0.Add(time.Minute),
			unplaced: []string{"web.1: no live hosts"},
		},
		{
			name: "full hosts: reported, the rest placed",
			f: newFixture().scale("web", 3).with(func(v *view) {
				for _, id := range []string{"h1", "h2"} {
					h := v.hosts[id]
					h.MemoryMB = 512
					v.hosts[id] = h
				}
			}),
			want:     []string{"put web.1 v3 e0 on h1 cpus 0", "put web.2 v3 e0 on h2 cpus 0"},
			unplaced: []string{"web.3: needs 512 MB of memory; the most any of 2 hosts has free is 0 MB"},
		},
		{
			name: "records without assignments are forgotten when down long enough",
			f: newFixture().scale("web", 0).
				dyno("gone1", "h1", "web.1", grid.DynoDown, t0.Add(-time.Minute)).
				dyno("gone2", "h1", "web.2", grid.DynoCrashed, t0.Add(-time.Minute)).
				dyno("stopping", "h1", "web.3", grid.DynoDown, t0).
				dyno("up", "h2", "web.4", grid.DynoUp, t0.Add(-time.Hour)).
				dyno("gone", "h9", "web.5", grid.DynoUp, t0.Add(-time.Minute)).
				dyno("recent", "h9", "web.6", grid.DynoUp, t0),
			want: []string{
				"forget web.5 gone (host gone)",
				"forget web.1 gone1 (unassigned and down)",
				"forget web.2 gone2 (unassigned and crashed)",
			},
		},
		{
			name: "one-off dynos stay while they run and go when they exit",
			f: newFixture().scale("web", 0).with(func(v *view) {
				v.putAssignment(grid.Assignment{DynoID: "r1", App: "a", Host: "h1", Name: "run.1", Type: "run", OneOff: true, Release: 3})
				v.putAssignment(grid.Assignment{DynoID: "r2", App: "a", Host: "h1", Name: "run.2", Type: "run", OneOff: true, Release: 3})
				v.putDyno(seenDyno{Dyno: grid.Dyno{ID: "r1", App: "a", Name: "run.1", Host: "h1", State: grid.DynoUp}})
				v.putDyno(seenDyno{Dyno: grid.Dyno{ID: "r2", App: "a", Name: "run.2", Host: "h1", State: grid.DynoCrashed}})
			}),
			want: []string{"delete run.2 r2 (one-off exited)"},
		},
		{
			name: "a pending one-off dyno is moved to a host under its ID",
			f: newFixture().scale("web", 0).with(func(v *view) {
				v.putAssignment(grid.Assignment{DynoID: "r1", App: "a", Host: grid.PendingHost, Name: "run.1", Type: "run", Size: "standard-1x", OneOff: true, Attach: true, Release: 3})
			}),
			want: []string{"delete run.1 r1 (one-off placed)", "put run.1 v3 e0 on h1 cpus 0"},
		},
		{
			name: "a pending one-off dyno waits for room, then is dropped",
			f: newFixture().scale("web", 0).with(func(v *view) {
				for _, id := range []string{"h1", "h2"} {
					h := v.hosts[id]
					h.MemoryMB = 256
					v.hosts[id] = h
				}
				v.putAssignment(grid.Assignment{DynoID: "r1", App: "a", Host: grid.PendingHost, Name: "run.1", Type: "run", Size: "standard-1x", OneOff: true, Release: 3, CreatedAt: t0.Add(-time.Minute)})
				v.putAssignment(grid.Assignment{DynoID: "r2", App: "a", Host: grid.PendingHost, Name: "run.2", Type: "run", Size: "standard-1x", OneOff: true, Release: 3, CreatedAt: t0.Add(-3 * time.Minute)})
			}),
			want:     []string{"delete run.2 r2 (no room for the one-off dyno within 2m0s)"},
			unplaced: []string{"run.1: needs 512 MB of memory; the most any of 2 hosts has free is 256 MB"},
		},
		{
			name: "a pending one-off dyno of a deleted app is dropped",
			f: newFixture().scale("web", 0).with(func(v *view) {
				delete(v.apps, "a")
				delete(v.formations, "a")
				v.putAssignment(grid.Assignment{DynoID: "r1", App: "a", Host: grid.PendingHost, Name: "run.1", Type: "run", OneOff: true})
			}),
			want: []string{"delete run.1 r1 (app deleted)"},
		},
		{
			name:    "router gating: the old web dyno waits until every live router has the new one",
			f:       newFixture().scale("web", 1).assign("old", "h1", "web.1", 2, 0, grid.DynoUp).assign("new", "h2", "web.1", 3, 0, grid.DynoUp).upAt("new", 20, t0).router("r1", 25, t0).router("r2", 19, t0),
			waiting: true,
		},
		{
			name: "router gating: proceeds once all have acked",
			f:    newFixture().scale("web", 1).assign("old", "h1", "web.1", 2, 0, grid.DynoUp).assign("new", "h2", "web.1", 3, 0, grid.DynoUp).upAt("new", 20, t0).router("r1", 25, t0).router("r2", 20, t0),
			want: []string{"delete web.1 old (replaced by new)"},
		},
		{
			name: "router gating: proceeds after RouterWait, saying so",
			f:    newFixture().scale("web", 1).assign("old", "h1", "web.1", 2, 0, grid.DynoUp).assign("new", "h2", "web.1", 3, 0, grid.DynoUp).upAt("new", 20, t0).router("r1", 19, t0.Add(4*time.Second)),
			now:  t0.Add(5 * time.Second),
			want: []string{"delete web.1 old (replaced by new; routers did not confirm within 5s)"},
		},
		{
			name: "router gating: routers not heard from do not count",
			f:    newFixture().scale("web", 1).assign("old", "h1", "web.1", 2, 0, grid.DynoUp).assign("new", "h2", "web.1", 3, 0, grid.DynoUp).upAt("new", 20, t0).router("dead", 1, t0.Add(-time.Minute)),
			want: []string{"delete web.1 old (replaced by new)"},
		},
		{
			name: "router gating: workers need only be up",
			f:    newFixture().scale("web", 0).scale("worker", 1).assign("old", "h1", "worker.1", 2, 0, grid.DynoUp).assign("new", "h2", "worker.1", 3, 0, grid.DynoUp).upAt("new", 20, t0).router("r1", 1, t0),
			want: []string{"delete worker.1 old (replaced by new)"},
		},
		{
			name:    "router gating: an up duplicate stays until the kept one is routed",
			f:       newFixture().scale("web", 1).assign("d1", "h1", "web.1", 3, 0, grid.DynoUp).assign("d2", "h2", "web.1", 3, 0, grid.DynoUp).upAt("d1", 30, t0).router("r1", 10, t0),
			waiting: true,
		},
		{
			name: "lost host: its dyno is replaced elsewhere and kept meanwhile",
			f:    newFixture().scale("web", 1).assign("d1", "h2", "web.1", 3, 0, grid.DynoUp).host("h2", func(h *seenHost) { h.Seen = t0.Add(-7 * time.Second) }),
			want: []string{"put web.1 v3 e0 on h1 cpus 0"},
		},
		{
			name: "lost host: its dyno never counts as serving",
			f: newFixture().scale("web", 1).assign("d1", "h2", "web.1", 3, 0, grid.DynoUp).assign("new", "h1", "web.1", 3, 0, grid.DynoStarting).
				host("h2", func(h *seenHost) { h.Seen = t0.Add(-7 * time.Second) }),
		},
		{
			name: "lost host: its assignment goes once the replacement is up; its record stays",
			f: newFixture().scale("web", 1).assign("d1", "h2", "web.1", 3, 0, grid.DynoUp).assign("new", "h1", "web.1", 3, 0, grid.DynoUp).
				host("h2", func(h *seenHost) { h.Seen = t0.Add(-7 * time.Second) }),
			want: []string{"delete web.1 d1 (replaced by new)"},
		},
		{
			name: "lost host: unassigned records are forgotten ForgetAfter after it was last heard",
			f: newFixture().scale("web", 0).dyno("d1", "h2", "web.1", grid.DynoUp, t0).dyno("d2", "h1", "web.2", grid.DynoUp, t0).
				host("h2", func(h *seenHost) { h.Seen = t0.Add(-46 * time.Second) }).host("h1", func(h *seenHost) { h.Seen = t0.Add(-44 * time.Second) }),
			want: []string{"forget web.1 d1 (host lost)"},
		},
		{
			name: "lost host: one-off dynos go",
			f: newFixture().scale("web", 0).host("h2", func(h *seenHost) { h.Seen = t0.Add(-7 * time.Second) }).with(func(v *view) {
				v.putAssignment(grid.Assignment{DynoID: "r1", App: "a", Host: "h2", Name: "run.1", Type: "run", OneOff: true, Release: 3})
			}),
			want: []string{"delete run.1 r1 (host lost)"},
		},
		{
			name: "returning host: its dyno is kept, the replacement goes",
			f:    newFixture().scale("web", 1).assign("d1", "h2", "web.1", 3, 0, grid.DynoUp).assign("new", "h1", "web.1", 3, 0, grid.DynoStarting),
			want: []string{"delete web.1 new (duplicate of d1)"},
		},
		{
			name: "a host not heard from since the sync gets no dynos, and keeps its own",
			f:    newFixture().scale("web", 2).assign("d1", "h2", "web.1", 3, 0, grid.DynoUp).host("h2", func(h *seenHost) { h.Heard = false }),
			want: []string{"put web.2 v3 e0 on h1 cpus 0"},
		},
		{
			name:   "just synced: nothing placed yet, nothing reported",
			f:      newFixture().scale("web", 2),
			policy: func(p *policy) { p.Hold = true },
		},
		{
			name:   "a host just returned: lost hosts' dynos wait for theirs to return too; others are placed",
			f:      newFixture().scale("web", 2).assign("d1", "h2", "web.1", 3, 0, grid.DynoUp).host("h2", func(h *seenHost) { h.Seen = t0.Add(-7 * time.Second) }),
			policy: func(p *policy) { p.HoldLost = true },
			want:   []string{"put web.2 v3 e0 on h1 cpus 0"},
		},
		{
			name: "draining host: gets no new dynos",
			f:    newFixture().scale("web", 2).drain("h1"),
			want: []string{"put web.1 v3 e0 on h2 cpus 0", "put web.2 v3 e0 on h2 cpus 1"},
		},
		{
			name: "draining host: its dynos start elsewhere first",
			f:    newFixture().scale("web", 1).assign("d1", "h1", "web.1", 3, 0, grid.DynoUp).drain("h1"),
			want: []string{"put web.1 v3 e0 on h2 cpus 0"},
		},
		{
			name: "draining host: its dyno goes once the new one is up and routed",
			f: newFixture().scale("web", 1).assign("d1", "h1", "web.1", 3, 0, grid.DynoUp).assign("new", "h2", "web.1", 3, 0, grid.DynoUp).upAt("new", 7, t0).
				router("r1", 7, t0).drain("h1"),
			want: []string{"delete web.1 d1 (replaced by new)"},
		},
		{
			name:   "hung dyno: a successor is placed, the hung one keeps its slot meanwhile",
			f:      newFixture().scale("web", 1).assign("hung", "h1", "web.1", 3, 0, grid.DynoUp),
			policy: func(p *policy) { p.Replacing = map[string]replaceReason{"hung": replaceHung} },
			want:   []string{"put web.1 v3 e0 on h2 cpus 0 (hung)"},
		},
		{
			name:   "hung dyno: deleted once the successor is up and routed",
			f:      newFixture().scale("web", 1).assign("hung", "h1", "web.1", 3, 0, grid.DynoUp).assign("new", "h2", "web.1", 3, 0, grid.DynoUp).upAt("new", 7, t0).router("r1", 7, t0),
			policy: func(p *policy) { p.Replacing = map[string]replaceReason{"hung": replaceHung} },
			want:   []string{"delete web.1 hung (replaced by new)"},
		},
		{
			name:    "hung dyno: kept while routers have not seen the successor",
			f:       newFixture().scale("web", 1).assign("hung", "h1", "web.1", 3, 0, grid.DynoUp).assign("new", "h2", "web.1", 3, 0, grid.DynoUp).upAt("new", 7, t0).router("r1", 6, t0),
			policy:  func(p *policy) { p.Replacing = map[string]replaceReason{"hung": replaceHung} },
			waiting: true,
		},
		{
			name:   "hung dyno: a crashed successor replaces it",
			f:      newFixture().scale("web", 1).assign("hung", "h1", "web.1", 3, 0, grid.DynoUp).assign("new", "h2", "web.1", 3, 0, grid.DynoCrashed),
			policy: func(p *policy) { p.Replacing = map[string]replaceReason{"hung": replaceHung} },
			want:   []string{"delete web.1 hung (replaced by new)"},
		},
		{
			name:   "cycled dyno: a successor is placed, the old one keeps serving meanwhile",
			f:      newFixture().scale("web", 1).assign("old", "h1", "web.1", 3, 0, grid.DynoUp),
			policy: func(p *policy) { p.Replacing = map[string]replaceReason{"old": replaceCycle} },
			want:   []string{"put web.1 v3 e0 on h2 cpus 0 (cycle)"},
		},
		{
			name:   "cycled dyno: kept while the successor starts",
			f:      newFixture().scale("web", 1).assign("old", "h1", "web.1", 3, 0, grid.DynoUp).assign("new", "h2", "web.1", 3, 0, grid.DynoStarting),
			policy: func(p *policy) { p.Replacing = map[string]replaceReason{"old": replaceCycle} },
		},
		{
			name:   "cycled dyno: kept while the successor is crashed, unlike a deploy's or a hung one",
			f:      newFixture().scale("web", 1).assign("old", "h1", "web.1", 3, 0, grid.DynoUp).assign("new", "h2", "web.1", 3, 0, grid.DynoCrashed),
			policy: func(p *policy) { p.Replacing = map[string]replaceReason{"old": replaceCycle} },
		},
		{
			name:    "cycled dyno: kept while routers have not seen the successor",
			f:       newFixture().scale("web", 1).assign("old", "h1", "web.1", 3, 0, grid.DynoUp).assign("new", "h2", "web.1", 3, 0, grid.DynoUp).upAt("new", 7, t0).router("r1", 6, t0),
			policy:  func(p *policy) { p.Replacing = map[string]replaceReason{"old": replaceCycle} },
			waiting: true,
		},
		{
			name:   "cycled dyno: deleted once the successor is up and routed",
			f:      newFixture().scale("web", 1).assign("old", "h1", "web.1", 3, 0, grid.DynoUp).assign("new", "h2", "web.1", 3, 0, grid.DynoUp).upAt("new", 7, t0).router("r1", 7, t0),
			policy: func(p *policy) { p.Replacing = map[string]replaceReason{"old": replaceCycle} },
			want:   []string{"delete web.1 old (replaced by new)"},
		},
		{
			name:   "cycled dyno: a release since then replaces it as a deploy does, even by a crashed dyno",
			f:      newFixture().scale("web", 1).assign("old", "h1", "web.1", 2, 0, grid.DynoUp).assign("new", "h2", "web.1", 3, 0, grid.DynoCrashed),
			policy: func(p *policy) { p.Replacing = map[string]replaceReason{"old": replaceCycle} },
			want:   []string{"delete web.1 old (replaced by new)"},
		},
		{
			name:     "draining host: with nowhere to go, its dynos stay",
			f:        newFixture().scale("web", 1).assign("d1", "h1", "web.1", 3, 0, grid.DynoUp).drain("h1").drain("h2"),
			unplaced: []string{"web.1: no live hosts"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			at := tt.now
			if at.IsZero() {
				at = now
			}
			var opts []func(*policy)
			if tt.policy != nil {
				opts = append(opts, tt.policy)
			}
			d := decide(tt.f.v, at, opts...)
			var got, unplaced []string
			for _, a := range d.Actions {
				got = append(got, a.String())
			}
			for _, p := range d.Unplaced {
				unplaced = append(unplaced, p.Request.Name+": "+p.Reason)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("actions (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.unplaced, unplaced); diff != "" {
				t.Errorf("unplaced (-want +got):\n%s", diff)
			}
			if d.Waiting != tt.waiting {
				t.Errorf("waiting %v, want %v", d.Waiting, tt.waiting)
			}
		})
	}
}

func TestReconcileNewAssignment(t *testing.T) {
	f := newFixture().scale("web", 1)
	d := decide(f.v, t0)
	if len(d.Actions) != 1 {
		t.Fatalf("actions %v", d.Actions)
	}
	want := grid.Assignment{
		DynoID: "new1", App: "a", AppID: "app-a", UID: 200001, Host: "h1",
		Name: "web.1", Type: "web", Command: "bin/web", Size: "standard-1x",
		Release: 3, Epoch: 0, SlugID: "slug3", Env: map[string]string{"K": "v"}, CPUs: "0", CreatedAt: t0,
	}
	if diff := cmp.Diff(want, d.Actions[0].Assignment); diff != "" {
		t.Errorf("assignment (-want +got):\n%s", diff)
	}
}

// Applying a decision to the view and deciding again must not repeat it:
// the manager relies on this between its writes and their echoes.
func TestReconcileConverges(t *testing.T) {
	f := newFixture().scale("web", 3).scale("worker", 2).assign("old", "h1", "web.1", 2, 0, grid.DynoUp)
	for round := 0; round < 5; round++ {
		d := decide(f.v, t0)
		if len(d.Actions) == 0 {
			if n := len(f.v.assignments); n != 6 {
				t.Fatalf("converged with %d assignments, want 6 (5 new + old until the new web.1 is up)", n)
			}
			return
		}
		for _, a := range d.Actions {
			if a.Op == opPut {
				a.Assignment.DynoID = fmt.Sprintf("%s-r%d", a.Assignment.Name, round)
			}
			f.v.do(a)
		}
	}
	t.Fatal("no convergence in 5 rounds")
}

func hostRec(id string) grid.Host { return grid.Host{ID: id, MemoryMB: 65536, Cores: 32} }

func dynoOf(a grid.Assignment, id string) grid.Dyno {
	return grid.Dyno{ID: id, App: a.App, Name: a.Name, Type: a.Type, Host: a.Host, Release: a.Release, State: grid.DynoUp}
}
