package manager

import (
	"sort"
	"time"

	"github.com/dynogrid/grid/internal/grid"
)

// A router that finds a dyno hung (it accepts connections but stopped
// answering; router/hang.go) lists it in its own record, routers/<id>.
// The manager replaces such a dyno start-before-stop: it places a
// successor under the same name, and deletes the hung one once the
// successor is up and routed, as for a deploy. So the app never has
// fewer serving dynos than before, and a frozen process is stopped by
// its host (SIGTERM, grace, SIGKILL) instead of holding connections
// forever.
//
// A report counts only when
//   - its router is live: heard from within HostTimeout by the manager's
//     clock, and since the manager's view was built (a dead router's last
//     word is stale; routers cannot write one another's records, so no
//     router speaks for another);
//   - the dyno is still assigned, a web dyno of the reported app, up;
//   - the app has had no hung-dyno replacement for HungEvery (1 min):
//     a bug that hangs every dyno under some request would otherwise
//     have the manager restart the whole app in a loop, and a restart a
//     minute is what an operator would do by hand while looking.

// takeHung decides on the hung-dyno reports of live routers and marks the
// apps concerned dirty. Run's goroutine only, on a synced view whose
// marks were pruned. Decisions are kept in r.replacing (replace.go).
func (r *runState) takeHung(now time.Time) {
	if r.syncedAt.IsZero() {
		return
	}
	rs := r.replacing
	for _, h := range liveHungReports(r.view, now, r.m.cfg.HostTimeout) {
		if rs.dynos[h.ID] != "" || !replaceable(r.view, h) {
			continue
		}
		if last, ok := rs.hungLast[h.App]; ok && now.Sub(last) < r.m.cfg.HungEvery {
			continue // reconsidered at the app's next reconcile
		}
		rs.mark(h.ID, replaceHung)
		rs.hungLast[h.App] = now
		r.dirty[h.App] = true
		r.m.log.Warn("replacing hung dyno", "app", h.App, "dyno", h.Name, "dyno_id", h.ID, "router", h.router, "hung_since", h.Since)
	}
}

// hungReport is one router's report of one dyno.
type hungReport struct {
	grid.HungDyno
	router string
}

// liveHungReports lists the hung dynos reported by live routers, oldest
// report first, so that with several per app the longest hung goes first.
func liveHungReports(v *view, now time.Time, timeout time.Duration) []hungReport {
	var out []hungReport
	for id, rs := range v.routers {
		if !rs.Heard || now.Sub(rs.Seen) > timeout {
			continue
		}
		for _, h := range rs.Hung {
			out = append(out, hungReport{HungDyno: h, router: id})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Since.Equal(out[j].Since) {
			return out[i].Since.Before(out[j].Since)
		}
		return out[i].ID < out[j].ID
	})
	return out
}

// replaceable reports whether a reported dyno is one the manager may
// replace: still assigned, a web dyno of the app the router named, up.
func replaceable(v *view, h hungReport) bool {
	a, ok := v.assignments[h.ID]
	return ok && !a.OneOff && a.App == h.App && a.Type == "web" && v.dynos[h.ID].State == grid.DynoUp
}
