package manager

import (
	"sort"
	"strings"
	"time"

	"github.com/dynogrid/grid/internal/grid"
	"github.com/dynogrid/grid/internal/store"
)

// view is the manager's in-memory copy of the platform's desired and actual
// state, fed by watches and by the manager's own writes (applied at once,
// so that a decision never repeats one whose echo has not arrived yet). It
// is owned by the goroutine running Manager.Run and rebuilt from scratch
// by every fresh sync.
type view struct {
	apps        map[string]grid.App       // by app name
	formations  map[string]grid.Formation // by app name
	assignments map[string]grid.Assignment
	dynos       map[string]seenDyno         // by dyno ID
	hosts       map[string]seenHost         // by host ID
	controls    map[string]grid.HostControl // by host ID
	controlSeen map[string]time.Time        // by host ID: when first seen, by the manager's clock
	routers     map[string]seenRouter       // by router ID
	use         map[string]*hostUse         // by host ID: what its assignments take
	records     map[string]int              // by host ID: dyno records on it
	// appAssignments and appDynos index assignments and dyno records by
	// app (app → dyno IDs), so that reconciling one app costs what that
	// app has, not what the grid has.
	appAssignments map[string]map[string]bool
	appDynos       map[string]map[string]bool
}

// seenDyno is a dyno record, when the manager first saw it in its current
// state (by the manager's clock), and the dynos bucket revision at which
// it was first seen up at its current address (0 unless up): routers that
// have applied that revision route to it.
type seenDyno struct {
	grid.Dyno
	Since time.Time
	UpRev uint64
}

// seenHost is a host record and when the manager last heard from it, by
// the manager's clock: hosts' clocks are never compared with ours. Heard
// says a heartbeat arrived while this view was live (not just its last
// record in the initial sync): only such hosts get new dynos, so a
// manager that starts or resyncs never places dynos on a host that died
// while nobody watched.
type seenHost struct {
	grid.Host
	Seen  time.Time
	Heard bool
}

// seenRouter is a router's report and when the manager received it.
// Heard says it arrived while this view was live, not as the last record
// in the initial sync: only such reports of hung dynos count (hung.go),
// so a manager that starts never acts on a dead router's last word.
type seenRouter struct {
	grid.RouterState
	Seen  time.Time
	Heard bool
}

func newView() *view {
	return &view{
		apps:        map[string]grid.App{},
		formations:  map[string]grid.Formation{},
		assignments: map[string]grid.Assignment{},
		dynos:       map[string]seenDyno{},
		hosts:       map[string]seenHost{},
		controls:    map[string]grid.HostControl{},
		controlSeen: map[string]time.Time{},
		routers:     map[string]seenRouter{},
		use:         map[string]*hostUse{},
		records:     map[string]int{},

		appAssignments: map[string]map[string]bool{},
		appDynos:       map[string]map[string]bool{},
	}
}

func index(m map[string]map[string]bool, app, id string, add bool) {
	ids := m[app]
	if add {
		if ids == nil {
			ids = map[string]bool{}
			m[app] = ids
		}
		ids[id] = true
		return
	}
	delete(ids, id)
	if len(ids) == 0 {
		delete(m, app)
	}
}

// The apply methods fold one watch event into the view and return the app
// it concerns ("" when none).

func (v *view) applyApp(ev store.Event[grid.App]) string {
	if ev.Deleted {
		delete(v.apps, ev.Key)
	} else {
		v.apps[ev.Key] = ev.Value
	}
	return ev.Key
}

func (v *view) applyFormation(ev store.Event[grid.Formation]) string {
	if ev.Deleted {
		delete(v.formations, ev.Key)
	} else {
		v.formations[ev.Key] = ev.Value
	}
	return ev.Key
}

func (v *view) applyAssignment(ev store.Event[grid.Assignment]) string {
	id := afterLastDot(ev.Key)
	old, had := v.assignments[id]
	if ev.Deleted {
		// A placed one-off dyno keeps its ID on its host: the deletion of
		// its pending assignment must not remove it.
		if had && ev.Key == old.Host+"."+id {
			v.removeAssignment(id)
		}
		return old.App
	}
	if had {
		v.removeAssignment(id)
	}
	v.putAssignment(ev.Value)
	return ev.Value.App
}

