package manager

import (
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/dynogrid/grid/internal/grid"
	"github.com/dynogrid/grid/internal/scheduler"
)

// op is what an action does.
type op int

const (
	opPut        op = iota // create Assignment
	opDelete               // delete Assignment
	opDeleteDyno           // delete the record of Dyno
)

// action is one store write decided by reconcile.
type action struct {
	Op         op
	Assignment grid.Assignment
	Dyno       grid.Dyno
	Why        string
}

func (a action) String() string {
	switch a.Op {
	case opPut:
		cpus := ""
		if a.Assignment.CPUs != "" {
			cpus = " cpus " + a.Assignment.CPUs
		}
		why := ""
		if a.Assignment.Reason != "" {
			why = " (" + a.Assignment.Reason + ")"
		}
		return fmt.Sprintf("put %s v%d e%d on %s%s%s", a.Assignment.Name, a.Assignment.Release, a.Assignment.Epoch, a.Assignment.Host, cpus, why)
	case opDelete:
		return fmt.Sprintf("delete %s %s (%s)", a.Assignment.Name, a.Assignment.DynoID, a.Why)
	default:
		return fmt.Sprintf("forget %s %s (%s)", a.Dyno.Name, a.Dyno.ID, a.Why)
	}
}

// app is the app an action concerns.
func (a action) app() string {
	if a.Op == opDeleteDyno {
		return a.Dyno.App
	}
	return a.Assignment.App
}

// timing holds the manager's durations that decisions depend on.
type timing struct {
	HostTimeout time.Duration // a host or router not heard from for longer is lost
	ForgetAfter time.Duration // unassigned dyno records are deleted after this
	RouterWait  time.Duration // longest wait for routers to confirm a new web dyno
}

// policy holds what reconcile needs besides the view: the time, the
// timings, and what is derived from the view once per batch of decisions.
type policy struct {
	timing
	Now   time.Time
	NewID func() string
	// hosts are those that may take new dynos, sorted by ID, and index
	// finds them by ID; buf is hostStates' reusable output.
	hosts []placeHost
	index map[string]int
	buf   []scheduler.HostState
	// Hold says to place nothing yet (the manager has just synced and
	// not heard from every host).
	Hold bool
	// HoldLost says not to replace dynos of lost hosts yet: a lost host
	// has just come back, and the others of a healed partition are
	// likely to follow within a heartbeat.
	HoldLost bool
	// Routers counts the live routers; RoutedRev is the lowest dynos
	// bucket revision all of them have applied.
	Routers   int
	RoutedRev uint64
	// Replacing holds the IDs of dynos being replaced, and why
	// (replace.go): routers found them hung, or they are due for their
	// daily cycle. They count as stale, so a successor is placed and they
	// go once it serves. A cycled dyno, which is healthy, also stays
	// while its successor is crashed.
	Replacing map[string]replaceReason
}

func newPolicy(v *view, now time.Time, t timing, newID func() string) policy {
	p := policy{timing: t, Now: now, NewID: newID, index: map[string]int{}}
	for i, id := range v.placeableSet(now, t.HostTimeout) {
		h := v.hosts[id]
		p.hosts = append(p.hosts, placeHost{id: id, mem: h.MemoryMB, cores: h.Cores, use: v.useOf(id)})
		p.index[id] = i
	}
	p.buf = make([]scheduler.HostState, len(p.hosts))
	p.Routers, p.RoutedRev = v.routed(now, t.HostTimeout)
	return p
}

func (p policy) state(v *view, host string) grid.HostState {
	return v.hostState(host, p.Now, p.HostTimeout)
}

// decision is the outcome of reconciling one app.
type decision struct {
	Actions  []action
	Unplaced []scheduler.Placement
	// Waiting says some replaced web dyno stays until routers confirm
	// they route to its successor: router reports matter to this app.
	Waiting bool
}

// slot is one wanted dyno: a name at a release and epoch.
type slot struct {
	name    string
	typ     string
	command string
	size    string
	epoch   int
	reason  replaceReason // why the slot's dyno is being replaced, if it is
}

