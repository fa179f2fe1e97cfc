package api

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/dynogrid/grid/internal/grid"
	"github.com/dynogrid/grid/internal/schema"
	"github.com/dynogrid/grid/internal/store"
)

// testHosts is a provider as cmd/grid wires one: Add records the host's
// control record; Fail works on netns hosts only.
type testHosts struct {
	st     *store.Store
	failed []string
	cuts   []string // "cut h3", "heal h3"
}

func (h *testHosts) Add(ctx context.Context) (grid.HostControl, error) {
	return h.st.UpdateHostControl(ctx, "h3", func(c *grid.HostControl) error {
		c.Provider, c.Handle, c.Since = "netns", "gridh3", time.Now().UTC()
		return nil
	})
}

func (h *testHosts) Fail(ctx context.Context, id string) error {
	if err := h.netns(ctx, id, "fail"); err != nil {
		return err
	}
	h.failed = append(h.failed, id)
	return nil
}

func (h *testHosts) Cut(ctx context.Context, id string, cut bool) error {
	if err := h.netns(ctx, id, "be cut off"); err != nil {
		return err
	}
	h.cuts = append(h.cuts, map[bool]string{true: "cut ", false: "heal "}[cut]+id)
	return nil
}

func (h *testHosts) netns(ctx context.Context, id, what string) error {
	ctls, err := h.st.HostControls(ctx)
	if err != nil {
		return err
	}
	for _, c := range ctls {
		if c.ID != id {
			continue
		}
		if c.Provider != "netns" {
			return fmt.Errorf("host %s was not made by the netns provider; only netns hosts can %s: %w", id, what, grid.ErrInvalid)
		}
		return nil
	}
	return fmt.Errorf("host %s: %w", id, grid.ErrNotFound)
}

func TestHostsWithoutProvider(t *testing.T) {
	ta := startAPI(t)
	var hosts []schema.Host
	ta.do("GET", "/hosts", nil).want(t, 200, &hosts)
	if len(hosts) != 0 {
		t.Errorf("hosts %+v", hosts)
	}
	const msg = `^no host provider configured; start grid with --hosts or --provider$`
	ta.do("POST", "/hosts", nil).wantError(t, 501, "not_implemented", msg)
	ta.do("POST", "/hosts/h1/actions/fail", nil).wantError(t, 501, "not_implemented", msg)
	ta.do("GET", "/hosts/h1/token", nil).wantError(t, 501, "not_implemented", "cannot hand out join passwords")
	ta.do("GET", "/hosts/h1", nil).wantError(t, 404, "not_found", "^Couldn't find that host.$")
}

