package scheduler

import (
	"fmt"
	"sort"
	"testing"

	"github.com/google/go-cmp/cmp"
	"pgregory.net/rapid"
)

func TestPlace(t *testing.T) {
	web := func(name string) Request { return Request{Name: name, App: "a", Type: "web", MemoryMB: 512} }
	tests := []struct {
		name   string
		hosts  []HostState
		want   []Request
		placed []string // expected host per request; "" = unplaced
	}{
		{
			name:   "no hosts",
			want:   []Request{web("web.1")},
			placed: []string{""},
		},
		{
			name:   "spread before free memory",
			hosts:  []HostState{{ID: "h1", MemoryMB: 8192}, {ID: "h2", MemoryMB: 2048}},
			want:   []Request{web("web.1"), web("web.2"), web("web.3")},
			placed: []string{"h1", "h2", "h1"},
		},
		{
			name: "existing dynos of the group count",
			hosts: []HostState{
				{ID: "h1", MemoryMB: 8192, Running: map[Group]int{{"a", "web"}: 1}},
				{ID: "h2", MemoryMB: 2048},
			},
			want:   []Request{web("web.2")},
			placed: []string{"h2"},
		},
		{
			name: "other types of the same app are avoided next",
			hosts: []HostState{
				{ID: "h1", MemoryMB: 8192, Running: map[Group]int{{"a", "worker"}: 1}},
				{ID: "h2", MemoryMB: 2048, Running: map[Group]int{{"b", "web"}: 3}},
			},
			want:   []Request{web("web.1")},
			placed: []string{"h2"},
		},
		{
			name:   "ties go to the smallest host id",
			hosts:  []HostState{{ID: "h2", MemoryMB: 1024}, {ID: "h1", MemoryMB: 1024}},
			want:   []Request{web("web.1")},
			placed: []string{"h1"},
		},
		{
			name:   "never over-commit",
			hosts:  []HostState{{ID: "h1", MemoryMB: 1024, ReservedMB: 600}},
			want:   []Request{web("web.1")},
			placed: []string{""},
		},
		{
			name:   "share a host when hosts run out",
			hosts:  []HostState{{ID: "h1", MemoryMB: 1024}},
			want:   []Request{web("web.1"), web("web.2"), web("web.3")},
			placed: []string{"h1", "h1", ""},
		},
		{
			name:   "a negative free host never gets a dyno",
			hosts:  []HostState{{ID: "h1", MemoryMB: 1024, ReservedMB: 2048}},
			want:   []Request{{Name: "web.1", App: "a", Type: "web"}},
			placed: []string{""},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			plan := Place(tt.hosts, tt.want)
			var got []string
			for i, p := range plan.Placements {
				got = append(got, p.Host)
				if p.Request != tt.want[i] {
					t.Errorf("placement %d is for %+v, want %+v", i, p.Request, tt.want[i])
				}
				if p.Host == "" && p.Reason == "" {
					t.Errorf("placement %d unplaced without a reason", i)
				}
			}
			if diff := cmp.Diff(tt.placed, got); diff != "" {
				t.Errorf("hosts (-want +got):\n%s", diff)
			}
		})
	}
}

var sizes = []int{256, 512, 1024, 2560}

func genHosts(t *rapid.T, groups []Group) []HostState {
	n := rapid.IntRange(0, 6).Draw(t, "hosts")
	hs := make([]HostState, n)
	for i := range hs {
		mem := rapid.IntRange(0, 8192).Draw(t, "mem")
		hs[i] = HostState{
			ID:         fmt.Sprintf("h%d", i),
			MemoryMB:   mem,
			ReservedMB: rapid.IntRange(0, mem).Draw(t, "reserved"),
			Running:    map[Group]int{},
		}
		for _, g := range groups {
			hs[i].Running[g] = rapid.IntRange(0, 2).Draw(t, "running")
		}
	}
	return hs
}

func genGroups(t *rapid.T) []Group {
	var gs []Group
	for _, app := range []string{"a", "b"}[:rapid.IntRange(1, 2).Draw(t, "apps")] {
		for _, typ := range []string{"web", "worker"}[:rapid.IntRange(1, 2).Draw(t, "types")] {
			gs = append(gs, Group{app, typ})
		}
	}
	return gs
}

func genRequests(t *rapid.T, groups []Group, size func() int) []Request {
	n := rapid.IntRange(0, 20).Draw(t, "requests")
	rs := make([]Request, n)
	for i := range rs {
		g := rapid.SampledFrom(groups).Draw(t, "group")
		rs[i] = Request{Name: fmt.Sprintf("%s.%d", g.Type, i+1), App: g.App, Type: g.Type, MemoryMB: size()}
	}
	return rs
}

// placedMB sums the memory the plan puts on each host.
func placedMB(p Plan) map[string]int {
	m := map[string]int{}
	for _, pl := range p.Placements {
		if pl.Host != "" {
			m[pl.Host] += pl.Request.MemoryMB
		}
	}
	return m
}

