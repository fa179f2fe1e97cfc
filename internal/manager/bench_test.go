package manager

import (
	"fmt"
	"testing"
)

// benchView is a grid of 1,000 hosts (64 GB, 32 cores) and 10,000 apps of
// 10 web dynos each, nothing placed yet.
func benchView() *view {
	v := newView()
	for i := range 1000 {
		id := fmt.Sprintf("host-%04d", i)
		v.hosts[id] = seenHost{Host: hostRec(id), Seen: t0, Heard: true}
	}
	for i := range 10_000 {
		f := newFixture()
		a := f.v.apps["a"]
		a.Name = fmt.Sprintf("app-%05d", i)
		v.apps[a.Name] = a
		fm := f.v.formations["a"]
		fm.App = a.Name
		v.formations[a.Name] = fm
		ft := fm.Types["web"]
		ft.Quantity = 10
		fm.Types["web"] = ft
	}
	return v
}

// BenchmarkPlaceAll places 100,000 dynos app by app on 1,000 hosts, as
// the manager does after a sync of a grid where nothing runs yet.
func BenchmarkPlaceAll(b *testing.B) {
	for b.Loop() {
		b.StopTimer()
		v := benchView()
		b.StartTimer()
		if n := placeAll(v); n != 100_000 {
			b.Fatalf("%d placed", n)
		}
	}
}

// BenchmarkResync reconciles every app of a converged grid of 100,000
// dynos once: what the periodic resync costs.
func BenchmarkResync(b *testing.B) {
	v := benchView()
	placeAll(v)
	for id, a := range v.assignments {
		v.putDyno(seenDyno{Dyno: dynoOf(a, id)})
	}
	apps := v.appNames()
	for b.Loop() {
		p := newPolicy(v, t0, testTiming, func() string { return "" })
		for _, app := range apps {
			if d := reconcile(v, app, p); len(d.Actions) > 0 {
				b.Fatalf("%s not converged: %v", app, d.Actions)
			}
		}
	}
}

func placeAll(v *view) int {
	p := newPolicy(v, t0, testTiming, func() string { return "" })
	n := 0
	for _, app := range v.appNames() {
		d := reconcile(v, app, p)
		for _, a := range d.Actions {
			n++
			a.Assignment.DynoID = fmt.Sprintf("d%d", n)
			v.do(a)
		}
	}
	return n
}
