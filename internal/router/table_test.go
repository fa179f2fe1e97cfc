package router

import (
	"testing"

	"github.com/dynogrid/grid/internal/grid"
	"github.com/dynogrid/grid/internal/store"
)

func TestDecide(t *testing.T) {
	t.Parallel()
	up := []*endpoint{{dyno: "web.1"}}
	cases := []struct {
		name string
		rt   route
		fail *hError
		wait bool
	}{
		{"up", route{web: 1, endpoints: up}, nil, false},
		{"maintenance wins", route{web: 1, endpoints: up, maintenance: true}, errH80, false},
		{"up while scaled to 0 still serves", route{web: 0, endpoints: up}, nil, false},
		{"never deployed", route{blank: true}, errH81, false},
		{"scaled to 0", route{web: 0}, errH14, false},
		{"all crashed", route{web: 2, crashed: 2}, errH10, false},
		{"starting", route{web: 1, starting: 1}, nil, true},
		{"crashed and starting", route{web: 2, crashed: 1, starting: 1}, nil, true},
		{"wanted, not placed yet", route{web: 1}, nil, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			fail, wait := tc.rt.decide()
			if fail != tc.fail || wait != tc.wait {
				t.Errorf("decide = %v, %v; want %v, %v", fail, wait, tc.fail, tc.wait)
			}
		})
	}
}

func TestBuilderRoutes(t *testing.T) {
	t.Parallel()
	s := newState()
	b := newBuilder(makeEndpoint)
	s.applyApp(store.Event[grid.AppMeta]{Key: "shop", Value: grid.AppMeta{Name: "shop", Released: true}})
	s.applyFormation(store.Event[grid.Formation]{Key: "shop", Value: grid.Formation{Types: map[string]grid.FormationType{"web": {Quantity: 3}}}})
	dyno := func(id, name, typ string, st grid.DynoState, addr string) {
		s.applyDyno(store.Event[grid.Dyno]{Key: "h1.shop." + id, Value: grid.Dyno{ID: id, App: "shop", Name: name, Type: typ, State: st, Addr: addr}})
	}
	dyno("a", "web.2", "web", grid.DynoUp, "10.0.0.2:5000")
	dyno("b", "web.1", "web", grid.DynoUp, "10.0.0.1:5000")
	dyno("c", "web.3", "web", grid.DynoStarting, "")
	dyno("d", "worker.1", "worker", grid.DynoUp, "10.0.0.9:5000")
	dyno("e", "web.4", "web", grid.DynoCrashed, "")
	dyno("f", "web.5", "web", grid.DynoDown, "10.0.0.5:5000")
	s.applyDyno(store.Event[grid.Dyno]{Key: "h1.ghost.x", Value: grid.Dyno{App: "ghost", Type: "web", State: grid.DynoUp, Addr: "1.1.1.1:1"}})
	s.applyApp(store.Event[grid.AppMeta]{Synced: true})
	if s.loaded() {
		t.Fatal("loaded before every watch synced")
	}

	routes, gone := b.next(s, nil)
	if len(gone) != 0 {
		t.Errorf("first table retires %d endpoints", len(gone))
	}
	rt := routes["shop"]
	if rt == nil || len(rt.endpoints) != 2 || rt.endpoints[0].dyno != "web.1" || rt.endpoints[1].dyno != "web.2" {
		t.Fatalf("endpoints %+v", rt)
	}
	if rt.web != 3 || rt.starting != 1 || rt.crashed != 1 || rt.blank {
		t.Errorf("route %+v", rt)
	}
	if routes["ghost"] != nil {
		t.Error("dynos without an app record are routed")
	}

	// Endpoints survive rebuilds (their counters matter); an address
	// change makes a new one; a deleted dyno disappears.
	web1, web2 := rt.endpoints[0], rt.endpoints[1]
	web1.inflight.Store(7)
	dyno("a", "web.2", "web", grid.DynoUp, "10.0.0.22:5000")
	s.applyDyno(store.Event[grid.Dyno]{Key: "h1.shop.c", Deleted: true})
	next, gone := b.next(s, routes)
	rt2 := next["shop"]
	if rt2.endpoints[0] != web1 || rt2.endpoints[1].addr != "10.0.0.22:5000" || rt2.starting != 0 {
		t.Errorf("rebuilt route %+v", rt2)
	}
	if len(gone) != 1 || gone[0] != web2 {
		t.Errorf("retired %v, want the old web.2", gone)
	}
	if routes["shop"] != rt {
		t.Error("old table modified")
	}

	// A fresh sync (old nil) keeps the endpoints of dynos it still sees.
	fresh := newState()
	fresh.applyApp(store.Event[grid.AppMeta]{Key: "shop", Value: grid.AppMeta{Name: "shop", Released: true}})
	fresh.applyDyno(store.Event[grid.Dyno]{Key: "h1.shop.b", Value: grid.Dyno{ID: "b", App: "shop", Name: "web.1", Type: "web", State: grid.DynoUp, Addr: "10.0.0.1:5000"}})
	resynced, gone := b.next(fresh, nil)
	if eps := resynced["shop"].endpoints; len(eps) != 1 || eps[0] != web1 {
		t.Errorf("re-synced endpoints %v", eps)
	}
	if len(gone) != 1 || gone[0] != rt2.endpoints[1] {
		t.Errorf("re-sync retired %v, want the new web.2", gone)
	}

	s.applyApp(store.Event[grid.AppMeta]{Key: "shop", Deleted: true})
	last, gone := b.next(s, next)
	if last["shop"] != nil {
		t.Error("deleted app still routed")
	}
	if len(gone) != 1 || gone[0] != web1 {
		t.Errorf("deleting the app retired %v", gone)
	}
}

