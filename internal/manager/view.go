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
// is owned by the goroutine running Manager.Run.
type view struct {
	apps        map[string]grid.App       // by app name
	formations  map[string]grid.Formation // by app name
	assignments map[string]grid.Assignment
	dynos       map[string]seenDyno // by dyno ID
	hosts       map[string]seenHost // by host ID
}

// seenDyno is a dyno record and when the manager first saw it in its
// current state, by the manager's clock.
type seenDyno struct {
	grid.Dyno
	Since time.Time
}

// seenHost is a host record and when the manager last heard from it, by
// the manager's clock: hosts' clocks are never compared with ours.
type seenHost struct {
	grid.Host
	Seen time.Time
}

func newView() *view {
	return &view{
		apps:        map[string]grid.App{},
		formations:  map[string]grid.Formation{},
		assignments: map[string]grid.Assignment{},
		dynos:       map[string]seenDyno{},
		hosts:       map[string]seenHost{},
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
	if ev.Deleted {
		app := v.assignments[id].App
		delete(v.assignments, id)
		return app
	}
	v.assignments[id] = ev.Value
	return ev.Value.App
}

func (v *view) applyDyno(ev store.Event[grid.Dyno], now time.Time) string {
	_, app, id, ok := store.ParseDynoKey(ev.Key)
	if !ok {
		return ""
	}
	if ev.Deleted {
		delete(v.dynos, id)
		return app
	}
	since := now
	if old, ok := v.dynos[id]; ok && old.State == ev.Value.State {
		since = old.Since
	}
	v.dynos[id] = seenDyno{Dyno: ev.Value, Since: since}
	return app
}

// applyHost records a heartbeat and reports whether the host was not live
// before it (new, returning or deleted): placement may change everywhere.
func (v *view) applyHost(ev store.Event[grid.Host], now time.Time, timeout time.Duration) bool {
	was := v.live(ev.Key, now, timeout)
	if ev.Deleted {
		delete(v.hosts, ev.Key)
		return true
	}
	v.hosts[ev.Key] = seenHost{Host: ev.Value, Seen: now}
	return !was
}

// live reports whether a host has been heard from within timeout.
// Unknown hosts are not live.
func (v *view) live(host string, now time.Time, timeout time.Duration) bool {
	h, ok := v.hosts[host]
	return ok && now.Sub(h.Seen) <= timeout
}

// liveSet lists the live hosts, sorted.
func (v *view) liveSet(now time.Time, timeout time.Duration) []string {
	var ids []string
	for id := range v.hosts {
		if v.live(id, now, timeout) {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	return ids
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
	for _, a := range v.assignments {
		set[a.App] = true
	}
	for _, d := range v.dynos {
		set[d.App] = true
	}
	names := make([]string, 0, len(set))
	for n := range set {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// assignmentsOf lists an app's assignments in a stable order: by name,
// then oldest first.
func (v *view) assignmentsOf(app string) []grid.Assignment {
	var as []grid.Assignment
	for _, a := range v.assignments {
		if a.App == app {
			as = append(as, a)
		}
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
	var ds []seenDyno
	for _, d := range v.dynos {
		if d.App == app {
			ds = append(ds, d)
		}
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
		v.assignments[a.Assignment.DynoID] = a.Assignment
	case opDelete:
		delete(v.assignments, a.Assignment.DynoID)
	case opDeleteDyno:
		delete(v.dynos, a.Dyno.ID)
	}
}

func (v *view) undo(a action) {
	switch a.Op {
	case opPut:
		delete(v.assignments, a.Assignment.DynoID)
	case opDelete:
		v.assignments[a.Assignment.DynoID] = a.Assignment
	case opDeleteDyno:
		// Since is lost; zero makes the record due again at the retry.
		v.dynos[a.Dyno.ID] = seenDyno{Dyno: a.Dyno}
	}
}