func TestPropertyNeverOverCommits(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		groups := genGroups(t)
		hosts := genHosts(t, groups)
		want := genRequests(t, groups, func() int { return rapid.SampledFrom(sizes).Draw(t, "size") })
		plan := Place(hosts, want)
		if len(plan.Placements) != len(want) {
			t.Fatalf("%d placements for %d requests", len(plan.Placements), len(want))
		}
		added := placedMB(plan)
		for _, h := range hosts {
			if h.ReservedMB+added[h.ID] > h.MemoryMB {
				t.Fatalf("host %s: %d reserved + %d placed > %d", h.ID, h.ReservedMB, added[h.ID], h.MemoryMB)
			}
		}
		// A dyno is left out only if no host has room for it even now.
		for _, pl := range plan.Unplaced() {
			for _, h := range hosts {
				if free := h.MemoryMB - h.ReservedMB - added[h.ID]; free >= pl.Request.MemoryMB {
					t.Fatalf("%s unplaced (%s) but host %s has %d MB free", pl.Request.Name, pl.Reason, h.ID, free)
				}
			}
		}
	})
}

func TestPropertyAllPlacedWhenCapacityAllows(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		groups := genGroups(t)
		hosts := genHosts(t, groups)
		size := rapid.SampledFrom(sizes).Draw(t, "size")
		want := genRequests(t, groups, func() int { return size })
		slots := 0
		for _, h := range hosts {
			slots += (h.MemoryMB - h.ReservedMB) / size
		}
		plan := Place(hosts, want)
		if n := len(plan.Unplaced()); n > 0 && len(want) <= slots {
			t.Fatalf("%d of %d dynos unplaced with %d slots of %d MB", n, len(want), slots, size)
		}
		if n := len(plan.Unplaced()); len(want) > slots && n != len(want)-slots {
			t.Fatalf("%d unplaced, want %d", n, len(want)-slots)
		}
	})
}

// With room everywhere, every dyno goes to a host with the fewest of its
// group: afterwards no host that received one has more than one above the
// group's minimum.
func TestPropertySpreadMaximal(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		groups := genGroups(t)
		hosts := genHosts(t, groups)
		for i := range hosts {
			hosts[i].MemoryMB, hosts[i].ReservedMB = 1<<20, 0
		}
		want := genRequests(t, groups, func() int { return rapid.SampledFrom(sizes).Draw(t, "size") })
		plan := Place(hosts, want)
		if len(plan.Unplaced()) > 0 && len(hosts) > 0 {
			t.Fatalf("unplaced with ample room: %+v", plan.Unplaced())
		}
		count := map[string]map[Group]int{}
		got := map[string]map[Group]bool{}
		for _, h := range hosts {
			count[h.ID], got[h.ID] = map[Group]int{}, map[Group]bool{}
			for g, n := range h.Running {
				count[h.ID][g] = n
			}
		}
		for _, pl := range plan.Placements {
			if pl.Host == "" {
				continue
			}
			g := Group{pl.Request.App, pl.Request.Type}
			count[pl.Host][g]++
			got[pl.Host][g] = true
		}
		for _, g := range groups {
			least := -1
			for _, h := range hosts {
				if n := count[h.ID][g]; least < 0 || n < least {
					least = n
				}
			}
			for _, h := range hosts {
				if got[h.ID][g] && count[h.ID][g] > least+1 {
					t.Fatalf("group %v: host %s has %d after placement, least is %d", g, h.ID, count[h.ID][g], least)
				}
			}
		}
	})
}

func TestPropertyDeterministic(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		groups := genGroups(t)
		hosts := genHosts(t, groups)
		want := genRequests(t, groups, func() int { return rapid.SampledFrom(sizes).Draw(t, "size") })
		shuffled := rapid.Permutation(hosts).Draw(t, "order")
		if diff := cmp.Diff(Place(hosts, want), Place(shuffled, want)); diff != "" {
			t.Fatalf("host order changed the plan:\n%s", diff)
		}
	})
}

// Place's fast scan must choose exactly what the rule in its doc comment
// says; reference is that rule written plainly (the first implementation).
func TestPropertyMatchesReference(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		groups := genGroups(t)
		hosts := genHosts(t, groups)
		want := genRequests(t, groups, func() int { return rapid.SampledFrom(sizes).Draw(t, "size") })
		got := Place(hosts, want)
		ref := reference(hosts, want)
		for i := range want {
			if got.Placements[i].Host != ref[i] {
				t.Fatalf("request %d (%+v): Place chose %q, the rule %q", i, want[i], got.Placements[i].Host, ref[i])
			}
		}
	})
}

func reference(hosts []HostState, want []Request) []string {
	type host struct {
		id    string
		free  int
		group map[Group]int
		app   map[string]int
	}
	hs := make([]*host, len(hosts))
	for i, h := range hosts {
		hs[i] = &host{id: h.ID, free: h.MemoryMB - h.ReservedMB, group: map[Group]int{}, app: map[string]int{}}
		for g, n := range h.Running {
			hs[i].group[g] += n
			hs[i].app[g.App] += n
		}
	}
	sort.Slice(hs, func(i, j int) bool { return hs[i].id < hs[j].id })
	out := make([]string, len(want))
	for i, r := range want {
		g := Group{r.App, r.Type}
		var best *host
		for _, h := range hs {
			if h.free < r.MemoryMB {
				continue
			}
			switch {
			case best == nil,
				h.group[g] < best.group[g],
				h.group[g] == best.group[g] && h.app[g.App] < best.app[g.App],
				h.group[g] == best.group[g] && h.app[g.App] == best.app[g.App] && h.free > best.free:
				best = h
			}
		}
		if best != nil {
			best.free -= r.MemoryMB
			best.group[g]++
			best.app[g.App]++
			out[i] = best.id
		}
	}
	return out
}
