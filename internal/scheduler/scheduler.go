// Package scheduler decides where dynos run. It is a pure function from a
// snapshot of hosts and a list of wanted dynos to a placement plan (which
// host, which CPU cores), plus a pure rule for how much spare capacity to
// keep (Headroom).
//
// It must never do I/O, read the clock, draw random numbers or start
// goroutines: the same input always yields the same plan, so placement can
// be tested exhaustively and replayed from a log.
package scheduler

// Group identifies dynos that should be spread over hosts and over a
// host's cores: those of one process type of one app.
type Group struct {
	App  string
	Type string
}

// HostState is one host the scheduler may place dynos on. Place never
// modifies it, nor the maps and slices it holds.
type HostState struct {
	ID string
	// MemoryMB is what the host offers to dynos in total.
	MemoryMB int
	// ReservedMB is memory already promised to dynos on the host (running
	// or assigned). The scheduler never lets it exceed MemoryMB.
	ReservedMB int
	// Cores is the number of CPU cores, numbered 0…Cores-1. Zero means
	// unknown: dynos placed on the host are not pinned (empty CPUs).
	Cores int
	// Running counts the dynos of each group already on the host. Only
	// the groups of the requested apps are read, so a caller may leave out
	// every other app. Nil means none.
	Running map[Group]int
	// Load counts the dynos pinned to each core: Load[i] for core i. A
	// dyno pinned to two cores counts on both; unpinned dynos count
	// nowhere. Missing entries are zero.
	Load []int
	// IdleLoad counts, of Load, the dynos of idle sizes (eco) on each
	// core. Missing entries are zero.
	IdleLoad []int
	// Pinned counts, for each group, its dynos pinned to each core
	// (Pinned[g][i]). Like Running, only requested groups are read.
	Pinned map[Group][]int
}

// Request is one dyno to place.
type Request struct {
	// Name is the caller's name for the dyno ("web.1"); the scheduler only
	// copies it into the plan.
	Name     string
	App      string
	Type     string
	MemoryMB int
	// Cores is how many cores to pin the dyno to. Zero means 1; more than
	// a host has means all of its cores.
	Cores int
	// Idle is true for a dyno of an idle size (grid.Size.Idle): pinning
	// keeps the two classes on cores of their own where it can.
	Idle bool
}

// Placement is the decision for one request. Host is empty when the dyno
// could not be placed; Reason then says why.
type Placement struct {
	Request Request
	Host    string
	// CPUs is the cpuset the dyno is pinned to on Host, in the kernel's
	// list format ("3", "0-1"); empty when the host's cores are unknown.
	CPUs   string
	Reason string
}

// Plan is the result of Place: one placement per request, in request order.
type Plan struct {
	Placements []Placement
}

// Unplaced returns the placements that found no host.
func (p Plan) Unplaced() []Placement {
	var out []Placement
	for _, pl := range p.Placements {
		if pl.Host == "" {
			out = append(out, pl)
		}
	}
	return out
}

// Place assigns each request to a host, in request order. Among the hosts
// with room for the dyno it picks, in this order of preference:
//
//  1. the fewest dynos of the same app and process type (spread first:
//     two share a host only when every host with room already has one);
//  2. the fewest dynos of the same app (Heroku avoids putting one app's
//     dynos together);
//  3. the most free memory;
//  4. the smallest host ID (so the plan is deterministic).
//
// It never over-commits memory: a dyno no host has room for is reported
// unplaceable. On the chosen host the dyno is pinned to its least loaded
// cores (see pin). Each request costs one pass over the hosts.
func Place(hosts []HostState, want []Request) Plan {
	s := newState(hosts, want)
	plan := Plan{Placements: make([]Placement, 0, len(want))}
	for _, r := range want {
		plan.Placements = append(plan.Placements, s.place(r))
	}
	return plan
}
