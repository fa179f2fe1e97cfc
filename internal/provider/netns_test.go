package provider

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/dynogrid/grid/internal/cgroupfs"
	"github.com/dynogrid/grid/internal/grid"
	"github.com/dynogrid/grid/internal/gridtest"
	"github.com/dynogrid/grid/internal/logs"
	"github.com/dynogrid/grid/internal/slug"
	"github.com/dynogrid/grid/internal/store"
)

var testSecret = []byte("provider-test-secret")

// netnsGrid is a real NATS server on the fabric and a netns provider
// whose hosts run the real grid binary.
type netnsGrid struct {
	st     *store.Store // server role
	p      *NetNS
	data   string
	slugID string
}

func startNetNS(t *testing.T) *netnsGrid {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates network namespaces")
	}
	exe := gridtest.Exe(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	fab, err := OpenFabric(ctx)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := store.StartServer(store.ServerConfig{Dir: t.TempDir(), Listen: FabricAddr.String() + ":0", Secret: testSecret})
	if err != nil {
		fab.Close()
		t.Fatal(err)
	}
	server := store.Role{Kind: store.RoleServer, ID: "test"}
	st, err := store.Open(ctx, store.Config{URL: srv.ClientURL(), Role: server, Password: server.Password(testSecret)})
	if err != nil {
		t.Fatal(err)
	}
	// Servers create the LOGS stream; hosts wait for it.
	lg, err := logs.Open(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	g := &netnsGrid{st: st, data: t.TempDir()}
	g.p, err = NewNetNS(NetNSConfig{
		Fabric: fab, Exe: exe, NATSURL: srv.ClientURL(), DataDir: g.data,
		Password:  func(id string) string { return store.Role{Kind: store.RoleHost, ID: id}.Password(testSecret) },
		StopGrace: 5 * time.Second, Logger: testLogger(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := g.p.Cleanup(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			g.dumpLogs(t)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := g.p.Cleanup(ctx); err != nil {
			t.Errorf("Cleanup: %v", err)
		}
		lg.Close()
		st.Close()
		srv.Shutdown()
		if err := fab.Remove(); err != nil {
			t.Errorf("remove fabric: %v", err)
		}
		fab.Close()
	})
	g.putSlug(t)
	return g
}

func (g *netnsGrid) dumpLogs(t *testing.T) {
	logs, _ := filepath.Glob(filepath.Join(g.data, "*", "host.log"))
	for _, l := range logs {
		b, _ := os.ReadFile(l)
		t.Logf("%s:\n%s", l, b)
	}
}

// putSlug stores a slug whose web process is a small Python server.
func (g *netnsGrid) putSlug(t *testing.T) {
	t.Helper()
	dir := t.TempDir()
	const server = `import http.server, os, signal, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.end_headers()
        self.wfile.write(os.environ["DYNO"].encode())
signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
http.server.ThreadingHTTPServer(("0.0.0.0", int(os.environ["PORT"])), H).serve_forever()
`
	if err := os.WriteFile(filepath.Join(dir, "server.py"), []byte(server), 0o644); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	info, err := slug.Pack(dir, &buf, 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	g.slugID = store.NewID()
	meta := grid.Slug{ID: g.slugID, App: "hello", Size: info.Size, Checksum: info.Checksum, Stack: grid.Stack}
	if err := g.st.PutSlug(context.Background(), meta, &buf); err != nil {
		t.Fatal(err)
	}
}

// runWeb assigns a web dyno to host and waits until it is up; it returns
// the dyno's address.
func (g *netnsGrid) runWeb(t *testing.T, host string) string {
	t.Helper()
	a := grid.Assignment{
		DynoID: store.NewID(), App: "hello", UID: 201000, Host: host, Name: "web.1", Type: "web",
		Command: "python3 /app/server.py", Size: grid.DefaultSize, Release: 1, SlugID: g.slugID, CreatedAt: time.Now(),
	}
	if err := g.st.PutAssignment(context.Background(), a); err != nil {
		t.Fatal(err)
	}
	var addr string
	waitFor(t, 90*time.Second, "web dyno up on "+host, func() error {
		ds, err := g.st.HostDynos(context.Background(), host)
		if err != nil || len(ds) != 1 || ds[0].State != grid.DynoUp {
			return fmt.Errorf("dynos %+v, err %v", ds, err)
		}
		addr = ds[0].Addr
		return nil
	})
	return addr
}

func (g *netnsGrid) host(id string) (grid.Host, bool) {
	hs, _ := g.st.Hosts(context.Background())
	for _, h := range hs {
		if h.ID == id {
			return h, true
		}
	}
	return grid.Host{}, false
}

var httpClient = &http.Client{Timeout: 2 * time.Second}

func get(addr string) error {
	resp, err := httpClient.Get("http://" + addr + "/")
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	return nil
}

func TestNetNSConformance(t *testing.T) {
	g := startNetNS(t)
	testConformance(t, g.p, NameNetNS, func(h grid.HostControl) bool {
		_, err := os.Stat(filepath.Join(netnsDir, h.Handle))
		return err == nil
	})
}

// Two hosts register with their fabric address and subnet; the root
// namespace reaches their dynos directly; a cut link partitions a host
// and heals; Fail kills every process of a host at once; Release stops a
// host gracefully and leaves nothing behind.
func TestNetNSHosts(t *testing.T) {
	g := startNetNS(t)
	ctx := context.Background()
	var hosts []grid.HostControl
	for i := range 2 {
		start := time.Now()
		h, err := g.p.Provision(ctx)
		if err != nil {
			t.Fatal(err)
		}
		hosts = append(hosts, h)
		want := g.p.hostNet(i + 1)
		waitFor(t, 30*time.Second, h.ID+" registers", func() error {
			rec, ok := g.host(h.ID)
			if !ok {
				return errors.New("no host record")
			}
			if rec.Addr != want.addr.String() || rec.Subnet != want.subnet.String() {
				return fmt.Errorf("host %+v, want addr %s subnet %s", rec, want.addr, want.subnet)
			}
			return nil
		})
		t.Logf("%s (%s): provision to first heartbeat %v", h.ID, h.Handle, time.Since(start).Round(time.Millisecond))
	}
	h1, h2 := hosts[0], hosts[1]
	if got, _ := g.p.Hosts(); len(got) != 2 {
		t.Errorf("Hosts() = %+v, want 2", got)
	}

	addr1, addr2 := g.runWeb(t, h1.ID), g.runWeb(t, h2.ID)
	for _, addr := range []string{addr1, addr2} {
		if err := get(addr); err != nil {
			t.Fatalf("dyno at %s from the root namespace: %v", addr, err)
		}
	}
	if a := netip.MustParseAddrPort(addr1).Addr(); !g.p.hostNet(1).subnet.Contains(a) {
		t.Errorf("dyno of %s at %s, outside its subnet", h1.ID, a)
	}

	// A cut leaves processes alone and heals.
	if err := g.p.Cut(ctx, h2, true); err != nil {
		t.Fatal(err)
	}
	if err := get(addr2); err == nil {
		t.Error("dyno reachable through a cut link")
	}
	if err := g.p.Cut(ctx, h2, false); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "healed link", func() error { return get(addr2) })

	// Fail: the agent and the dyno die at once, heartbeats stop, the
	// link is down, the namespace stays.
	ino, err := netnsInode(filepath.Join(netnsDir, h1.Handle))
	if err != nil {
		t.Fatal(err)
	}
	before := hostProcs(ino, cgroupParent(h1.ID))
	if len(before) < 2 {
		t.Fatalf("host %s has %d processes, want the agent and its dyno", h1.ID, len(before))
	}
	rec, _ := g.host(h1.ID)
	conn, err := net.Dial("tcp", addr1) // a dead machine closes nothing
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	start := time.Now()
	if err := g.p.Fail(ctx, h1); err != nil {
		t.Fatal(err)
	}
	t.Logf("fail: %d processes gone in %v", len(before), time.Since(start).Round(time.Millisecond))
	for _, pid := range before {
		if p, ok := readProc(pid); ok && !p.zombie {
			t.Errorf("process %d survived Fail", pid)
		}
	}
	if left := hostProcs(ino, cgroupParent(h1.ID)); len(left) > 0 {
		t.Errorf("processes %v left after Fail", left)
	}
	if link, err := netlink.LinkByName(g.p.hostNet(1).veth); err != nil || link.Attrs().Flags&1 != 0 {
		t.Errorf("link of a failed host: %v, err %v; want down", link, err)
	}
	conn.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
	if n, err := conn.Read(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("a connection to the failed host's dyno read %d bytes, err %v; want silence", n, err)
	}
	g.checkNoHeartbeat(t, h1.ID, rec.HeartbeatAt)
	if err := get(addr2); err != nil {
		t.Errorf("the other host's dyno after Fail: %v", err)
	}

	// Release: a failed host and a live one (gracefully: its dyno is
	// stopped by its agent, which records it down).
	for _, h := range hosts {
		start := time.Now()
		if err := g.p.Release(ctx, h); err != nil {
			t.Fatalf("Release %s: %v", h.ID, err)
		}
		t.Logf("release %s: %v", h.ID, time.Since(start).Round(time.Millisecond))
		g.checkGone(t, h)
	}
	ds, _ := g.st.HostDynos(ctx, h2.ID)
	for _, d := range ds {
		if d.State != grid.DynoDown {
			t.Errorf("dyno of a released host: %+v, want down or deleted", d)
		}
	}
}

// checkNoHeartbeat watches the host record for three heartbeat periods
// (2 s each): a dead host must not write it.
func (g *netnsGrid) checkNoHeartbeat(t *testing.T, id string, last time.Time) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Second)
	defer cancel()
	w, err := g.st.WatchHosts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for ev := range w {
		if ev.Key == id && ev.Value.HeartbeatAt.After(last.Add(3*time.Second)) {
			t.Errorf("host %s heartbeats after Fail: %v", id, ev.Value.HeartbeatAt)
			return
		}
	}
}

// checkGone checks that nothing of a released host is left.
func (g *netnsGrid) checkGone(t *testing.T, h grid.HostControl) {
	t.Helper()
	hn, err := g.p.parseHandle(h.Handle)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(hn.nsPath()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("namespace %s: %v", hn.netns, err)
	}
	if _, err := netlink.LinkByName(hn.veth); err == nil {
		t.Errorf("link %s left", hn.veth)
	}
	routes, err := netlink.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Dst: ipNet(hn.subnet.Addr(), hn.subnet.Bits())}, netlink.RT_FILTER_DST)
	if err != nil || len(routes) > 0 {
		t.Errorf("routes to %s: %v, err %v", hn.subnet, routes, err)
	}
	if _, err := os.Stat(filepath.Join(g.data, h.ID)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("host dir: %v", err)
	}
	for _, dir := range cgroupfs.Dirs(cgroupParent(h.ID)) {
		if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("cgroup %s: %v", dir, err)
		}
	}
}
