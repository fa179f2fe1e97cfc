package scheduler

import (
	"errors"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
	"pgregory.net/rapid"

	"github.com/dynogrid/grid/internal/grid"
)

func TestCPUsFormat(t *testing.T) {
	tests := []struct {
		cores []int
		want  string
	}{
		{nil, ""},
		{[]int{3}, "3"},
		{[]int{0, 1}, "0-1"},
		{[]int{0, 1, 2, 5, 7, 8}, "0-2,5,7-8"},
	}
	for _, tt := range tests {
		if got := FormatCPUs(tt.cores); got != tt.want {
			t.Errorf("FormatCPUs(%v) = %q, want %q", tt.cores, got, tt.want)
		}
		back, err := ParseCPUs(tt.want)
		if err != nil || !cmp.Equal(back, tt.cores) {
			t.Errorf("ParseCPUs(%q) = %v, %v; want %v", tt.want, back, err, tt.cores)
		}
	}
}

func TestCPUsParse(t *testing.T) {
	if got, err := ParseCPUs("5,0-1,1"); err != nil || !cmp.Equal(got, []int{0, 1, 5}) {
		t.Errorf("unsorted, overlapping: %v, %v", got, err)
	}
	for _, bad := range []string{"x", "1-", "-1", "3-1", "1,,2", "0-99999999"} {
		if _, err := ParseCPUs(bad); !errors.Is(err, grid.ErrInvalid) {
			t.Errorf("ParseCPUs(%q): err %v, want ErrInvalid", bad, err)
		}
	}
}

func FuzzParseCPUs(f *testing.F) {
	for _, s := range []string{"", "0", "0-3,7", "1,1", "a-b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		cores, err := ParseCPUs(s)
		if err != nil {
			return
		}
		again, err := ParseCPUs(FormatCPUs(cores))
		if err != nil || !cmp.Equal(again, cores) {
			t.Fatalf("%q → %v → %q → %v, %v", s, cores, FormatCPUs(cores), again, err)
		}
	})
}

func TestPin(t *testing.T) {
	a := func(typ string, cores int) Request {
		return Request{Name: typ, App: "a", Type: typ, MemoryMB: 512, Cores: cores}
	}
	eco := func(typ string) Request {
		return Request{Name: typ, App: "e", Type: typ, MemoryMB: 512, Idle: true}
	}
	tests := []struct {
		name string
		host HostState
		want []Request
		cpus []string
	}{
		{
			name: "unknown cores: not pinned",
			host: HostState{ID: "h", MemoryMB: 4096},
			want: []Request{a("web", 1)},
			cpus: []string{""},
		},
		{
			name: "one core each, round the cores",
			host: HostState{ID: "h", MemoryMB: 4096, Cores: 3},
			want: []Request{a("web", 1), a("web", 1), a("worker", 1), a("web", 1)},
			cpus: []string{"0", "1", "2", "2"},
		},
		{
			name: "least loaded core first",
			host: HostState{ID: "h", MemoryMB: 4096, Cores: 3, Load: []int{2, 0, 1}},
			want: []Request{a("web", 1), a("web", 1)},
			cpus: []string{"1", "2"},
		},
		{
			name: "among equally loaded cores, the one without a sibling",
			host: HostState{
				ID: "h", MemoryMB: 4096, Cores: 3, Load: []int{1, 1, 1},
				Pinned: map[Group][]int{{"a", "web"}: {1, 0, 1}},
			},
			want: []Request{a("web", 1)},
			cpus: []string{"1"},
		},
		{
			name: "a free core beats a core without a sibling",
			host: HostState{
				ID: "h", MemoryMB: 4096, Cores: 2, Load: []int{1, 0},
				Pinned: map[Group][]int{{"a", "web"}: {0, 0}},
			},
			want: []Request{a("web", 1)},
			cpus: []string{"1"},
		},
		{
			name: "siblings share only when every core has one",
			host: HostState{ID: "h", MemoryMB: 8192, Cores: 2},
			want: []Request{a("web", 1), a("web", 1), a("worker", 1), a("worker", 1), a("web", 1)},
			cpus: []string{"0", "1", "0", "1", "0"},
		},
		{
			name: "two-core dynos take the two least loaded",
			host: HostState{ID: "h", MemoryMB: 8192, Cores: 4, Load: []int{1, 0, 2, 0}},
			want: []Request{a("web", 2), a("web", 2)},
			cpus: []string{"1,3", "0-1"},
		},
		{
			name: "more cores than the host has: all of them",
			host: HostState{ID: "h", MemoryMB: 8192, Cores: 2},
			want: []Request{a("web", 8)},
			cpus: []string{"0-1"},
		},
		{
			name: "an eco dyno joins eco dynos, not a paying one, on equally loaded cores",
			host: HostState{ID: "h", MemoryMB: 4096, Cores: 2, Load: []int{1, 1}, IdleLoad: []int{0, 1}},
			want: []Request{eco("web")},
			cpus: []string{"1"},
		},
		{
			name: "a paying dyno avoids the eco dynos' core",
			host: HostState{ID: "h", MemoryMB: 4096, Cores: 3, Load: []int{1, 1, 1}, IdleLoad: []int{1, 0, 1}},
			want: []Request{a("web", 1)},
			cpus: []string{"1"},
		},
		{
			name: "dispersal comes before the classes",
			host: HostState{ID: "h", MemoryMB: 4096, Cores: 2, Load: []int{1, 2}, IdleLoad: []int{0, 2}},
			want: []Request{eco("web")},
			cpus: []string{"0"},
		},
		{
			name: "the classes come before siblings",
			host: HostState{
				ID: "h", MemoryMB: 4096, Cores: 2, Load: []int{1, 1}, IdleLoad: []int{0, 1},
				Pinned: map[Group][]int{{"a", "web"}: {0, 1}},
			},
			want: []Request{eco("web")},
			cpus: []string{"1"},
		},
		{
			name: "eco and paying dynos placed together take cores of their own",
			host: HostState{ID: "h", MemoryMB: 8192, Cores: 2},
			want: []Request{a("web", 1), eco("worker"), a("web", 1), eco("worker")},
			cpus: []string{"0", "1", "0", "1"},
		},
		{
			name: "loads beyond the core count are ignored",
			host: HostState{ID: "h", MemoryMB: 8192, Cores: 2, Load: []int{0, 1, 5}, Pinned: map[Group][]int{{"a", "web"}: {0, 0, 9}}},
			want: []Request{a("web", 1)},
			cpus: []string{"0"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			plan := Place([]HostState{tt.host}, tt.want)
			var got []string
			for _, p := range plan.Placements {
				got = append(got, p.CPUs)
			}
			if diff := cmp.Diff(tt.cpus, got); diff != "" {
				t.Errorf("cpus (-want +got):\n%s", diff)
			}
		})
	}
}

