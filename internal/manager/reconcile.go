package manager

import (
	"fmt"
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
		return fmt.Sprintf("put %s v%d e%d on %s", a.Assignment.Name, a.Assignment.Release, a.Assignment.Epoch, a.Assignment.Host)
	case opDelete:
		return fmt.Sprintf("delete %s %s (%s)", a.Assignment.Name, a.Assignment.DynoID, a.Why)
	default:
		return fmt.Sprintf("forget %s %s (%s)", a.Dyno.Name, a.Dyno.ID, a.Why)
	}
}

// policy holds what reconcile needs besides the view.
type policy struct {
	Now         time.Time
	HostTimeout time.Duration // a host not heard from for longer is lost
	ForgetAfter time.Duration // unassigned down/crashed dyno records are deleted after this
	NewID       func() string
}

// decision is the outcome of reconciling one app.
type decision struct {
	Actions  []action
	Unplaced []scheduler.Placement
}

// slot is one wanted dyno: a name at a release and epoch.
type slot struct {
	name    string
	typ     string
	command string
	size    string
	epoch   int
}

// reconcile decides what to write so that app converges on its formation
// at its current release. It is pure: it reads v and p and returns actions;
// it never changes v.
//
// Per wanted name (<type>.1…N): with no fresh assignment (current release
// and epoch, on a live host) a new one is placed; once the fresh one's
// dyno is up or crashed, the stale ones of that name are deleted
// (start-before-stop). Names past the quantity, assignments of apps that
// are gone and assignments on lost hosts are deleted. Dyno records without
// an assignment are forgotten once their host is lost or they have been
// down or crashed for ForgetAfter.
func reconcile(v *view, app string, p policy) decision {
	var d decision
	byName := map[string][]grid.Assignment{}
	for _, a := range v.assignmentsOf(app) {
		if !v.live(a.Host, p.Now, p.HostTimeout) {
			d.delete(a, "host lost")
			continue
		}
		byName[a.Name] = append(byName[a.Name], a)
	}
	a, slots := wanted(v, app)
	var missing []slot
	for _, s := range slots {
		if !d.converge(v, s, a.Release.Version, byName[s.name]) {
			missing = append(missing, s)
		}
		delete(byName, s.name)
	}
	d.unwanted(v, byName)
	d.place(v, a, missing, p)
	d.forget(v, app, p)
	return d
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
// fresh one exists.
func (d *decision) converge(v *view, s slot, release int, as []grid.Assignment) bool {
	var fresh, stale []grid.Assignment
	for _, a := range as {
		if a.Release == release && a.Epoch == s.epoch && !a.OneOff {
			fresh = append(fresh, a)
		} else {
			stale = append(stale, a)
		}
	}
	if len(fresh) == 0 {
		return false
	}
	keep := pick(v, fresh)
	for _, a := range fresh {
		if a.DynoID != keep.DynoID {
			d.delete(a, "duplicate of "+keep.DynoID)
		}
	}
	if st := v.dynos[keep.DynoID].State; st == grid.DynoUp || st == grid.DynoCrashed {
		for _, a := range stale {
			d.delete(a, "replaced by "+keep.DynoID)
		}
	}
	return true
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
	if len(missing) == 0 {
		return
	}
	reqs := make([]scheduler.Request, len(missing))
	for i, s := range missing {
		reqs[i] = scheduler.Request{Name: s.name, App: a.Name, Type: s.typ, MemoryMB: memoryMB(s.size)}
	}
	plan := scheduler.Place(hostStates(v, p), reqs)
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
			Env: copyEnv(a.Release.Config), CreatedAt: p.Now,
		}})
	}
}

// hostStates describes the live hosts for the scheduler. Every assignment
// reserves its memory until it is deleted, stale ones included: during a
// start-before-stop both dynos run.
func hostStates(v *view, p policy) []scheduler.HostState {
	live := v.liveSet(p.Now, p.HostTimeout)
	byID := make(map[string]*scheduler.HostState, len(live))
	out := make([]scheduler.HostState, len(live))
	for i, id := range live {
		h := v.hosts[id]
		out[i] = scheduler.HostState{ID: id, MemoryMB: h.MemoryMB, Cores: h.Cores, Running: map[scheduler.Group]int{}}
		byID[id] = &out[i]
	}
	for _, a := range v.assignments {
		if h := byID[a.Host]; h != nil {
			h.ReservedMB += memoryMB(a.Size)
			h.Running[scheduler.Group{App: a.App, Type: a.Type}]++
		}
	}
	return out
}

// forget deletes dyno records nobody will clean up: no assignment, and
// either the host is lost or the dyno has been down or crashed for a while
// (a live host deletes the records of dynos it stops itself).
func (d *decision) forget(v *view, app string, p policy) {
	for _, dy := range v.dynosOf(app) {
		// An assigned dyno on a lost host has its assignment deleted in
		// this same decision.
		if _, ok := v.assignments[dy.ID]; ok && v.live(dy.Host, p.Now, p.HostTimeout) {
			continue
		}
		switch {
		case !v.live(dy.Host, p.Now, p.HostTimeout):
			d.Actions = append(d.Actions, action{Op: opDeleteDyno, Dyno: dy.Dyno, Why: "host lost"})
		case (dy.State == grid.DynoDown || dy.State == grid.DynoCrashed) && p.Now.Sub(dy.Since) > p.ForgetAfter:
			d.Actions = append(d.Actions, action{Op: opDeleteDyno, Dyno: dy.Dyno, Why: "unassigned and " + string(dy.State)})
		}
	}
}

func (d *decision) delete(a grid.Assignment, why string) {
	d.Actions = append(d.Actions, action{Op: opDelete, Assignment: a, Why: why})
}

// memoryMB is a size's memory; an unknown size counts as the default.
func memoryMB(size string) int {
	s, err := grid.LookupSize(size)
	if err != nil {
		s, _ = grid.LookupSize(grid.DefaultSize)
	}
	return s.MemoryMB
}

func copyEnv(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// app is the app an action concerns.
func (a action) app() string {
	if a.Op == opDeleteDyno {
		return a.Dyno.App
	}
	return a.Assignment.App
}