// replacedFor is why a dyno of as is being replaced (hung, cycle), if
// one is: its successor's assignment says so, for the host to log.
func replacedFor(as []grid.Assignment, p policy) replaceReason {
	for _, a := range as {
		if r := p.Replacing[a.DynoID]; r != "" {
			return r
		}
	}
	return ""
}

// reconcile decides what to write so that app converges on its formation
// at its current release. It is pure: it reads v and p and returns actions;
// it never changes v.
//
// Per wanted name (<type>.1…N), an assignment is fresh when it has the
// current release and epoch and its host is up (heard from within the
// host timeout, not draining). With no fresh assignment a new one is
// placed on a host that may take dynos (policy.hosts). The others of
// the name (old releases, lost or draining hosts, duplicates) are deleted
// once the fresh dyno is ready (start-before-stop):
//
//	fresh dyno:  (none) ─► starting ─► up ──► [web: every live router has
//	                                     │     applied the revision it became
//	                                     │     up at, or RouterWait passed]
//	                                     ▼                 │
//	                                  crashed ─────────────┴─► delete the others
//
// A lost host's dynos are therefore stopped only once their replacements
// serve, and if it returns first, its dynos are the ones kept. Dynos the
// manager decided to replace (policy.Replacing: hung, or due for their
// daily cycle) are stale too, except that a cycled dyno waits for its
// successor to be up, never just crashed. Names past
// the quantity and assignments of apps that are gone are deleted at once,
// one-off dynos when they have exited or their host is lost. Dyno records
// without an assignment are forgotten ForgetAfter after their host was
// last heard from, or after being down or crashed that long.
func reconcile(v *view, app string, p policy) decision {
	var d decision
	byName := map[string][]grid.Assignment{}
	var pending []grid.Assignment
	for _, a := range v.assignmentsOf(app) {
		if a.Host == grid.PendingHost {
			pending = append(pending, a)
			continue
		}
		if a.OneOff && p.state(v, a.Host) == grid.HostLost {
			d.delete(a, "host lost")
			continue
		}
		byName[a.Name] = append(byName[a.Name], a)
	}
	a, slots := wanted(v, app)
	var missing []slot
	for _, s := range slots {
		if !d.converge(v, s, a.Release.Version, byName[s.name], p) {
			s.reason = replacedFor(byName[s.name], p)
			missing = append(missing, s)
		}
		delete(byName, s.name)
	}
	d.unwanted(v, byName)
	d.place(v, a, missing, p)
	d.placeOneOffs(v, pending, p)
	d.forget(v, app, p)
	return d
}

// pendingOneOffLimit is how long a one-off dyno waits for room before it
// is dropped: past it, its client (grid run waits 90 s) has given up,
// and a command started much later than asked would surprise its user.
const pendingOneOffLimit = 2 * time.Minute

// placeOneOffs moves one-off dynos the API asked for (on PendingHost)
// to hosts, under the same dyno ID. Those the scheduler has no room for
// wait, reported as unplaced (which may provision a host), for
// pendingOneOffLimit; those of a deleted app are dropped.
func (d *decision) placeOneOffs(v *view, pending []grid.Assignment, p policy) {
	if len(pending) == 0 || p.Hold {
		return
	}
	if _, ok := v.apps[pending[0].App]; !ok {
		for _, a := range pending {
			d.delete(a, "app deleted")
		}
		return
	}
	reqs := make([]scheduler.Request, len(pending))
	for i, a := range pending {
		reqs[i] = scheduler.Request{Name: a.Name, App: a.App, Type: a.Type, MemoryMB: memoryMB(a.Size), Cores: coresFor(a.Size), Idle: lookupSize(a.Size).Idle}
	}
	plan := scheduler.Place(hostStates(v, pending[0].App, p), reqs)
	for i, pl := range plan.Placements {
		switch {
		case pl.Host == "" && p.Now.Sub(pending[i].CreatedAt) > pendingOneOffLimit:
			d.delete(pending[i], fmt.Sprintf("no room for the one-off dyno within %v", pendingOneOffLimit))
			continue
		case pl.Host == "":
			d.Unplaced = append(d.Unplaced, pl)
			continue
		}
		placed := pending[i]
		placed.Host, placed.CPUs = pl.Host, pl.CPUs
		d.delete(pending[i], "one-off placed")
		d.Actions = append(d.Actions, action{Op: opPut, Assignment: placed})
	}
}

