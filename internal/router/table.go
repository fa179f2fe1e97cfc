package router

import (
	"sort"

	"github.com/dynogrid/grid/internal/grid"
	"github.com/dynogrid/grid/internal/store"
)

// table is one immutable snapshot of every app's route. Requests load it
// from an atomic pointer without locks; Run replaces it whole after each
// batch of watch events (copy-on-write of the app map, with unchanged
// routes shared). changed is closed when a newer table replaces this one,
// so requests waiting for a dyno to boot wake without polling.
type table struct {
	routes  map[string]*route
	changed chan struct{}
}

// route is what the router knows of one app. Immutable once published;
// the endpoints' counters are the only moving parts.
type route struct {
	app         string
	maintenance bool
	blank       bool        // no release with a slug yet: H81
	web         int         // wanted web dynos; 0 (or no web type): H14
	endpoints   []*endpoint // up web dynos with an address, by dyno name
	starting    int         // web dynos starting, or up without an address yet
	crashed     int         // web dynos crashed
}

// decide says what to do with a request for the route: an error to answer
// with, wait for a starting dyno, or (neither) proxy to an endpoint.
func (rt *route) decide() (fail *hError, wait bool) {
	switch {
	case rt.maintenance:
		return errH80, false
	case len(rt.endpoints) > 0:
		return nil, false
	case rt.blank:
		return errH81, false
	case rt.web == 0:
		return errH14, false
	case rt.crashed > 0 && rt.starting == 0:
		return errH10, false
	}
	// Web dynos are wanted and some are starting, or not placed yet.
	return nil, true
}

// state is everything the watches have said, owned by Run's goroutine.
type state struct {
	apps   map[string]grid.AppMeta
	forms  map[string]grid.Formation
	dynos  map[string]map[string]grid.Dyno // app → dyno key → dyno
	lost   map[string]bool                 // hosts the manager holds lost
	dirty  map[string]struct{}             // apps changed since the last publish
	synced [4]bool                         // apps, formations, dynos, host controls delivered their initial values
	hosts  *hostState                      // custom domains and certificates (domains.go)
	// rev is the highest dynos bucket revision applied. Watches deliver
	// in revision order, so the state reflects every dyno change up to it.
	rev uint64
}

func newState() *state {
	return &state{
		apps:  map[string]grid.AppMeta{},
		forms: map[string]grid.Formation{},
		dynos: map[string]map[string]grid.Dyno{},
		lost:  map[string]bool{},
		dirty: map[string]struct{}{},
		hosts: newHostState(),
	}
}

func (s *state) loaded() bool {
	return s.synced[0] && s.synced[1] && s.synced[2] && s.synced[3] && s.hosts.loaded()
}

// apply files a watch event in m, keyed as in the store, and reports
// whether it was the marker that the initial values are all delivered.
func apply[T any](m map[string]T, ev store.Event[T]) (synced bool) {
	switch {
	case ev.Synced:
		return true
	case ev.Deleted:
		delete(m, ev.Key)
	default:
		m[ev.Key] = ev.Value
	}
	return false
}

func (s *state) applyApp(ev store.Event[grid.AppMeta]) {
	if apply(s.apps, ev) {
		s.synced[0] = true
		return
	}
	s.dirty[ev.Key] = struct{}{}
}

func (s *state) applyFormation(ev store.Event[grid.Formation]) {
	if apply(s.forms, ev) {
		s.synced[1] = true
		return
	}
	s.dirty[ev.Key] = struct{}{}
}

// applyDyno files a dyno under its app: the key's first token, since app
// names cannot contain dots and a deleted dyno has no value to ask.
func (s *state) applyDyno(ev store.Event[grid.Dyno]) {
	if ev.Synced {
		s.synced[2] = true
		return
	}
	s.rev = max(s.rev, ev.Revision)
	_, app, _, ok := store.ParseDynoKey(ev.Key)
	if !ok {
		return
	}
	ds := s.dynos[app]
	if ev.Deleted {
		delete(ds, ev.Key)
		if len(ds) == 0 {
			delete(s.dynos, app)
		}
	} else {
		if ds == nil {
			ds = map[string]grid.Dyno{}
			s.dynos[app] = ds
		}
		ds[ev.Key] = ev.Value
	}
	s.dirty[app] = struct{}{}
}

