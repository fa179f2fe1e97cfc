package manager

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/dynogrid/grid/internal/grid"
)

// Only reports of routers heard from live, within HostTimeout, count,
// oldest first; and only of dynos still assigned, web, of the app named,
// and up.
func TestHungReports(t *testing.T) {
	f := newFixture().scale("web", 3).
		assign("d1", "h1", "web.1", 3, 0, grid.DynoUp).
		assign("d2", "h2", "web.2", 3, 0, grid.DynoStarting).
		assign("d3", "h1", "web.3", 3, 0, grid.DynoUp).
		assign("w1", "h2", "worker.1", 3, 0, grid.DynoUp)
	report := func(id string, heard bool, seen time.Time, hung ...grid.HungDyno) {
		f.v.routers[id] = seenRouter{RouterState: grid.RouterState{ID: id, Hung: hung}, Seen: seen, Heard: heard}
	}
	h := func(id, app string, since int) grid.HungDyno {
		return grid.HungDyno{ID: id, App: app, Since: t0.Add(time.Duration(since) * time.Second)}
	}
	report("live", true, t0, h("d3", "a", 2), h("d1", "a", 1), h("d2", "a", 0), h("w1", "a", 0), h("gone", "a", 0), h("d1", "b", 0))
	report("stale", false, t0, h("d1", "a", 0))                   // its record from before the sync
	report("dead", true, t0.Add(-7*time.Second), h("d3", "a", 0)) // silent past HostTimeout

	var got []string
	for _, r := range liveHungReports(f.v, t0, testTiming.HostTimeout) {
		if replaceable(f.v, r) {
			got = append(got, r.router+"/"+r.ID)
		}
	}
	if diff := cmp.Diff([]string{"live/d1", "live/d3"}, got); diff != "" {
		t.Errorf("reports acted on (-want +got):\n%s", diff)
	}
}