// wanted returns the app and its wanted slots in order: web first, then
// by type, then by index. None when the app is gone or has no slug yet.
func wanted(v *view, name string) (grid.App, []slot) {
	a, ok := v.apps[name]
	if !ok || a.Release.SlugID == "" {
		return a, nil
	}
	f := v.formations[name]
	var out []slot
	for _, t := range f.SortedTypes() {
		ft := f.Types[t]
		if ft.Command == "" {
			continue
		}
		size := ft.Size
		if size == "" {
			size = grid.DefaultSize
		}
		for i := 1; i <= ft.Quantity; i++ {
			out = append(out, slot{name: grid.DynoName(t, i), typ: t, command: ft.Command, size: size, epoch: ft.Epoch})
		}
	}
	return a, out
}

// converge handles one wanted name's assignments and reports whether a
// fresh one exists (or the name is held, see policy.HoldLost).
func (d *decision) converge(v *view, s slot, release int, as []grid.Assignment, p policy) bool {
	var fresh, stale []grid.Assignment
	for _, a := range as {
		if p.current(v, a, release, s.epoch) && p.Replacing[a.DynoID] == "" {
			fresh = append(fresh, a)
		} else {
			stale = append(stale, a)
		}
	}
	if len(fresh) == 0 {
		return p.HoldLost && slices.ContainsFunc(stale, func(a grid.Assignment) bool {
			return a.Release == release && a.Epoch == s.epoch && p.state(v, a.Host) == grid.HostLost
		})
	}
	keep := pick(v, fresh)
	ok, note := ready(v, keep, p)
	if !ok && v.dynos[keep.DynoID].State == grid.DynoUp {
		d.Waiting = true
	}
	for _, a := range fresh {
		// A serving duplicate stays until the kept one is routed.
		if a.DynoID != keep.DynoID && (ok || v.dynos[a.DynoID].State != grid.DynoUp) {
			d.delete(a, "duplicate of "+keep.DynoID+note)
		}
	}
	if ok {
		for _, a := range stale {
			if cycledFor(v, a, keep, release, s.epoch, p) {
				continue
			}
			d.delete(a, "replaced by "+keep.DynoID+note)
		}
	}
	return true
}

// current reports whether a runs its slot's release and epoch on an up
// host: it needs no replacement unless one was decided (Replacing).
func (p policy) current(v *view, a grid.Assignment, release, epoch int) bool {
	return a.Release == release && a.Epoch == epoch && !a.OneOff && p.state(v, a.Host) == grid.HostUp
}

// cycledFor reports whether stale is a dyno being cycled that must stay
// although keep is ready: keep crashed, and stale is current apart from
// its cycle. A deploy replaces its dynos even by crashed ones (the user
// asked for the new release), but a cycle must never trade a healthy
// dyno for a crashed one; stale goes once keep comes up after its
// restart (cycle.go).
func cycledFor(v *view, stale, keep grid.Assignment, release, epoch int, p policy) bool {
	return p.Replacing[stale.DynoID] == replaceCycle && v.dynos[keep.DynoID].State != grid.DynoUp && p.current(v, stale, release, epoch)
}

// ready reports whether keep's dyno may now replace the others of its
// name, and a note for the log when routers were not waited for.
func ready(v *view, keep grid.Assignment, p policy) (bool, string) {
	dy := v.dynos[keep.DynoID]
	switch {
	case dy.State == grid.DynoCrashed:
		return true, ""
	case dy.State != grid.DynoUp:
		return false, ""
	case keep.Type != "web" || p.Routers == 0 || p.RoutedRev >= dy.UpRev:
		return true, ""
	case p.Now.Sub(dy.Since) >= p.RouterWait:
		return true, fmt.Sprintf("; routers did not confirm within %v", p.RouterWait)
	}
	return false, ""
}

