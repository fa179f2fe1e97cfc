package manager

import "time"

// Some dynos are replaced for reasons the store does not show: a router
// found them hung (hung.go), or they are due for their daily cycle
// (cycle.go). The manager marks them here, and reconcile counts a marked
// dyno as stale (policy.Replacing): it places a successor under the same
// name and deletes the marked dyno once the successor serves, as for a
// deploy (reconcile.go, converge).
//
//	assigned ──► marked (hung, cycle) ──► successor placed ──► successor up
//	                                                            (and routed)
//	                                                                 │
//	            mark forgotten ◄── marked dyno's assignment deleted ◄┘

// replaceReason says why a dyno is being replaced.
type replaceReason string

const (
	replaceHung  replaceReason = "hung"  // a live router reported it hung
	replaceCycle replaceReason = "cycle" // due for its daily cycle
)

// replacements is what the manager has decided to replace. It outlives
// sessions: a decision stays until the dyno's assignment is gone, even if
// its cause goes away meanwhile (the hung dyno answered again), so that
// the successor is never taken for a duplicate and deleted in favour of
// the marked dyno. A new manager (restart, failover) starts without
// marks and decides again: a due dyno is still due (cycleDue depends on
// the assignment alone), so its cycle goes on; a hung dyno is marked
// again only once a router reports it again, and until then the two
// are duplicates of one name (converge keeps the older one if up).
type replacements struct {
	dynos    map[string]replaceReason // dyno ID → why it is being replaced
	hungLast map[string]time.Time     // app → when its last hung replacement was decided
}

func newReplacements() replacements {
	return replacements{dynos: map[string]replaceReason{}, hungLast: map[string]time.Time{}}
}

// mark decides to replace dyno id.
func (rs replacements) mark(id string, why replaceReason) {
	rs.dynos[id] = why
}

// prune forgets the decisions whose dynos are no longer assigned:
// replaced, or gone otherwise. Only on a synced view, where a missing
// assignment is really gone.
func (rs replacements) prune(v *view) {
	for id := range rs.dynos {
		if _, ok := v.assignments[id]; !ok {
			delete(rs.dynos, id)
		}
	}
}

// busy reports whether one of app's dynos is being replaced. Marks are
// few (pruned as they complete), so this costs less than the app's dynos.
func (rs replacements) busy(v *view, app string) bool {
	for id := range rs.dynos {
		if a, ok := v.assignments[id]; ok && a.App == app {
			return true
		}
	}
	return false
}