// applyHostControl follows the manager's verdict on a host: the dynos of
// a lost host leave the table (their replacements start elsewhere), and
// come back if the host is heard from again before they are stopped.
func (s *state) applyHostControl(ev store.Event[grid.HostControl]) {
	if ev.Synced {
		s.synced[3] = true
		return
	}
	lost := !ev.Deleted && ev.Value.Lost
	if s.lost[ev.Key] == lost {
		return
	}
	if lost {
		s.lost[ev.Key] = true
	} else {
		delete(s.lost, ev.Key)
	}
	for app, ds := range s.dynos {
		for _, d := range ds {
			if d.Host == ev.Key {
				s.dirty[app] = struct{}{}
				break
			}
		}
	}
}

// allApps marks every app known to any watch dirty, for a fresh table.
func (s *state) allApps() {
	for a := range s.apps {
		s.dirty[a] = struct{}{}
	}
	for a := range s.forms {
		s.dirty[a] = struct{}{}
	}
	for a := range s.dynos {
		s.dirty[a] = struct{}{}
	}
}

// builder turns state into routes, reusing endpoints across tables (and
// across re-syncs) so that in-flight counts, quarantines and pooled
// connections survive route changes. Owned by Run's goroutine.
type builder struct {
	endpoints   map[string]map[string]*endpoint // app → dyno key → endpoint
	newEndpoint func(dyno, addr string) *endpoint
}

func newBuilder(newEndpoint func(dyno, addr string) *endpoint) *builder {
	return &builder{endpoints: map[string]map[string]*endpoint{}, newEndpoint: newEndpoint}
}

// next returns a table with the dirty apps rebuilt, clears the dirty set
// and returns the endpoints that left the table, for the caller to retire
// once the table is published; those that left because their host is
// lost are marked so. old's routes map is not modified. With old
// nil the table is built from s alone: that is a fresh sync, which knows
// nothing of the previous table, so apps s does not know (deleted while
// the watches were down) are dropped too.
func (b *builder) next(s *state, old map[string]*route) (routes map[string]*route, gone []*endpoint) {
	if old == nil {
		s.allApps()
		for app, eps := range b.endpoints {
			if _, ok := s.dirty[app]; !ok {
				gone = appendEndpoints(gone, eps)
				delete(b.endpoints, app)
			}
		}
	}
	routes = make(map[string]*route, len(old)+len(s.dirty))
	for app, rt := range old {
		routes[app] = rt
	}
	for app := range s.dirty {
		prev := b.endpoints[app]
		rt := b.route(s, app)
		if rt != nil {
			routes[app] = rt
		} else {
			delete(routes, app)
			delete(b.endpoints, app)
		}
		cur := b.endpoints[app]
		for key, ep := range prev {
			if cur[key] != ep {
				gone = append(gone, ep)
			}
		}
	}
	clear(s.dirty)
	for _, ep := range gone {
		if s.lost[ep.host] {
			ep.lose()
		}
	}
	return routes, gone
}

func appendEndpoints(dst []*endpoint, eps map[string]*endpoint) []*endpoint {
	for _, ep := range eps {
		dst = append(dst, ep)
	}
	return dst
}

// route builds one app's route; nil when there is no such app.
func (b *builder) route(s *state, app string) *route {
	a, ok := s.apps[app]
	if !ok {
		return nil
	}
	rt := &route{
		app:         app,
		maintenance: a.Maintenance,
		blank:       !a.Released,
		web:         s.forms[app].Types["web"].Quantity,
	}
	old, fresh := b.endpoints[app], map[string]*endpoint{}
	for key, d := range s.dynos[app] {
		if d.Type != "web" || s.lost[d.Host] {
			continue
		}
		switch {
		case d.State == grid.DynoUp && d.Addr != "":
			ep := old[key]
			if ep == nil || ep.addr != d.Addr || ep.dyno != d.Name || ep.id != d.ID {
				ep = b.newEndpoint(d.Name, d.Addr)
				ep.id, ep.host = d.ID, d.Host
			}
			fresh[key] = ep
			rt.endpoints = append(rt.endpoints, ep)
		case d.State == grid.DynoStarting || d.State == grid.DynoUp:
			rt.starting++
		case d.State == grid.DynoCrashed:
			rt.crashed++
		}
	}
	sort.Slice(rt.endpoints, func(i, j int) bool { return rt.endpoints[i].dyno < rt.endpoints[j].dyno })
	b.endpoints[app] = fresh
	return rt
}