func TestHosts(t *testing.T) {
	prov := &testHosts{}
	ta := startAPI(t, func(c *Config) {
		c.Hosts = prov
		c.RolePassword = func(r store.Role) string { return "password-of-" + string(r.Kind) + "-" + r.ID }
	})
	prov.st = ta.store
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Second)
	ta.s.now = func() time.Time { return now }
	started := now.Add(-time.Hour)
	for _, h := range []grid.Host{
		{ID: "h10", Addr: "10.199.0.11", Subnet: "10.208.144.0/20", Cores: 2, MemoryMB: 8192, StartedAt: started, HeartbeatAt: now},
		{ID: "h1", Addr: "10.199.0.2", Subnet: "10.208.0.0/20", Cores: 2, MemoryMB: 4096, StartedAt: started, HeartbeatAt: now.Add(-2 * time.Second)},
		{ID: "h2", Addr: "10.199.0.3", Subnet: "10.208.16.0/20", Cores: 4, MemoryMB: 4096, StartedAt: started, HeartbeatAt: now.Add(-7 * time.Second)},
	} {
		if err := ta.store.PutHost(ctx, h); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range []grid.Dyno{
		{ID: "d1", Host: "h1", App: "hello", Name: "web.1", Type: "web", Size: "basic", State: grid.DynoUp},
		{ID: "d2", Host: "h1", App: "hello", Name: "web.2", Type: "web", Size: "standard-2x", State: grid.DynoStarting},
		{ID: "d3", Host: "h2", App: "other", Name: "worker.1", Type: "worker", Size: "standard-1x", State: grid.DynoUp},
	} {
		if err := ta.store.PutDyno(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := ta.store.UpdateHostControl(ctx, "h10", func(c *grid.HostControl) error {
		c.Draining, c.Provider, c.Handle, c.Since = true, "netns", "gridh10", started
		return nil
	}); err != nil {
		t.Fatal(err)
	}

	var hosts []schema.Host
	ta.do("GET", "/hosts", nil).want(t, 200, &hosts)
	want := []schema.Host{
		{ID: "h1", Name: "h1", Addr: "10.199.0.2", Subnet: "10.208.0.0/20", State: "up", Cores: 2,
			Memory: schema.HostMemory{TotalMB: 4096, ReservedMB: 1536, FreeMB: 2560}, DynoCount: 2,
			CreatedAt: started, UpdatedAt: now.Add(-2 * time.Second)},
		{ID: "h2", Name: "h2", Addr: "10.199.0.3", Subnet: "10.208.16.0/20", State: "lost", Cores: 4,
			Memory: schema.HostMemory{TotalMB: 4096, ReservedMB: 512, FreeMB: 3584}, DynoCount: 1,
			CreatedAt: started, UpdatedAt: now.Add(-7 * time.Second)},
		{ID: "h10", Name: "h10", Addr: "10.199.0.11", Subnet: "10.208.144.0/20", State: "draining", Cores: 2,
			Memory: schema.HostMemory{TotalMB: 8192, FreeMB: 8192}, Provider: "netns", Handle: "gridh10",
			CreatedAt: started, UpdatedAt: now},
	}
	if diff := cmp.Diff(want, hosts); diff != "" {
		t.Errorf("hosts (-want +got):\n%s", diff)
	}
	r := ta.do("GET", "/hosts", nil, "Range", "id ..; max=2")
	r.want(t, http.StatusPartialContent, &hosts)
	if len(hosts) != 2 || hosts[1].ID != "h2" || r.header.Get("Next-Range") != "id ]h2..; max=2" {
		t.Errorf("first page %v, Next-Range %q", hosts, r.header.Get("Next-Range"))
	}

	// hosts:add: the new host shows as starting until it registers.
	var added schema.Host
	ta.do("POST", "/hosts", nil).want(t, http.StatusAccepted, &added)
	if added.ID != "h3" || added.State != "starting" || added.Provider != "netns" || added.Handle != "gridh3" {
		t.Errorf("added %+v", added)
	}
	var h3 schema.Host
	ta.do("GET", "/hosts/h3", nil).want(t, 200, &h3)
	if h3.State != "starting" {
		t.Errorf("h3 %+v", h3)
	}

	// hosts:drain records the wish; the manager acts on it.
	var drained schema.Host
	ta.do("POST", "/hosts/h1/actions/drain", nil).want(t, http.StatusAccepted, &drained)
	if drained.State != "draining" {
		t.Errorf("drained %+v", drained)
	}
	ctls, _ := ta.store.HostControls(ctx)
	if i := indexOfControl(ctls, "h1"); i < 0 || !ctls[i].Draining || ctls[i].Since.IsZero() {
		t.Errorf("control records %+v", ctls)
	}
	ta.do("POST", "/hosts/h9/actions/drain", nil).wantError(t, 404, "not_found", "host")

	// hosts:fail
	ta.do("POST", "/hosts/h3/actions/fail", nil).want(t, http.StatusAccepted, nil)
	ta.do("POST", "/hosts/h1/actions/fail", nil).wantError(t, 422, "invalid_params", "^fail host h1: host h1 was not made by the netns provider; only netns hosts can fail$")
	ta.do("POST", "/hosts/h9/actions/fail", nil).wantError(t, 404, "not_found", "^Couldn't find that host.$")
	if !cmp.Equal(prov.failed, []string{"h3"}) {
		t.Errorf("failed %v", prov.failed)
	}

	// hosts:cut and hosts:heal
	ta.do("POST", "/hosts/h3/actions/cut", nil).want(t, http.StatusAccepted, nil)
	ta.do("POST", "/hosts/h3/actions/heal", nil).want(t, http.StatusAccepted, nil)
	ta.do("POST", "/hosts/h1/actions/cut", nil).wantError(t, 422, "invalid_params", "^change host h1's link: host h1 was not made by the netns provider; only netns hosts can be cut off$")
	ta.do("POST", "/hosts/h9/actions/heal", nil).wantError(t, 404, "not_found", "^Couldn't find that host.$")
	if !cmp.Equal(prov.cuts, []string{"cut h3", "heal h3"}) {
		t.Errorf("cuts %v", prov.cuts)
	}

	// hosts:token
	var tok schema.HostToken
	ta.do("GET", "/hosts/h7/token", nil).want(t, 200, &tok)
	if tok.Password != "password-of-host-h7" {
		t.Errorf("token %+v", tok)
	}
	ta.do("GET", "/routers/r2/token", nil).want(t, 200, &tok)
	if tok.Password != "password-of-router-r2" {
		t.Errorf("router token %+v", tok)
	}
	ta.do("GET", "/hosts/a.b/token", nil).wantError(t, 422, "invalid_params", `id "a.b" must be`)
}

func indexOfControl(cs []grid.HostControl, id string) int {
	for i, c := range cs {
		if c.ID == id {
			return i
		}
	}
	return -1
}