func TestLostHostsLeaveTheTable(t *testing.T) {
	t.Parallel()
	s := newState()
	b := newBuilder(makeEndpoint)
	s.applyApp(store.Event[grid.AppMeta]{Key: "shop", Value: grid.AppMeta{Name: "shop", Released: true}})
	s.applyFormation(store.Event[grid.Formation]{Key: "shop", Value: grid.Formation{Types: map[string]grid.FormationType{"web": {Quantity: 2}}}})
	for _, h := range []string{"h1", "h2"} {
		s.applyDyno(store.Event[grid.Dyno]{Key: h + ".shop." + h, Value: grid.Dyno{ID: h, App: "shop", Host: h, Name: "web.1", Type: "web", State: grid.DynoUp, Addr: h + ":5000"}})
	}
	s.applyHostControl(store.Event[grid.HostControl]{Key: "h2", Value: grid.HostControl{ID: "h2", Lost: true}})
	s.applyApp(store.Event[grid.AppMeta]{Synced: true})
	s.applyFormation(store.Event[grid.Formation]{Synced: true})
	s.applyDyno(store.Event[grid.Dyno]{Synced: true})
	if s.loaded() {
		t.Fatal("loaded before the host controls synced")
	}
	s.applyHostControl(store.Event[grid.HostControl]{Synced: true})
	addrs := func(routes map[string]*route) []string {
		var out []string
		for _, ep := range routes["shop"].endpoints {
			out = append(out, ep.addr)
		}
		return out
	}
	routes, _ := b.next(s, nil)
	if got := addrs(routes); len(got) != 1 || got[0] != "h1:5000" || routes["shop"].starting != 0 {
		t.Errorf("with h2 lost: endpoints %v, route %+v", got, routes["shop"])
	}

	// h1 lost too, h2 back: its dyno is routed again.
	s.applyHostControl(store.Event[grid.HostControl]{Key: "h1", Value: grid.HostControl{ID: "h1", Lost: true}})
	s.applyHostControl(store.Event[grid.HostControl]{Key: "h2", Value: grid.HostControl{ID: "h2"}})
	routes, gone := b.next(s, routes)
	if got := addrs(routes); len(got) != 1 || got[0] != "h2:5000" || len(gone) != 1 || gone[0].addr != "h1:5000" {
		t.Errorf("h1 lost, h2 back: endpoints %v, retired %v", got, gone)
	}
	// A control record deleted (host released) is not lost.
	s.applyHostControl(store.Event[grid.HostControl]{Key: "h1", Deleted: true})
	routes, _ = b.next(s, routes)
	if got := addrs(routes); len(got) != 2 {
		t.Errorf("h1's record gone: endpoints %v", got)
	}
}