func (v *view) putAssignment(a grid.Assignment) {
	v.assignments[a.DynoID] = a
	index(v.appAssignments, a.App, a.DynoID, true)
	v.account(a, 1)
}

func (v *view) removeAssignment(id string) {
	if a, ok := v.assignments[id]; ok {
		delete(v.assignments, id)
		index(v.appAssignments, a.App, id, false)
		v.account(a, -1)
	}
}

func (v *view) applyDyno(ev store.Event[grid.Dyno], now time.Time) string {
	_, app, id, ok := store.ParseDynoKey(ev.Key)
	if !ok {
		return ""
	}
	if ev.Deleted {
		v.removeDyno(id)
		return app
	}
	d := seenDyno{Dyno: ev.Value, Since: now}
	old, had := v.dynos[id]
	if had && old.State == d.State {
		d.Since = old.Since
	}
	if d.State == grid.DynoUp {
		d.UpRev = ev.Revision
		if had && old.State == grid.DynoUp && old.Addr == d.Addr {
			d.UpRev = old.UpRev
		}
	}
	v.removeDyno(id)
	v.putDyno(d)
	return app
}

func (v *view) putDyno(d seenDyno) {
	v.dynos[d.ID] = d
	index(v.appDynos, d.App, d.ID, true)
	v.records[d.Host]++
}

func (v *view) removeDyno(id string) {
	if d, ok := v.dynos[id]; ok {
		delete(v.dynos, id)
		index(v.appDynos, d.App, id, false)
		if v.records[d.Host]--; v.records[d.Host] <= 0 {
			delete(v.records, d.Host)
		}
	}
}

// applyHost records a host's heartbeat; initial says it is one of the
// watch's initial values, not a live heartbeat. It reports whether the
// host could not take dynos before and can now, or the reverse.
func (v *view) applyHost(ev store.Event[grid.Host], now time.Time, timeout time.Duration, initial bool) bool {
	was := v.placeable(ev.Key, now, timeout)
	if ev.Deleted {
		delete(v.hosts, ev.Key)
		if u := v.use[ev.Key]; u != nil && u.dynos <= 0 {
			delete(v.use, ev.Key)
		}
		return was
	}
	v.useOf(ev.Key)
	heard := !initial || v.hosts[ev.Key].Heard
	v.hosts[ev.Key] = seenHost{Host: ev.Value, Seen: now, Heard: heard}
	return was != v.placeable(ev.Key, now, timeout)
}

func (v *view) applyControl(ev store.Event[grid.HostControl], now time.Time) string {
	if ev.Deleted {
		delete(v.controls, ev.Key)
		delete(v.controlSeen, ev.Key)
		return ev.Key
	}
	v.controls[ev.Key] = ev.Value
	if _, ok := v.controlSeen[ev.Key]; !ok {
		v.controlSeen[ev.Key] = now
	}
	return ev.Key
}

func (v *view) applyRouter(ev store.Event[grid.RouterState], now time.Time, initial bool) {
	if ev.Deleted {
		delete(v.routers, ev.Key)
		return
	}
	v.routers[ev.Key] = seenRouter{RouterState: ev.Value, Seen: now, Heard: !initial}
}

// hostState says how the manager sees a host: lost when it has not been
// heard from within timeout (or is unknown), else draining when its
// control record says so, else up.
func (v *view) hostState(id string, now time.Time, timeout time.Duration) grid.HostState {
	h, ok := v.hosts[id]
	switch {
	case !ok || now.Sub(h.Seen) > timeout:
		return grid.HostLost
	case v.controls[id].Draining:
		return grid.HostDraining
	}
	return grid.HostUp
}

// placeable reports whether new dynos may go to a host: up, and heard
// from since the view was built.
func (v *view) placeable(id string, now time.Time, timeout time.Duration) bool {
	return v.hosts[id].Heard && v.hostState(id, now, timeout) == grid.HostUp
}

