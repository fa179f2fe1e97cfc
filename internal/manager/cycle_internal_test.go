package manager

import (
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/dynogrid/grid/internal/grid"
)

func TestCycleDue(t *testing.T) {
	web := grid.Assignment{DynoID: "d1", Name: "web.1", Type: "web", CreatedAt: t0}
	oneOff := web
	oneOff.OneOff = true
	undated := web
	undated.CreatedAt = time.Time{}
	const day, jitter = 24 * time.Hour, 216 * time.Minute
	tests := []struct {
		name          string
		a             grid.Assignment
		after, jitter time.Duration
		want          time.Time
		ok            bool
	}{
		{name: "after CycleAfter plus the dyno's jitter", a: web, after: day, jitter: jitter, want: t0.Add(day + cycleJitter("d1", jitter)), ok: true},
		{name: "no jitter", a: web, after: day, want: t0.Add(day), ok: true},
		{name: "one-off dynos never", a: oneOff, after: day, jitter: jitter},
		{name: "disabled", a: web, after: -1, jitter: jitter},
		{name: "unknown age", a: undated, after: day, jitter: jitter},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := cycleDue(tt.a, tt.after, tt.jitter)
			if !got.Equal(tt.want) || ok != tt.ok {
				t.Errorf("cycleDue = %v, %v; want %v, %v", got, ok, tt.want, tt.ok)
			}
		})
	}
}

// The jitter is a function of the dyno ID alone, within [0, jitter), and
// spread over that range.
func TestCycleJitter(t *testing.T) {
	const jitter = 216 * time.Minute
	if j := cycleJitter("d1", 0); j != 0 {
		t.Errorf("no jitter: %v", j)
	}
	lo, hi := jitter, time.Duration(0)
	var quarters [4]int
	for i := range 10_000 {
		id := fmt.Sprintf("%020d", i*7919)
		j := cycleJitter(id, jitter)
		if j != cycleJitter(id, jitter) {
			t.Fatalf("%s: jitter differs between calls", id)
		}
		if j < 0 || j >= jitter {
			t.Fatalf("%s: jitter %v outside [0, %v)", id, j, jitter)
		}
		lo, hi = min(lo, j), max(hi, j)
		quarters[j*4/jitter]++
	}
	for q, n := range quarters {
		if n < 2000 {
			t.Errorf("quarter %d of the jitter range got %d of 10,000 dynos: %v (lowest %v, highest %v)", q, n, quarters, lo, hi)
		}
	}
	// Fixed across versions too: during a rolling upgrade, or a failover
	// to a server of another version, managers must agree on deadlines.
	if j, want := cycleJitter("3f2a9c1e", jitter), 5348001048543*time.Nanosecond; j != want {
		t.Errorf("jitter of 3f2a9c1e is %v, was %v (FNV-1a of the ID modulo the range)", j, want)
	}
}

