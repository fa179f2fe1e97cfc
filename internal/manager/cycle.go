package manager

import (
	"hash/fnv"
	"strconv"
	"strings"
	"time"

	"github.com/dynogrid/grid/internal/grid"
)

// Like Heroku, the manager cycles every dyno once a day: it replaces a
// dyno CycleAfter (24 h) plus a jitter (up to CycleJitter, 216 min) after
// it was created. Long-running processes leak memory, file descriptors
// and stale connections; a daily restart bounds that, and keeps apps
// honest about being restartable at any time, as Heroku's are. Unlike
// Heroku's cycle, ours is start-before-stop through the replacements of
// replace.go, so it never drops a request: the successor is placed under
// the same name and the old dyno is deleted once the successor is up
// (and routed); if the successor crashes instead, the old dyno keeps
// serving (converge), so a cycle never leaves an app fewer up dynos. A
// successor with no room waits unplaced, like any dyno (and counts
// towards provisioning, capacity.go), while the old dyno serves on.
//
// The jitter spreads dynos created together (a deploy, a scale-up) over
// CycleJitter instead of restarting them all at once. It is a hash of the
// dyno ID, and the deadline depends on the assignment alone, so a manager
// that restarts or fails over computes the same deadlines.
//
// A dyno is cycled only when
//   - it is not a one-off dyno (they run once, to completion);
//   - it is up, on an up host, at its app's current release and type
//     epoch, and its name is in the formation: a dyno that is starting,
//     crashed or about to be replaced anyway gains nothing from a cycle;
//   - no dyno of its app, itself included, is being replaced (hung or
//     cycled): a dyno is never cycled twice, and an app cycles one dyno
//     at a time, so it never needs more than one extra dyno's memory for
//     it, even when many are due at once (after an outage of the
//     manager, or with no jitter).
//
// Deadlines need no timer of their own: the resync (Config.Resync, 5 s)
// reconciles every app, and with it checks its deadlines, so a dyno is
// cycled within a resync of being due even when nothing else changes.

// cycleDue returns when a's dyno is due to be cycled, after CycleAfter
// and jitter (CycleJitter; 0 for none), and false if it never is: a
// one-off dyno, cycling disabled (after < 0), or an assignment without
// CreatedAt (written by hand; its age is unknown).
func cycleDue(a grid.Assignment, after, jitter time.Duration) (time.Time, bool) {
	if after < 0 || a.OneOff || a.CreatedAt.IsZero() {
		return time.Time{}, false
	}
	return a.CreatedAt.Add(after + cycleJitter(a.DynoID, jitter)), true
}

// cycleJitter is the dyno's share of jitter, in [0, jitter): an FNV-1a
// hash of its ID, the same for every manager.
func cycleJitter(dynoID string, jitter time.Duration) time.Duration {
	if jitter <= 0 {
		return 0
	}
	h := fnv.New64a()
	h.Write([]byte(dynoID))
	return time.Duration(h.Sum64() % uint64(jitter))
}

// takeCycle marks for cycling the dyno of app most overdue, if any is due
// and may be cycled now (see above). The marks go to p.Replacing too (the
// same map), so the decision that follows places its successor. Run's
// goroutine only, on a synced view whose marks were pruned.
func (r *runState) takeCycle(app string, p policy) {
	if r.m.cfg.CycleAfter < 0 || r.replacing.busy(r.view, app) {
		return
	}
	var due grid.Assignment
	var dueAt time.Time
	for _, a := range r.view.assignmentsOf(app) {
		at, ok := cycleDue(a, r.m.cfg.CycleAfter, r.m.cfg.CycleJitter)
		if ok && !p.Now.Before(at) && (dueAt.IsZero() || at.Before(dueAt)) && cyclable(r.view, a, p) {
			due, dueAt = a, at
		}
	}
	if dueAt.IsZero() {
		return
	}
	r.replacing.mark(due.DynoID, replaceCycle)
	r.m.log.Info("cycling dyno", "app", app, "dyno", due.Name, "dyno_id", due.DynoID, "age", p.Now.Sub(due.CreatedAt).Round(time.Second))
}

// cyclable reports whether a's dyno runs what its app wants, up, on an up
// host: a dyno that would not be replaced otherwise.
func cyclable(v *view, a grid.Assignment, p policy) bool {
	ft, ok := v.formations[a.App].Types[a.Type]
	if !ok || ft.Command == "" || v.dynos[a.DynoID].State != grid.DynoUp {
		return false
	}
	n, err := strconv.Atoi(strings.TrimPrefix(a.Name, a.Type+"."))
	return err == nil && n >= 1 && n <= ft.Quantity && p.current(v, a, v.apps[a.App].Release.Version, ft.Epoch)
}
