package manager

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/dynogrid/grid/internal/grid"
)

// nopProvider is only compared with nil by decideCapacity.
type nopProvider struct{}

func (nopProvider) Provision(context.Context) (grid.HostControl, error) {
	return grid.HostControl{}, nil
}
func (nopProvider) Release(context.Context, grid.HostControl) error { return nil }

func TestDecideCapacity(t *testing.T) {
	grace := 5 * time.Minute
	// fill gives h1 and h2 (8 GB each) n standard-1x dynos each.
	fill := func(n int) func(*fixture) {
		return func(f *fixture) {
			for i := range n {
				for _, h := range []string{"h1", "h2"} {
					f.assign(h+string(rune('a'+i)), h, "web.1", 3, 0, grid.DynoUp)
				}
			}
		}
	}
	spare := func(id string, provider string) func(*fixture) {
		return func(f *fixture) {
			f.v.hosts[id] = seenHost{Host: grid.Host{ID: id, MemoryMB: 8192, Cores: 2}, Seen: t0.Add(grace), Heard: true}
			if provider != "" {
				f.v.controls[id] = grid.HostControl{ID: id, Provider: provider, Handle: "handle-" + id}
			}
		}
	}
	tests := []struct {
		name     string
		setup    []func(*fixture)
		cap      func(*capacity)
		noProv   bool
		unplaced int
		want     string // "provision", "drain h3", "release h3", or "" for nothing
	}{
		{name: "enough headroom: nothing", setup: []func(*fixture){fill(2)}},
		{name: "short of headroom: provision", setup: []func(*fixture){fill(9)}, want: "provision"},
		{name: "short, no provider: nothing", setup: []func(*fixture){fill(9)}, noProv: true},
		{name: "short, already provisioning", setup: []func(*fixture){fill(9)}, cap: func(c *capacity) { c.provisioning = true }},
		{name: "short, a provisioned host has not joined", setup: []func(*fixture){fill(9)}, cap: func(c *capacity) { c.joining["h9"] = t0 }},
		{name: "short, after a failure", setup: []func(*fixture){fill(9)}, cap: func(c *capacity) { c.retryAt = t0.Add(grace + time.Second) }},
		{name: "unplaced dynos: provision", setup: []func(*fixture){fill(1)}, unplaced: 512, want: "provision"},
		{name: "empty provisioned host past the grace: drain", setup: []func(*fixture){fill(1), spare("h3", "netns")}, want: "drain h3"},
		{name: "empty host joined by hand: kept", setup: []func(*fixture){fill(1), spare("h3", "")}},
		{name: "empty host whose release would cut into the headroom: kept", setup: []func(*fixture){fill(9), spare("h3", "netns")}},
		{name: "empty host still stopping a dyno: kept", setup: []func(*fixture){fill(1), spare("h3", "netns"), func(f *fixture) {
			f.dyno("stopping", "h3", "web.9", grid.DynoDown, t0)
		}}},
		{name: "drain already requested", setup: []func(*fixture){fill(1), spare("h3", "netns")}, cap: func(c *capacity) { c.draining["h3"] = true }},
		{name: "drained provisioned host, empty: release", setup: []func(*fixture){fill(1), spare("h3", "netns"), func(f *fixture) { f.drainKeep("h3") }}, want: "release h3"},
		{name: "drained host with a dyno: not yet", setup: []func(*fixture){fill(1), spare("h3", "netns"), func(f *fixture) {
			f.drainKeep("h3")
			f.assign("d9", "h3", "web.9", 3, 0, grid.DynoUp)
		}}},
		{name: "drained host joined by hand: never released", setup: []func(*fixture){fill(1), spare("h3", ""), func(f *fixture) { f.drain("h3") }}},
		{name: "short, a host added by hand has not joined", setup: []func(*fixture){fill(9), func(f *fixture) {
			f.v.controls["h9"] = grid.HostControl{ID: "h9", Provider: "netns"}
			f.v.controlSeen["h9"] = t0.Add(grace - time.Minute)
		}}},
		{name: "a provisioned host that never joined: release", setup: []func(*fixture){fill(1), func(f *fixture) {
			f.v.controls["h9"] = grid.HostControl{ID: "h9", Provider: "netns"}
			f.v.controlSeen["h9"] = t0.Add(grace - 3*time.Minute)
		}}, want: "release h9"},
		{name: "a provisioned host lost past LostRelease: release", setup: []func(*fixture){fill(1), spare("h3", "netns"), lostSince("h3", t0)}, want: "release h3"},
		{name: "a provisioned host lost briefly: kept", setup: []func(*fixture){fill(1), spare("h3", "netns"), lostSince("h3", t0.Add(grace-time.Minute))}},
		{name: "a host joined by hand, lost long: kept", setup: []func(*fixture){fill(1), spare("h3", ""), lostSince("h3", t0)}},
		{name: "release in flight", setup: []func(*fixture){fill(1), spare("h3", "netns"), func(f *fixture) { f.drainKeep("h3") }}, cap: func(c *capacity) { c.releasing["h3"] = true }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture()
			for h, sh := range f.v.hosts {
				sh.Seen = t0.Add(grace)
				f.v.hosts[h] = sh
			}
			for _, fn := range tt.setup {
				fn(f)
			}
			c := newCapacity()
			c.trackEmpty(f.v, t0, testTiming.HostTimeout) // hosts empty now stay so until the decision
			if tt.cap != nil {
				tt.cap(&c)
			}
			cfg := Config{HostTimeout: testTiming.HostTimeout, EmptyGrace: grace, MinHosts: 1, ProvisionTimeout: 2 * time.Minute, LostRelease: 4 * time.Minute, Provider: nopProvider{}}
			if tt.noProv {
				cfg.Provider = nil
			}
			d := decideCapacity(f.v, &c, t0.Add(grace), cfg, tt.unplaced)
			var got []string
			if d.Provision {
				got = append(got, "provision")
			}
			for _, id := range d.Drain {
				got = append(got, "drain "+id)
			}
			for _, hc := range d.Release {
				got = append(got, "release "+hc.ID)
			}
			var want []string
			if tt.want != "" {
				want = []string{tt.want}
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("decision (-want +got):\n%s\nplan %+v", diff, d.Plan)
			}
		})
	}
}

// lostSince makes host id last heard from at seen.
func lostSince(id string, seen time.Time) func(*fixture) {
	return func(f *fixture) {
		h := f.v.hosts[id]
		h.Seen = seen
		f.v.hosts[id] = h
	}
}

// drainKeep marks a host draining, keeping its provider.
func (f *fixture) drainKeep(id string) {
	c := f.v.controls[id]
	c.ID, c.Draining = id, true
	f.v.controls[id] = c
}
