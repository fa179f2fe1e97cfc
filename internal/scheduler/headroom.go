package scheduler

import (
	"sort"
	"time"

	"github.com/dynogrid/grid/internal/grid"
)

// Capacity is one host as Headroom sees it.
type Capacity struct {
	ID         string
	MemoryMB   int
	ReservedMB int
	// State is up, lost or draining; only up hosts offer capacity.
	State grid.HostState
	// Dynos counts the dynos assigned to the host or still stopping on it.
	Dynos int
	// EmptyFor is how long the host has had no dynos; zero while it has
	// some. The caller measures it: the scheduler has no clock.
	EmptyFor time.Duration
	// Releasable says a provider made the host and can take it back. Only
	// such hosts are ever proposed for release.
	Releasable bool
}

// HeadroomPolicy says how much spare capacity to keep.
type HeadroomPolicy struct {
	// HeadroomMB is the free memory to keep on up hosts. Zero means the
	// memory of the largest up host: the grid can absorb losing any one.
	HeadroomMB int
	// EmptyGrace is how long a host must sit empty before it may be
	// released.
	EmptyGrace time.Duration
	// MinHosts is the fewest up hosts to keep. Zero means 1.
	MinHosts int
	// UnplacedMB is the memory of dynos that found no host. Any makes
	// Headroom ask for a host, whatever the free total says (free memory
	// may be scattered in pieces too small for them).
	UnplacedMB int
}

// HeadroomPlan is Headroom's answer.
type HeadroomPlan struct {
	FreeMB int // free memory on up hosts
	WantMB int // free memory wanted
	// Provision says one more host is needed: free memory is below
	// WantMB, dynos are waiting for room, or there are fewer than
	// MinHosts up hosts.
	Provision bool
	// Release lists empty hosts to drain and release, in order. Never
	// set together with Provision.
	Release []string
}

// Headroom compares free capacity with the headroom wanted and proposes
// one more host, or empty hosts to release: releasable up hosts with no
// dynos for at least EmptyGrace, longest empty first, as long as at least
// MinHosts up hosts stay and free memory stays at or above the headroom
// (recomputed without the released hosts).
func Headroom(hosts []Capacity, p HeadroomPolicy) HeadroomPlan {
	minHosts := max(p.MinHosts, 1)
	var up []Capacity
	var plan HeadroomPlan
	for _, h := range hosts {
		if h.State == grid.HostUp {
			up = append(up, h)
			plan.FreeMB += max(h.MemoryMB-h.ReservedMB, 0)
		}
	}
	plan.WantMB = want(up, p, nil)
	if plan.FreeMB < plan.WantMB || p.UnplacedMB > 0 || len(up) < minHosts {
		plan.Provision = true
		return plan
	}
	plan.Release = release(up, p, plan.FreeMB, minHosts)
	return plan
}

// want is the headroom wanted with the hosts in up, less those gone.
func want(up []Capacity, p HeadroomPolicy, gone map[string]bool) int {
	if p.HeadroomMB > 0 {
		return p.HeadroomMB
	}
	largest := 0
	for _, h := range up {
		if gone[h.ID] {
			continue
		}
		largest = max(largest, h.MemoryMB)
	}
	return largest
}

func release(up []Capacity, p HeadroomPolicy, free, minHosts int) []string {
	var cands []Capacity
	for _, h := range up {
		if h.Releasable && h.Dynos == 0 && h.EmptyFor >= p.EmptyGrace {
			cands = append(cands, h)
		}
	}
	sort.Slice(cands, func(i, j int) bool {
		if cands[i].EmptyFor != cands[j].EmptyFor {
			return cands[i].EmptyFor > cands[j].EmptyFor
		}
		return cands[i].ID < cands[j].ID
	})
	gone := map[string]bool{}
	var out []string
	for _, h := range cands {
		if len(up)-len(gone) <= minHosts {
			break
		}
		left := free - max(h.MemoryMB-h.ReservedMB, 0)
		gone[h.ID] = true
		if left < want(up, p, gone) {
			delete(gone, h.ID)
			continue
		}
		free = left
		out = append(out, h.ID)
	}
	return out
}