// takeCycle marks at most one dyno per app: the most overdue of those up,
// current and not one-off, when no other of the app's dynos is being
// replaced.
func TestTakeCycle(t *testing.T) {
	day := 24 * time.Hour
	base := func() *fixture {
		return newFixture().scale("web", 2).
			assign("d1", "h1", "web.1", 3, 0, grid.DynoUp).
			assign("d2", "h2", "web.2", 3, 0, grid.DynoUp)
	}
	createdAt := func(id string, at time.Time) func(v *view) {
		return func(v *view) {
			a := v.assignments[id]
			a.CreatedAt = at
			v.removeAssignment(id)
			v.putAssignment(a)
		}
	}
	noJitter := Config{CycleJitter: -1}
	j1, j2 := cycleJitter("d1", 216*time.Minute), cycleJitter("d2", 216*time.Minute)
	first := "d1"
	if j2 < j1 {
		first = "d2"
	}
	tests := []struct {
		name   string
		f      *fixture
		cfg    Config
		now    time.Time
		marked map[string]replaceReason // before
		want   []string
	}{
		{name: "not yet due", f: base(), cfg: noJitter, now: t0.Add(day - time.Nanosecond)},
		{name: "due: one at a time", f: base(), cfg: noJitter, now: t0.Add(day), want: []string{"d1"}},
		{name: "the most overdue first", f: base().with(createdAt("d2", t0.Add(-time.Hour))), cfg: noJitter, now: t0.Add(day), want: []string{"d2"}},
		{name: "the default jitter delays it", f: base(), now: t0.Add(day + min(j1, j2) - time.Nanosecond)},
		{name: "after the default jitter, the earlier deadline first", f: base(), now: t0.Add(day + 216*time.Minute), want: []string{first}},
		{name: "disabled", f: base(), cfg: Config{CycleAfter: -1}, now: t0.Add(100 * day)},
		{name: "CycleAfter", f: base(), cfg: Config{CycleAfter: time.Hour, CycleJitter: -1}, now: t0.Add(time.Hour), want: []string{"d1"}},
		{name: "none while another dyno of the app is being cycled", f: base(), cfg: noJitter, now: t0.Add(day), marked: map[string]replaceReason{"d2": replaceCycle}, want: []string{"d2"}},
		{name: "none while another dyno of the app is replaced as hung", f: base(), cfg: noJitter, now: t0.Add(day), marked: map[string]replaceReason{"d2": replaceHung}},
		{name: "a dyno replaced as hung is not cycled too", f: base(), cfg: noJitter, now: t0.Add(day), marked: map[string]replaceReason{"d1": replaceHung}},
		{name: "a mark of a dyno no longer assigned does not count", f: base(), cfg: noJitter, now: t0.Add(day), marked: map[string]replaceReason{"gone": replaceCycle}, want: []string{"d1", "gone"}},
		{
			name: "one-off dynos never",
			// Even when the Procfile has a "run" type and the one-off
			// runs its current release, as run.1 would.
			f: newFixture().scale("web", 0).assign("run1", "h1", "run.1", 3, 0, grid.DynoUp).with(func(v *view) {
				v.formations["a"].Types["run"] = grid.FormationType{Quantity: 1, Size: "standard-1x", Command: "bin/run"}
				a := v.assignments["run1"]
				a.OneOff = true
				v.removeAssignment(a.DynoID)
				v.putAssignment(a)
			}),
			cfg: noJitter, now: t0.Add(100 * day),
		},
		{name: "not while starting", f: base().dyno("d1", "h1", "web.1", grid.DynoStarting, t0).dyno("d2", "h2", "web.2", grid.DynoStarting, t0), cfg: noJitter, now: t0.Add(day)},
		{name: "not while crashed", f: base().dyno("d1", "h1", "web.1", grid.DynoCrashed, t0), cfg: noJitter, now: t0.Add(day), want: []string{"d2"}},
		{name: "not without a record", f: newFixture().scale("web", 1).assign("d1", "h1", "web.1", 3, 0, ""), cfg: noJitter, now: t0.Add(day)},
		{name: "not an old release's", f: newFixture().scale("web", 1).assign("d1", "h1", "web.1", 2, 0, grid.DynoUp), cfg: noJitter, now: t0.Add(day)},
		{name: "not an old epoch's", f: newFixture().scale("web", 1).assign("d1", "h1", "web.1", 3, 1, grid.DynoUp), cfg: noJitter, now: t0.Add(day)},
		{name: "not past the quantity", f: base().scale("web", 1).with(createdAt("d2", t0.Add(-time.Hour))), cfg: noJitter, now: t0.Add(day), want: []string{"d1"}},
		{name: "not on a draining host", f: base().drain("h1"), cfg: noJitter, now: t0.Add(day), want: []string{"d2"}},
		{name: "not on a lost host", f: base().host("h1", func(h *seenHost) { h.Seen = time.Time{} }), cfg: noJitter, now: t0.Add(day), want: []string{"d2"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, takeCycleAt(tt.f, tt.cfg, tt.now, tt.marked)); diff != "" {
				t.Errorf("marked for cycling (-want +got):\n%s", diff)
			}
		})
	}
}

// takeCycleAt runs takeCycle for app a at now, with the fixture's hosts
// heard from at now (but those never heard from, Seen zero), and returns
// the dynos then marked for cycling.
func takeCycleAt(f *fixture, cfg Config, now time.Time, marked map[string]replaceReason) []string {
	for id, h := range f.v.hosts {
		if !h.Seen.IsZero() {
			h.Seen = now
			f.v.hosts[id] = h
		}
	}
	r := newRunState(New(cfg))
	r.view = f.v
	maps.Copy(r.replacing.dynos, marked)
	p := newPolicy(f.v, now, testTiming, nil)
	p.Replacing = r.replacing.dynos
	r.takeCycle("a", p)
	var got []string
	for id, why := range r.replacing.dynos {
		if why == replaceCycle {
			got = append(got, id)
		}
	}
	slices.Sort(got)
	return got
}

// A cycled dyno's successor gets its own deadline: once the old dyno is
// gone, the app's next cycle is of another dyno, or none.
func TestTakeCycleSuccessor(t *testing.T) {
	day := 24 * time.Hour
	now := t0.Add(day)
	f := newFixture().scale("web", 1).assign("d1", "h1", "web.1", 3, 0, grid.DynoUp)
	if got := takeCycleAt(f, Config{CycleJitter: -1}, now, nil); !slices.Equal(got, []string{"d1"}) {
		t.Fatalf("marked %v, want d1", got)
	}
	// The decision places the successor at now; it comes up, d1 goes.
	d := decide(f.v, now, func(p *policy) { p.Replacing = map[string]replaceReason{"d1": replaceCycle} })
	if len(d.Actions) != 1 || d.Actions[0].Op != opPut || !d.Actions[0].Assignment.CreatedAt.Equal(now) {
		t.Fatalf("actions %v", d.Actions)
	}
	f.v.do(d.Actions[0])
	f.dyno("new1", d.Actions[0].Assignment.Host, "web.1", grid.DynoUp, now)
	f.v.removeAssignment("d1")
	for _, at := range []time.Time{now, now.Add(day - time.Nanosecond)} {
		if got := takeCycleAt(f, Config{CycleJitter: -1}, at, nil); got != nil {
			t.Errorf("at %v: marked %v, want none", at, got)
		}
	}
	if got := takeCycleAt(f, Config{CycleJitter: -1}, now.Add(day), nil); !slices.Equal(got, []string{"new1"}) {
		t.Errorf("a day later: marked %v, want new1", got)
	}
}