func TestPlaceDoesNotModifyHosts(t *testing.T) {
	h := HostState{ID: "h", MemoryMB: 4096, Cores: 2, Load: []int{1, 0}, Running: map[Group]int{{"a", "web"}: 1}, Pinned: map[Group][]int{{"a", "web"}: {1, 0}}}
	before := fmt.Sprintf("%+v", h)
	Place([]HostState{h}, []Request{{Name: "web.2", App: "a", Type: "web", MemoryMB: 512}})
	if after := fmt.Sprintf("%+v", h); after != before {
		t.Errorf("host changed:\n%s\n%s", before, after)
	}
}

// On a host whose dynos are all of one size and pinned by Place, no core
// carries more than one dyno more than another, and every cpuset names
// the wanted number of existing cores.
func TestPropertyCoresDispersed(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		groups := genGroups(t)
		n := rapid.IntRange(1, 4).Draw(t, "hosts")
		hosts := make([]HostState, n)
		for i := range hosts {
			hosts[i] = HostState{ID: fmt.Sprintf("h%d", i), MemoryMB: rapid.IntRange(0, 16384).Draw(t, "mem"), Cores: rapid.IntRange(1, 8).Draw(t, "cores")}
		}
		want := rapid.IntRange(1, 4).Draw(t, "want cores")
		reqs := genRequests(t, groups, func() int { return 512 })
		for i := range reqs {
			reqs[i].Cores = want
		}
		plan := Place(hosts, reqs)
		load := map[string][]int{}
		for _, h := range hosts {
			load[h.ID] = make([]int, h.Cores)
		}
		for _, pl := range plan.Placements {
			if pl.Host == "" {
				continue
			}
			cores, err := ParseCPUs(pl.CPUs)
			if err != nil {
				t.Fatal(err)
			}
			l := load[pl.Host]
			if len(cores) != min(want, len(l)) {
				t.Fatalf("%s on %s pinned to %q, want %d of %d cores", pl.Request.Name, pl.Host, pl.CPUs, want, len(l))
			}
			for _, c := range cores {
				if c >= len(l) {
					t.Fatalf("%s pinned to core %d of a %d-core host", pl.Request.Name, c, len(l))
				}
				l[c]++
			}
		}
		for id, l := range load {
			if len(l) > 0 && maxOf(l)-minOf(l) > 1 {
				t.Fatalf("host %s: dynos per core %v", id, l)
			}
		}
	})
}

func maxOf(xs []int) int {
	m := xs[0]
	for _, x := range xs {
		m = max(m, x)
	}
	return m
}

func minOf(xs []int) int {
	m := xs[0]
	for _, x := range xs {
		m = min(m, x)
	}
	return m
}
