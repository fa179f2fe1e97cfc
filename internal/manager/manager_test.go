package manager_test

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/dynogrid/grid/internal/grid"
	"github.com/dynogrid/grid/internal/manager"
	"github.com/dynogrid/grid/internal/store"
	"github.com/dynogrid/grid/internal/store/storetest"
)

func TestManagerLifecycle(t *testing.T) {
	t.Parallel()
	st := storetest.Start(t)
	s := newSim(t, st, false)
	s.addHost("h1", 65536, 2)
	s.addHost("h2", 65536, 2)
	seedApp(t, st, 2)
	startManager(t, st, manager.Config{HostTimeout: time.Minute})

	as := waitAssignments(t, st, "web.1 and web.2", func(as []grid.Assignment) bool { return names(as) == "web.1 v1,web.2 v1" })
	if as[0].Host == as[1].Host {
		t.Errorf("both web dynos on %s; want them spread", as[0].Host)
	}
	a := as[0]
	if a.SlugID != "slug1" || a.Command != "bin/web" || a.Env["GREETING"] != "hi" || a.UID != 200001 || a.Size != "standard-1x" || a.CPUs != "0" {
		t.Errorf("assignment %+v", a)
	}
	hostUp(t, st, as)

	// A new release starts new dynos; the old ones stay until those are up.
	release(t, st, "slug2")
	as = waitAssignments(t, st, "new release placed", func(as []grid.Assignment) bool { return len(as) == 4 })
	var fresh []grid.Assignment
	for _, a := range as {
		if a.Release == 2 {
			fresh = append(fresh, a)
		}
	}
	hostUp(t, st, fresh[:1])
	waitAssignments(t, st, "old web.1 removed", func(as []grid.Assignment) bool { return names(as) == "web.1 v2,web.2 v1,web.2 v2" })
	hostUp(t, st, fresh[1:])
	waitAssignments(t, st, "old web.2 removed", func(as []grid.Assignment) bool { return names(as) == "web.1 v2,web.2 v2" })

	scale(t, st, "web", 0)
	waitAssignments(t, st, "scale to 0", func(as []grid.Assignment) bool { return len(as) == 0 })
}

