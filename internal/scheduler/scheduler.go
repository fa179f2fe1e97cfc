// Package scheduler decides where dynos run. It is a pure function from a
// snapshot of hosts and a list of wanted dynos to a placement plan.
//
// It must never do I/O, read the clock, draw random numbers or start
// goroutines: the same input always yields the same plan, so placement can
// be tested exhaustively and replayed from a log.
package scheduler

import (
	"fmt"
	"sort"
)

// Group identifies dynos that should be spread over hosts: those of one
// process type of one app.
type Group struct {
	App  string
	Type string
}

// HostState is one live host as the scheduler sees it.
type HostState struct {
	ID string
	// MemoryMB is what the host offers to dynos in total.
	MemoryMB int
	// ReservedMB is memory already promised to dynos on the host (running
	// or assigned). The scheduler never lets it exceed MemoryMB.
	ReservedMB int
	// Cores is the number of CPU cores. Not used yet (cpusets come later).
	Cores int
	// Running counts the dynos of each group already on the host. Nil
	// means none.
	Running map[Group]int
}

// Request is one dyno to place.
type Request struct {
	// Name is the caller's name for the dyno ("web.1"); the scheduler only
	// copies it into the plan.
	Name     string
	App      string
	Type     string
	MemoryMB int
}

// Placement is the decision for one request. Host is empty when the dyno
// could not be placed; Reason then says why.
type Placement struct {
	Request Request
	Host    string
	Reason  string
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
// unplaceable. Hosts and their maps are not modified.
func Place(hosts []HostState, want []Request) Plan {
	hs := make([]*host, len(hosts))
	for i, h := range hosts {
		hs[i] = newHost(h)
	}
	sort.Slice(hs, func(i, j int) bool { return hs[i].id < hs[j].id })
	plan := Plan{Placements: make([]Placement, 0, len(want))}
	for _, r := range want {
		plan.Placements = append(plan.Placements, placeOne(hs, r))
	}
	return plan
}

// host is the scheduler's working copy of a HostState.
type host struct {
	id    string
	free  int
	group map[Group]int
	app   map[string]int
}

func newHost(h HostState) *host {
	c := &host{id: h.ID, free: h.MemoryMB - h.ReservedMB, group: map[Group]int{}, app: map[string]int{}}
	for g, n := range h.Running {
		c.group[g] += n
		c.app[g.App] += n
	}
	return c
}

func placeOne(hs []*host, r Request) Placement {
	g := Group{App: r.App, Type: r.Type}
	var best *host
	for _, h := range hs {
		if h.free < r.MemoryMB {
			continue
		}
		if best == nil || better(h, best, g) {
			best = h
		}
	}
	if best == nil {
		return Placement{Request: r, Reason: noRoom(hs, r)}
	}
	best.free -= r.MemoryMB
	best.group[g]++
	best.app[g.App]++
	return Placement{Request: r, Host: best.id}
}

// better reports whether a is preferable to b for a dyno of group g. Hosts
// are visited in ID order, so a tie keeps the smaller ID.
func better(a, b *host, g Group) bool {
	if a.group[g] != b.group[g] {
		return a.group[g] < b.group[g]
	}
	if a.app[g.App] != b.app[g.App] {
		return a.app[g.App] < b.app[g.App]
	}
	return a.free > b.free
}

func noRoom(hs []*host, r Request) string {
	if len(hs) == 0 {
		return "no live hosts"
	}
	most := hs[0].free
	for _, h := range hs {
		most = max(most, h.free)
	}
	return fmt.Sprintf("needs %d MB of memory; the most any of %d hosts has free is %d MB", r.MemoryMB, len(hs), max(most, 0))
}
