package scheduler

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"pgregory.net/rapid"

	"github.com/dynogrid/grid/internal/grid"
)

func TestHeadroom(t *testing.T) {
	up := func(id string, mem, reserved int) Capacity {
		c := Capacity{ID: id, MemoryMB: mem, ReservedMB: reserved, State: grid.HostUp, Releasable: true}
		if reserved > 0 {
			c.Dynos = 1
		}
		return c
	}
	empty := func(id string, mem int, for_ time.Duration) Capacity {
		c := up(id, mem, 0)
		c.EmptyFor = for_
		return c
	}
	with := func(c Capacity, fn func(*Capacity)) Capacity { fn(&c); return c }
	grace := 5 * time.Minute
	tests := []struct {
		name  string
		hosts []Capacity
		p     HeadroomPolicy
		want  HeadroomPlan
	}{
		{
			name: "no hosts: provision the first",
			want: HeadroomPlan{Provision: true},
		},
		{
			name:  "one full host is never enough by default",
			hosts: []Capacity{up("h1", 8192, 1024)},
			want:  HeadroomPlan{FreeMB: 7168, WantMB: 8192, Provision: true},
		},
		{
			name:  "free memory absorbs the largest host",
			hosts: []Capacity{up("h1", 8192, 4096), up("h2", 8192, 4096), up("h3", 8192, 4096)},
			want:  HeadroomPlan{FreeMB: 12288, WantMB: 8192},
		},
		{
			name:  "lost and draining hosts offer nothing",
			hosts: []Capacity{up("h1", 8192, 4096), with(up("h2", 8192, 0), func(c *Capacity) { c.State = grid.HostLost }), with(up("h3", 16384, 0), func(c *Capacity) { c.State = grid.HostDraining })},
			want:  HeadroomPlan{FreeMB: 4096, WantMB: 8192, Provision: true},
		},
		{
			name:  "absolute headroom",
			hosts: []Capacity{up("h1", 8192, 4096)},
			p:     HeadroomPolicy{HeadroomMB: 2048},
			want:  HeadroomPlan{FreeMB: 4096, WantMB: 2048},
		},
		{
			name:  "unplaced dynos ask for a host whatever the total",
			hosts: []Capacity{up("h1", 8192, 0), up("h2", 8192, 0)},
			p:     HeadroomPolicy{UnplacedMB: 512},
			want:  HeadroomPlan{FreeMB: 16384, WantMB: 8192, Provision: true},
		},
		{
			name:  "fewer than MinHosts",
			hosts: []Capacity{up("h1", 8192, 0)},
			p:     HeadroomPolicy{HeadroomMB: 1, MinHosts: 2},
			want:  HeadroomPlan{FreeMB: 8192, WantMB: 1, Provision: true},
		},
		{
			name:  "empty past the grace: released",
			hosts: []Capacity{up("h1", 8192, 1024), empty("h2", 8192, grace), empty("h3", 8192, 2*grace)},
			p:     HeadroomPolicy{EmptyGrace: grace},
			want:  HeadroomPlan{FreeMB: 23552, WantMB: 8192, Release: []string{"h3"}},
		},
		{
			name:  "empty within the grace: kept",
			hosts: []Capacity{up("h1", 8192, 1024), empty("h2", 8192, grace-1), empty("h3", 8192, grace-1)},
			p:     HeadroomPolicy{EmptyGrace: grace},
			want:  HeadroomPlan{FreeMB: 23552, WantMB: 8192},
		},
		{
			name:  "releases as many as the headroom allows",
			hosts: []Capacity{up("h1", 8192, 0), empty("h2", 8192, grace), empty("h3", 8192, grace), empty("h4", 8192, grace)},
			p:     HeadroomPolicy{EmptyGrace: grace},
			want:  HeadroomPlan{FreeMB: 32768, WantMB: 8192, Release: []string{"h2", "h3", "h4"}},
		},
		{
			name:  "keeps MinHosts",
			hosts: []Capacity{empty("h1", 8192, grace), empty("h2", 8192, grace)},
			p:     HeadroomPolicy{EmptyGrace: grace, HeadroomMB: 1},
			want:  HeadroomPlan{FreeMB: 16384, WantMB: 1, Release: []string{"h1"}},
		},
		{
			name:  "releasing the largest lowers the headroom wanted",
			hosts: []Capacity{up("h1", 4096, 0), up("h2", 4096, 0), empty("big", 65536, grace)},
			p:     HeadroomPolicy{EmptyGrace: grace},
			want:  HeadroomPlan{FreeMB: 73728, WantMB: 65536, Release: []string{"big"}},
		},
		{
			name:  "skips a host whose release would cut into the headroom, takes a smaller one",
			hosts: []Capacity{up("h1", 8192, 6144), empty("a-big", 16384, 2*grace), empty("b-small", 2048, grace)},
			p:     HeadroomPolicy{EmptyGrace: grace, HeadroomMB: 16384},
			want:  HeadroomPlan{FreeMB: 20480, WantMB: 16384, Release: []string{"b-small"}},
		},
		{
			name:  "hosts joined by hand are never released",
			hosts: []Capacity{up("h1", 8192, 0), with(empty("h2", 8192, grace), func(c *Capacity) { c.Releasable = false })},
			p:     HeadroomPolicy{EmptyGrace: grace},
			want:  HeadroomPlan{FreeMB: 16384, WantMB: 8192},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, Headroom(tt.hosts, tt.p)); diff != "" {
				t.Errorf("plan (-want +got):\n%s", diff)
			}
		})
	}
}