func TestManagerScaleLatency(t *testing.T) {
	t.Parallel()
	st := storetest.Start(t)
	newSim(t, st, false).addHost("h1", 65536, 2)
	seedApp(t, st, 0)
	startManager(t, st, manager.Config{HostTimeout: time.Minute})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ch, err := st.WatchAssignments(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	for ev := range ch {
		if ev.Synced {
			break
		}
	}
	var worst, total time.Duration
	const rounds = 20
	for i := 1; i <= rounds; i++ {
		begin := time.Now()
		scale(t, st, "web", i)
		want := grid.DynoName("web", i)
		for ev := range ch {
			if !ev.Deleted && ev.Value.Name == want {
				break
			}
		}
		d := time.Since(begin)
		total += d
		worst = max(worst, d)
	}
	t.Logf("ps:scale → assignment written: mean %v, worst %v over %d scale-ups", total/rounds, worst, rounds)
	// The first scale-up may wait for the host's first heartbeat after
	// the manager's sync (one beat).
	if worst > time.Second {
		t.Errorf("worst latency %v", worst)
	}
}

// Twelve dynos on three two-core hosts: four per host, two per core.
func TestManagerSpreadAndPins(t *testing.T) {
	t.Parallel()
	st := storetest.Start(t)
	s := newSim(t, st, true)
	for _, h := range []string{"h1", "h2", "h3"} {
		s.addHost(h, 8192, 2)
	}
	seedApp(t, st, 0)
	startManager(t, st, manager.Config{HostTimeout: time.Minute})
	scale(t, st, "web", 12)
	as := waitAssignments(t, st, "12 web dynos", func(as []grid.Assignment) bool { return len(as) == 12 })
	perCore := map[string]int{}
	for _, a := range as {
		perCore[a.Host+"/"+a.CPUs]++
	}
	for _, h := range []string{"h1", "h2", "h3"} {
		if n := perHost(as)[h]; n != 4 {
			t.Errorf("%s runs %d dynos, want 4: %s", h, n, describe(as))
		}
		for _, c := range []string{"0", "1"} {
			if n := perCore[h+"/"+c]; n != 2 {
				t.Errorf("%s core %s has %d dynos, want 2: %s", h, c, n, describe(as))
			}
		}
	}
}

// A host cut off is lost after HostTimeout; its dynos run elsewhere soon
// after, its records are kept (it may still serve), and when it comes back
// its agent stops the dynos that were replaced: the count is exact again.
func TestManagerLostHost(t *testing.T) {
	t.Parallel()
	st := storetest.Start(t)
	s := newSim(t, st, true)
	for _, h := range []string{"h1", "h2", "h3"} {
		s.addHost(h, 8192, 2)
	}
	s.addRouter("r1")
	seedApp(t, st, 6)
	const timeout = 500 * time.Millisecond
	startManager(t, st, manager.Config{HostTimeout: timeout, ForgetAfter: time.Minute})
	waitUp(t, st, 6, "")

	cutAt := time.Now()
	s.cut("h3", true)
	waitUp(t, st, 6, "h3")
	took := time.Since(cutAt)
	t.Logf("host cut off → its dynos up elsewhere in %v (HostTimeout %v)", took, timeout)
	if took > timeout+time.Second {
		t.Errorf("replacement took %v", took)
	}
	waitAssignments(t, st, "h3's assignments deleted", func(as []grid.Assignment) bool { return len(as) == 6 && perHost(as)["h3"] == 0 })
	if ds := dynosOn(t, st, "h3"); len(ds) != 2 {
		t.Errorf("the lost host's records were forgotten early: %d left", len(ds))
	}
	lostMark := func(want bool) func() error {
		return func() error {
			cs, err := st.HostControls(context.Background())
			if err != nil {
				return err
			}
			for _, c := range cs {
				if c.Lost != (c.ID == "h3" && want) {
					return fmt.Errorf("control records %+v", cs)
				}
			}
			return nil
		}
	}
	waitFor(t, 5*time.Second, "h3 marked lost for routers, and only h3", lostMark(true))

	s.cut("h3", false)
	waitFor(t, 5*time.Second, "h3's lost mark cleared", lostMark(false))
	waitFor(t, 5*time.Second, "exactly 6 dyno records", func() error {
		ds, err := st.Dynos(context.Background(), "hello")
		if err != nil || len(ds) != 6 {
			return fmt.Errorf("%d records, %v", len(ds), err)
		}
		return nil
	})
	if as, _ := assignments(st); len(as) != 6 {
		t.Errorf("assignments after the host returned: %s", describe(as))
	}
}

// The old web dyno is deleted only once every live router has applied the
// revision its successor came up in, or after RouterWait.
func TestManagerRouterGating(t *testing.T) {
	t.Parallel()
	st := storetest.Start(t)
	s := newSim(t, st, true)
	s.addHost("h1", 8192, 2)
	s.addHost("h2", 8192, 2)
	s.addRouter("r1")
	s.addRouter("r2")
	seedApp(t, st, 1)
	const wait = 3 * time.Second
	startManager(t, st, manager.Config{HostTimeout: time.Second, RouterWait: wait})
	waitUp(t, st, 1, "")

	s.freezeRouter("r2", true)
	release(t, st, "slug2")
	waitFor(t, 5*time.Second, "v2 up", func() error { return upAt(st, 2) })
	observe(t, 500*time.Millisecond, "old dyno kept while r2 lags", func() error {
		if as, _ := assignments(st); names(as) != "web.1 v1,web.1 v2" {
			return fmt.Errorf("assignments %s", describe(as))
		}
		return nil
	})
	acked := time.Now()
	s.freezeRouter("r2", false)
	waitAssignments(t, st, "old dyno gone once r2 acks", func(as []grid.Assignment) bool { return names(as) == "web.1 v2" })
	if d := time.Since(acked); d > wait/2 {
		t.Errorf("deleted %v after the ack", d)
	}

	s.freezeRouter("r2", true)
	release(t, st, "slug3")
	waitFor(t, 5*time.Second, "v3 up", func() error { return upAt(st, 3) })
	up := time.Now()
	waitAssignments(t, st, "old dyno gone after RouterWait", func(as []grid.Assignment) bool { return names(as) == "web.1 v3" })
	if d := time.Since(up); d < wait-500*time.Millisecond || d > wait+time.Second {
		t.Errorf("deleted %v after the new dyno was up; RouterWait is %v", d, wait)
	}
}

// fakeProvider starts simulated hosts and stops them.
type fakeProvider struct {
	s        *sim
	mu       chan struct{} // 1-slot lock
	n        int
	released []string
}

func newFakeProvider(s *sim) *fakeProvider {
	return &fakeProvider{s: s, mu: make(chan struct{}, 1)}
}

func (p *fakeProvider) Provision(ctx context.Context) (grid.HostControl, error) {
	p.mu <- struct{}{}
	defer func() { <-p.mu }()
	p.n++
	id := fmt.Sprintf("p%d", p.n)
	p.s.addHost(id, 4096, 2)
	return grid.HostControl{ID: id, Provider: "fake", Handle: "vm-" + id}, nil
}

func (p *fakeProvider) Release(ctx context.Context, h grid.HostControl) error {
	p.mu <- struct{}{}
	defer func() { <-p.mu }()
	if h.Provider != "fake" || h.Handle != "vm-"+h.ID {
		return fmt.Errorf("release of %+v: not ours", h)
	}
	p.s.removeHost(h.ID)
	p.released = append(p.released, h.ID)
	return nil
}

func (p *fakeProvider) stats() (provisioned int, released []string) {
	p.mu <- struct{}{}
	defer func() { <-p.mu }()
	return p.n, append([]string(nil), p.released...)
}

// Capacity follows demand: a host is provisioned when free memory drops
// below the largest host's, or dynos find no room; empty provisioned
// hosts are drained and released after EmptyGrace; a host joined by hand
// stays.
func TestManagerProvider(t *testing.T) {
	t.Parallel()
	st := storetest.Start(t)
	s := newSim(t, st, true)
	s.addHost("h1", 4096, 2)
	p := newFakeProvider(s)
	seedApp(t, st, 0)
	startManager(t, st, manager.Config{HostTimeout: 500 * time.Millisecond, Provider: p, EmptyGrace: 300 * time.Millisecond})

	scale(t, st, "web", 2) // free 3072 MB < 4096: one more host
	waitFor(t, 10*time.Second, "p1 provisioned and recorded", func() error {
		if err := hostKnown(st, "p1"); err != nil {
			return err
		}
		c, err := control(st, "p1")
		if err == nil && (c.Provider != "fake" || c.Handle != "vm-p1" || c.Since.IsZero()) {
			t.Fatalf("control record %+v", c)
		}
		return err
	})

	scale(t, st, "web", 20) // 10 GB: more than h1 and p1 hold
	waitUp(t, st, 20, "")
	if n, _ := p.stats(); n < 2 {
		t.Errorf("provisioned %d hosts, want more for unplaced dynos", n)
	}
	waitFor(t, 10*time.Second, "headroom restored", func() error {
		hs, err := st.Hosts(context.Background())
		if err != nil {
			return err
		}
		free := 4096 * len(hs)
		free -= 20 * 512
		if free < 4096 {
			return fmt.Errorf("%d hosts, %d MB free", len(hs), free)
		}
		return nil
	})

	scale(t, st, "web", 0)
	waitFor(t, 10*time.Second, "provisioned hosts released", func() error {
		n, released := p.stats()
		hs, err := st.Hosts(context.Background())
		if err != nil {
			return err
		}
		cs, err := st.HostControls(context.Background())
		if err != nil {
			return err
		}
		if len(released) != n || len(hs) != 1 || hs[0].ID != "h1" || len(cs) != 0 {
			return fmt.Errorf("provisioned %d, released %v, hosts %d, controls %d", n, released, len(hs), len(cs))
		}
		return nil
	})
}

// Draining a host by hand (grid hosts:drain) moves its dynos
// start-before-stop, then releases it.
func TestManagerDrain(t *testing.T) {
	t.Parallel()
	st := storetest.Start(t)
	s := newSim(t, st, true)
	s.addHost("h1", 65536, 2)
	s.addHost("p1", 8192, 2)
	p := newFakeProvider(s)
	if _, err := st.UpdateHostControl(context.Background(), "p1", func(c *grid.HostControl) error {
		c.Provider, c.Handle = "fake", "vm-p1"
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	seedApp(t, st, 4)
	startManager(t, st, manager.Config{HostTimeout: 500 * time.Millisecond, Provider: p, Headroom: 1})
	as := waitUp(t, st, 4, "")
	if perHost(as)["p1"] != 2 {
		t.Fatalf("not spread: %s", describe(as))
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	events, err := st.WatchAssignments(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.UpdateHostControl(context.Background(), "p1", func(c *grid.HostControl) error {
		c.Draining, c.Since = true, time.Now()
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	// Every name moved off p1 is put on h1 before it is deleted on p1.
	onH1 := map[string]bool{}
	moved := 0
	for ev := range events {
		switch {
		case ev.Synced:
		case !ev.Deleted && ev.Value.Host == "h1":
			onH1[ev.Value.Name] = true
		case ev.Deleted && ev.Key[:3] == "p1.":
			name := nameOf(as, ev.Key[3:])
			if !onH1[name] {
				t.Errorf("%s deleted on p1 before its successor was placed", name)
			}
			moved++
		}
		if moved == 2 {
			break
		}
	}
	if moved != 2 {
		t.Fatalf("%d dynos moved off p1, want 2", moved)
	}
	waitFor(t, 10*time.Second, "p1 released", func() error {
		if _, released := p.stats(); len(released) != 1 || released[0] != "p1" {
			return fmt.Errorf("released %v", released)
		}
		return hostGone(st, "p1")
	})
	waitUp(t, st, 4, "p1")
}

// When every host falls silent at once, the manager suspects its own view
// and deletes nothing, places nothing; when they are heard again, all is
// as it was.
func TestManagerSilence(t *testing.T) {
	t.Parallel()
	st := storetest.Start(t)
	s := newSim(t, st, true)
	s.addHost("h1", 8192, 2)
	s.addHost("h2", 8192, 2)
	seedApp(t, st, 4)
	const timeout = 500 * time.Millisecond
	startManager(t, st, manager.Config{HostTimeout: timeout, ForgetAfter: time.Minute})
	before := ids(waitUp(t, st, 4, ""))

	s.cutAll(true)
	unchanged := func() error {
		as, err := assignments(st)
		if err != nil {
			return err
		}
		if got := ids(as); got != before {
			return fmt.Errorf("assignments changed: %s", describe(as))
		}
		ds, err := st.Dynos(context.Background(), "hello")
		if err != nil || len(ds) != 4 {
			return fmt.Errorf("%d dyno records, %v", len(ds), err)
		}
		return nil
	}
	observe(t, 4*timeout, "nothing changes while all hosts are silent", unchanged)
	s.cutAll(false)
	observe(t, 4*timeout, "nothing changes when they return", unchanged)
}

// A NATS outage longer than HostTimeout loses nobody: the manager resyncs
// and measures hosts' silence from the reconnection.
func TestManagerNATSOutage(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	srv, err := store.StartServer(store.ServerConfig{Dir: dir, Secret: storetest.Secret})
	if err != nil {
		t.Fatal(err)
	}
	url := srv.ClientURL()
	t.Cleanup(func() { srv.Shutdown() })
	open := func(name string) *store.Store {
		role := store.Role{Kind: store.RoleServer, ID: name}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		st, err := store.Open(ctx, store.Config{URL: url, Role: role, Password: role.Password(storetest.Secret), Name: name})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(st.Close)
		return st
	}
	st, hosts := open("manager"), open("hosts")
	s := newSim(t, hosts, true)
	s.addHost("h1", 8192, 2)
	s.addHost("h2", 8192, 2)
	seedApp(t, st, 4)
	const timeout = 500 * time.Millisecond
	startManager(t, st, manager.Config{HostTimeout: timeout, ForgetAfter: time.Minute})
	before := ids(waitUp(t, st, 4, ""))

	srv.Shutdown()
	time.Sleep(4 * timeout) // the outage itself
	listen := url[len("nats://"):]
	if srv, err = store.StartServer(store.ServerConfig{Dir: dir, Listen: listen, Secret: storetest.Secret}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "clients back", func() error { _, err := assignments(st); return err })
	observe(t, 6*timeout, "nothing replaced after the outage", func() error {
		as, err := assignments(st)
		if err != nil {
			return nil // still reconnecting
		}
		if got := ids(as); got != before {
			return fmt.Errorf("assignments changed: %s", describe(as))
		}
		return nil
	})
}

// Old releases' slugs are deleted beyond the retention; slugs a dyno runs
// stay, and so do the release records.
func TestManagerSlugGC(t *testing.T) {
	t.Parallel()
	st := storetest.Start(t)
	s := newSim(t, st, true)
	s.addHost("h1", 8192, 2)
	ctx := context.Background()
	if err := st.CreateApp(ctx, grid.App{ID: store.NewID(), Name: "hello", UID: 200001}); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 5; i++ {
		id := fmt.Sprintf("s%d", i)
		if err := st.PutSlug(ctx, grid.Slug{ID: id, App: "hello"}, strings.NewReader("slug "+id)); err != nil {
			t.Fatal(err)
		}
		release(t, st, id)
	}
	// A one-off still running the first release.
	if err := st.PutAssignment(ctx, grid.Assignment{DynoID: "run1", App: "hello", Host: "h1", Name: "run.1", Type: "run", Release: 2, SlugID: "s1", OneOff: true, Size: "standard-1x"}); err != nil {
		t.Fatal(err)
	}
	startManager(t, st, manager.Config{HostTimeout: time.Second, SlugRetention: 2, SlugGCInterval: 50 * time.Millisecond})
	waitFor(t, 10*time.Second, "s2 and s3 deleted", func() error {
		sl, err := st.Slugs(ctx, "hello")
		if err != nil {
			return err
		}
		var got []string
		for _, x := range sl {
			got = append(got, x.ID)
		}
		sort.Strings(got)
		if strings.Join(got, ",") != "s1,s4,s5" {
			return fmt.Errorf("slugs %v", got)
		}
		return nil
	})
	if rs, err := st.Releases(ctx, "hello"); err != nil || len(rs) != 5 {
		t.Errorf("releases %d, %v; want all 5 kept", len(rs), err)
	}
	if _, err := st.OpenSlug(ctx, "s2"); !errors.Is(err, grid.ErrNotFound) {
		t.Errorf("s2's archive: %v", err)
	}
}

func TestManagerDeletedApp(t *testing.T) {
	t.Parallel()
	st := storetest.Start(t)
	newSim(t, st, false).addHost("h1", 65536, 2)
	seedApp(t, st, 1)
	startManager(t, st, manager.Config{HostTimeout: time.Minute})
	waitAssignments(t, st, "placed", func(as []grid.Assignment) bool { return len(as) == 1 })
	if err := st.DeleteApp(context.Background(), "hello"); err != nil {
		t.Fatal(err)
	}
	waitAssignments(t, st, "removed with the app", func(as []grid.Assignment) bool { return len(as) == 0 })
}

// waitUp waits until n assignments exist, none on host not (unless ""),
// each with an up dyno record, and returns them.
func waitUp(t *testing.T, st *store.Store, n int, not string) []grid.Assignment {
	t.Helper()
	var as []grid.Assignment
	waitFor(t, 10*time.Second, fmt.Sprintf("%d dynos up", n), func() error {
		var err error
		if as, err = assignments(st); err != nil {
			return err
		}
		ds, err := st.Dynos(context.Background(), "")
		if err != nil {
			return err
		}
		up := map[string]bool{}
		for _, d := range ds {
			up[d.ID] = d.State == grid.DynoUp
		}
		var ok []grid.Assignment
		for _, a := range as {
			if up[a.DynoID] && a.Host != not {
				ok = append(ok, a)
			}
		}
		if len(ok) != n || len(as) != n && not == "" {
			return fmt.Errorf("%d of %s up", len(ok), describe(as))
		}
		as = ok
		return nil
	})
	return as
}

// observe checks cond repeatedly for d; the test is about what does not
// happen in that time.
func observe(t *testing.T, d time.Duration, what string, cond func() error) {
	t.Helper()
	end := time.Now().Add(d)
	for time.Now().Before(end) {
		if err := cond(); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(10 * time.Millisecond) // polling interval
	}
}

func upAt(st *store.Store, release int) error {
	ds, err := st.Dynos(context.Background(), "hello")
	if err != nil {
		return err
	}
	for _, d := range ds {
		if d.Release == release && d.State == grid.DynoUp {
			return nil
		}
	}
	return fmt.Errorf("no dyno of v%d up", release)
}

func dynosOn(t *testing.T, st *store.Store, host string) []grid.Dyno {
	t.Helper()
	ds, err := st.HostDynos(context.Background(), host)
	if err != nil {
		t.Fatal(err)
	}
	return ds
}

func hostKnown(st *store.Store, id string) error {
	hs, err := st.Hosts(context.Background())
	if err != nil {
		return err
	}
	for _, h := range hs {
		if h.ID == id {
			return nil
		}
	}
	return fmt.Errorf("host %s not registered", id)
}

func hostGone(st *store.Store, id string) error {
	if hostKnown(st, id) == nil {
		return fmt.Errorf("host %s still registered", id)
	}
	cs, err := st.HostControls(context.Background())
	if err != nil {
		return err
	}
	for _, c := range cs {
		if c.ID == id {
			return fmt.Errorf("control record of %s remains", id)
		}
	}
	return nil
}

func control(st *store.Store, id string) (grid.HostControl, error) {
	cs, err := st.HostControls(context.Background())
	if err != nil {
		return grid.HostControl{}, err
	}
	for _, c := range cs {
		if c.ID == id {
			return c, nil
		}
	}
	return grid.HostControl{}, fmt.Errorf("no control record for %s", id)
}

func nameOf(as []grid.Assignment, dynoID string) string {
	for _, a := range as {
		if a.DynoID == dynoID {
			return a.Name
		}
	}
	return "?" + dynoID
}