// pick chooses which of several fresh assignments of one name to keep
// (there is normally one): an up dyno, else the oldest.
func pick(v *view, fresh []grid.Assignment) grid.Assignment {
	for _, a := range fresh {
		if v.dynos[a.DynoID].State == grid.DynoUp {
			return a
		}
	}
	return fresh[0]
}

// unwanted deletes assignments of names no longer wanted. One-off dynos
// are not in the formation: they stay until their process has exited.
func (d *decision) unwanted(v *view, byName map[string][]grid.Assignment) {
	names := make([]string, 0, len(byName))
	for n := range byName {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		for _, a := range byName[n] {
			_, appOK := v.apps[a.App]
			st := v.dynos[a.DynoID].State
			switch {
			case !appOK:
				d.delete(a, "app deleted")
			case !a.OneOff:
				d.delete(a, "not in formation")
			case st == grid.DynoCrashed || st == grid.DynoDown:
				d.delete(a, "one-off exited")
			}
		}
	}
}

// place asks the scheduler for hosts for the missing slots and creates
// their assignments.
func (d *decision) place(v *view, a grid.App, missing []slot, p policy) {
	if len(missing) == 0 || p.Hold {
		return
	}
	reqs := make([]scheduler.Request, len(missing))
	for i, s := range missing {
		reqs[i] = scheduler.Request{Name: s.name, App: a.Name, Type: s.typ, MemoryMB: memoryMB(s.size), Cores: coresFor(s.size), Idle: lookupSize(s.size).Idle}
	}
	plan := scheduler.Place(hostStates(v, a.Name, p), reqs)
	for i, pl := range plan.Placements {
		if pl.Host == "" {
			d.Unplaced = append(d.Unplaced, pl)
			continue
		}
		s := missing[i]
		d.Actions = append(d.Actions, action{Op: opPut, Assignment: grid.Assignment{
			DynoID: p.NewID(), App: a.Name, AppID: a.ID, UID: a.UID, Host: pl.Host,
			Name: s.name, Type: s.typ, Command: s.command, Size: s.size,
			Release: a.Release.Version, Epoch: s.epoch, SlugID: a.Release.SlugID,
			Env: copyEnv(a.Release.Config), Reach: a.Release.Reach, CPUs: pl.CPUs, CreatedAt: p.Now, Reason: string(s.reason),
		}})
	}
}

// forget deletes dyno records nobody will clean up. A live host deletes
// the records of dynos it stops itself; the manager forgets those of lost
// or vanished hosts ForgetAfter after they were last heard from (a host
// cut off may still run them and come back), and those left down or
// crashed for ForgetAfter. Records with an assignment are never
// forgotten.
func (d *decision) forget(v *view, app string, p policy) {
	for _, dy := range v.dynosOf(app) {
		if _, ok := v.assignments[dy.ID]; ok {
			continue
		}
		h, known := v.hosts[dy.Host]
		lost := p.state(v, dy.Host) == grid.HostLost
		var why string
		switch {
		case lost && known && p.Now.Sub(h.Seen) > p.ForgetAfter:
			why = "host lost"
		case lost && !known && p.Now.Sub(dy.Since) > p.ForgetAfter:
			why = "host gone"
		case !lost && (dy.State == grid.DynoDown || dy.State == grid.DynoCrashed) && p.Now.Sub(dy.Since) > p.ForgetAfter:
			why = "unassigned and " + string(dy.State)
		default:
			continue
		}
		d.Actions = append(d.Actions, action{Op: opDeleteDyno, Dyno: dy.Dyno, Why: why})
	}
}

func (d *decision) delete(a grid.Assignment, why string) {
	d.Actions = append(d.Actions, action{Op: opDelete, Assignment: a, Why: why})
}

func copyEnv(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}