// Whatever Headroom releases, what stays up keeps at least the headroom it
// wants and at least MinHosts hosts; it never releases a busy host.
func TestPropertyHeadroomReleaseKeepsHeadroom(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		n := rapid.IntRange(0, 8).Draw(t, "hosts")
		hosts := make([]Capacity, n)
		byID := map[string]Capacity{}
		for i := range hosts {
			mem := rapid.SampledFrom([]int{2048, 8192, 65536}).Draw(t, "mem")
			h := Capacity{
				ID: string(rune('a' + i)), MemoryMB: mem,
				State:      rapid.SampledFrom([]grid.HostState{grid.HostUp, grid.HostUp, grid.HostLost, grid.HostDraining}).Draw(t, "state"),
				Releasable: rapid.Bool().Draw(t, "releasable"),
				EmptyFor:   time.Duration(rapid.IntRange(0, 10).Draw(t, "empty")) * time.Minute,
			}
			if h.EmptyFor == 0 {
				h.Dynos = rapid.IntRange(0, 3).Draw(t, "dynos")
				h.ReservedMB = min(mem, h.Dynos*512)
			}
			hosts[i], byID[h.ID] = h, h
		}
		p := HeadroomPolicy{
			HeadroomMB: rapid.SampledFrom([]int{0, 1024, 16384}).Draw(t, "headroom"),
			EmptyGrace: 5 * time.Minute,
			MinHosts:   rapid.IntRange(0, 3).Draw(t, "min hosts"),
		}
		plan := Headroom(hosts, p)
		gone := map[string]bool{}
		for _, id := range plan.Release {
			h := byID[id]
			if h.Dynos > 0 || !h.Releasable || h.State != grid.HostUp || h.EmptyFor < p.EmptyGrace {
				t.Fatalf("released %+v", h)
			}
			gone[id] = true
		}
		var rest []Capacity
		for _, h := range hosts {
			if !gone[h.ID] {
				rest = append(rest, h)
			}
		}
		after := Headroom(rest, HeadroomPolicy{HeadroomMB: p.HeadroomMB, MinHosts: p.MinHosts})
		if len(plan.Release) > 0 && (after.Provision || after.FreeMB < after.WantMB) {
			t.Fatalf("after releasing %v: %+v", plan.Release, after)
		}
	})
}