// liveSet lists the hosts that are not lost, sorted.
func (v *view) liveSet(now time.Time, timeout time.Duration) []string {
	var ids []string
	for id := range v.hosts {
		if v.hostState(id, now, timeout) != grid.HostLost {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	return ids
}

// placeableSet lists the hosts that may take new dynos, sorted.
func (v *view) placeableSet(now time.Time, timeout time.Duration) []string {
	var ids []string
	for id := range v.hosts {
		if v.placeable(id, now, timeout) {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	return ids
}

// routed returns how many routers are live (heard from within timeout)
// and the lowest dynos revision all of them have applied.
func (v *view) routed(now time.Time, timeout time.Duration) (live int, rev uint64) {
	for _, r := range v.routers {
		if now.Sub(r.Seen) > timeout {
			continue
		}
		if live == 0 || r.Revision < rev {
			rev = r.Revision
		}
		live++
	}
	return live, rev
}

// empty reports whether a host has neither assignments nor dyno records
// (a host deletes a dyno's record once it has stopped it).
func (v *view) empty(host string) bool {
	u := v.use[host]
	return (u == nil || u.dynos == 0) && v.records[host] == 0
}

// appNames lists every app the view knows of, including apps that are
// gone but still have assignments or dyno records.
func (v *view) appNames() []string {
	set := map[string]bool{}
	for n := range v.apps {
		set[n] = true
	}
	for n := range v.formations {
		set[n] = true
	}
	for n := range v.appAssignments {
		set[n] = true
	}
	for n := range v.appDynos {
		set[n] = true
	}
	names := make([]string, 0, len(set))
	for n := range set {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// appsOn lists the apps with assignments on a host.
func (v *view) appsOn(host string) []string {
	u := v.use[host]
	if u == nil {
		return nil
	}
	apps := make([]string, 0, len(u.apps))
	for app := range u.apps {
		apps = append(apps, app)
	}
	return apps
}

// assignmentsOf lists an app's assignments in a stable order: by name,
// then oldest first.
func (v *view) assignmentsOf(app string) []grid.Assignment {
	as := make([]grid.Assignment, 0, len(v.appAssignments[app]))
	for id := range v.appAssignments[app] {
		as = append(as, v.assignments[id])
	}
	sort.Slice(as, func(i, j int) bool {
		if as[i].Name != as[j].Name {
			return as[i].Name < as[j].Name
		}
		if !as[i].CreatedAt.Equal(as[j].CreatedAt) {
			return as[i].CreatedAt.Before(as[j].CreatedAt)
		}
		return as[i].DynoID < as[j].DynoID
	})
	return as
}

// dynosOf lists an app's dyno records, sorted by ID.
func (v *view) dynosOf(app string) []seenDyno {
	ds := make([]seenDyno, 0, len(v.appDynos[app]))
	for id := range v.appDynos[app] {
		ds = append(ds, v.dynos[id])
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i].ID < ds[j].ID })
	return ds
}

func afterLastDot(key string) string {
	if i := strings.LastIndexByte(key, '.'); i >= 0 {
		return key[i+1:]
	}
	return key
}

// do applies one of the manager's own writes to the view before it is
// written; undo reverts it when the write fails.
func (v *view) do(a action) {
	switch a.Op {
	case opPut:
		v.removeAssignment(a.Assignment.DynoID)
		v.putAssignment(a.Assignment)
	case opDelete:
		if cur, ok := v.assignments[a.Assignment.DynoID]; ok && cur.Host == a.Assignment.Host {
			v.removeAssignment(a.Assignment.DynoID)
		}
	case opDeleteDyno:
		v.removeDyno(a.Dyno.ID)
	}
}

func (v *view) undo(a action) {
	switch a.Op {
	case opPut:
		v.removeAssignment(a.Assignment.DynoID)
	case opDelete:
		v.putAssignment(a.Assignment)
	case opDeleteDyno:
		// Since is lost; zero makes the record due again at the retry.
		v.putDyno(seenDyno{Dyno: a.Dyno})
	}
}
