package sandbox

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

const webPort = 8000

// webSpec serves HTTP on webPort from a networked sandbox. python3's
// http.server binds "::" (dual stack), so it shows up in /proc/net/tcp6.
func webSpec(t *testing.T, id string) Spec {
	sp, _, _ := spec(id, "python3", "-m", "http.server", fmt.Sprint(webPort))
	sp.Network = true
	sp.Dir = "/usr/share"
	sp.Mounts = []Mount{localResolver(t)}
	return sp
}

// localResolver replaces the sandbox's resolv.conf with one that points at
// its own loopback, so lookups (http.server asks for the fqdn of "::")
// fail at once instead of leaving the machine.
func localResolver(t *testing.T) Mount {
	t.Helper()
	path := filepath.Join(t.TempDir(), "resolv.conf")
	if err := os.WriteFile(path, []byte("nameserver 127.0.0.1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return Mount{Source: path, Target: "/etc/resolv.conf"}
}

func waitListening(t *testing.T, s *Sandbox, port int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := s.WaitListening(ctx, port); err != nil {
		t.Fatal(err)
	}
}

func TestWaitListeningAndHostReachesSandbox(t *testing.T) {
	t.Parallel()
	m := newManager(t)
	begin := time.Now()
	s := start(t, m, webSpec(t, "web"))
	waitListening(t, s, webPort)
	t.Logf("start to listening: %v", time.Since(begin))
	if !s.Addr().IsValid() || !m.cfg.Subnet.Contains(s.Addr()) {
		t.Fatalf("Addr() = %v, want an address in %v", s.Addr(), m.cfg.Subnet)
	}
	res, err := (&http.Client{Timeout: 5 * time.Second}).Get(fmt.Sprintf("http://%s/", netip.AddrPortFrom(s.Addr(), webPort)))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK || !strings.Contains(string(body), "Directory listing") {
		t.Errorf("GET = %d %q", res.StatusCode, body)
	}
}

func TestWaitListeningFailsWhenSandboxExits(t *testing.T) {
	t.Parallel()
	m := newManager(t)
	sp, _, _ := spec("exits", "sh", "-c", "exit 3")
	s := start(t, m, sp)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	begin := time.Now()
	err := s.WaitListening(ctx, webPort)
	if !errors.Is(err, ErrExited) {
		t.Fatalf("err = %v, want the sandbox-exited error", err)
	}
	if took := time.Since(begin); took > 2*time.Second {
		t.Errorf("noticed the exit after %v", took)
	}
}

func TestWaitListeningHonoursContext(t *testing.T) {
	t.Parallel()
	m := newManager(t)
	sp, _, _ := spec("quiet", "sleep", "1000")
	s := start(t, m, sp)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := s.WaitListening(ctx, webPort); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v, want DeadlineExceeded", err)
	}
}

func TestWithoutNetworkOnlyLoopback(t *testing.T) {
	t.Parallel()
	m := newManager(t)
	sp, _, _ := spec("nonet", "sh", "-c", `tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' '; cat /sys/class/net/lo/operstate`)
	code, out, errOut := run(t, m, sp)
	if code != 0 || out != "lo\nunknown\n" {
		t.Errorf("exit %d, stdout %q, stderr %q; want only an up lo", code, out, errOut)
	}
}

// tryConnect is a sandbox command that tries one TCP connection and prints
// "connected" or "blocked <errno name>".
func tryConnect(addr string) []string {
	return []string{"python3", "-c", fmt.Sprintf(`
import socket, errno
host, port = %q.rsplit(":", 1)
s = socket.socket()
s.settimeout(5)
try:
    s.connect((host, int(port)))
    print("connected")
except OSError as e:
    print("blocked", errno.errorcode.get(e.errno, e.errno) if e.errno else type(e).__name__)`, addr)}
}

func TestSandboxesCannotReachEachOther(t *testing.T) {
	t.Parallel()
	m := newManager(t)
	b := start(t, m, webSpec(t, "target"))
	waitListening(t, b, webPort)
	if c, err := net.DialTimeout("tcp", netip.AddrPortFrom(b.Addr(), webPort).String(), 5*time.Second); err != nil {
		t.Fatalf("host cannot reach the target either: %v", err)
	} else {
		c.Close()
	}
	sp, _, _ := spec("attacker", tryConnect(netip.AddrPortFrom(b.Addr(), webPort).String())...)
	sp.Network = true
	code, out, errOut := run(t, m, sp)
	if code != 0 || !strings.HasPrefix(out, "blocked") {
		t.Errorf("exit %d, stdout %q, stderr %q; want the connection blocked", code, out, errOut)
	}
}

func TestSandboxCannotReachHost(t *testing.T) {
	t.Parallel()
	m := newManager(t)
	ln, err := net.Listen("tcp", "0.0.0.0:0") // every host address, the veth's included
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	port := ln.Addr().(*net.TCPAddr).Port
	// The sandbox finds the host through its default route.
	sp, _, _ := spec("tohost", "python3", "-c", fmt.Sprintf(`
import socket, struct, errno
gw = None
for line in open("/proc/net/route").readlines()[1:]:
    f = line.split()
    if f[1] == "00000000":
        gw = socket.inet_ntoa(struct.pack("<L", int(f[2], 16)))
print("gateway", gw)
s = socket.socket()
s.settimeout(5)
try:
    s.connect((gw, %d))
    print("connected")
except OSError as e:
    print("blocked", errno.errorcode.get(e.errno, e.errno) if e.errno else type(e).__name__)`, port))
	sp.Network = true
	s := start(t, m, sp)
	code := waitExit(t, s, 30*time.Second)
	out := sp.Stdout.(*syncBuffer).String()
	t.Logf("sandbox: %q", out)
	if want := fmt.Sprintf("gateway %s\nblocked", s.Gateway()); code != 0 || !strings.HasPrefix(out, want) {
		t.Errorf("exit %d, stdout %q; want %q...", code, out, want)
	}
	c, err := net.DialTimeout("tcp", netip.AddrPortFrom(s.Gateway(), uint16(port)).String(), 5*time.Second)
	if err != nil {
		t.Fatalf("the listener is not reachable from the host itself: %v", err)
	}
	c.Close()
}

// outside is a network namespace standing for the internet: a veth from
// the host (10.236.<n>.1) to it (10.236.<n>.2), with a TCP listener there.
type outside struct {
	link   string
	host   netip.Addr
	addr   netip.Addr // its end, where ln listens
	nsPath string
	ln     net.Listener
}

func newOutside(t *testing.T, n int) *outside {
	t.Helper()
	o := &outside{link: fmt.Sprintf("sbxo%d", n), host: netip.MustParseAddr(fmt.Sprintf("10.236.%d.1", n))}
	o.addr = o.host.Next()
	nsPath := filepath.Join(t.TempDir(), "outside")
	o.nsPath = nsPath
	if err := newNetns(nsPath); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = unmountNetns(nsPath) })
	ns, err := netns.GetFromPath(nsPath)
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	sn := &sandboxNet{link: o.link, host: o.host, addr: o.host.Next()}
	t.Cleanup(func() { _ = deleteLink(o.link) })
	if err := addVeth(sn, ns); err != nil {
		t.Fatal(err)
	}
	if err := configureInside(sn, ns); err != nil {
		t.Fatal(err)
	}
	o.ln = listenIn(t, ns, netip.AddrPortFrom(sn.addr, 0).String())
	return o
}

// prefix is the outside's /30.
func (o *outside) prefix() netip.Prefix { return netip.PrefixFrom(o.host, 30).Masked() }

// listen opens another listener in the outside on port.
func (o *outside) listen(t *testing.T, port int) net.Listener {
	t.Helper()
	ns, err := netns.GetFromPath(o.nsPath)
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	return listenIn(t, ns, netip.AddrPortFrom(o.addr, uint16(port)).String())
}

// dial connects from the outside to addr, as a machine of the network
// would.
func (o *outside) dial(t *testing.T, addr netip.AddrPort) error {
	t.Helper()
	return dialFrom(t, o.nsPath, addr)
}

// dialFrom connects to addr from inside the network namespace at nsPath.
func dialFrom(t *testing.T, nsPath string, addr netip.AddrPort) error {
	t.Helper()
	ns, err := netns.GetFromPath(nsPath)
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread dies with the goroutine
		if err := unix.Setns(int(ns), unix.CLONE_NEWNET); err != nil {
			errc <- err
			return
		}
		c, err := net.DialTimeout("tcp", addr.String(), 5*time.Second)
		if err == nil {
			c.Close()
		}
		errc <- err
	}()
	return <-errc
}

// listenIn opens a TCP listener inside ns. The socket keeps the netns it
// was made in; the thread that made it is discarded.
func listenIn(t *testing.T, ns netns.NsHandle, addr string) net.Listener {
	t.Helper()
	type result struct {
		ln  net.Listener
		err error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread dies with the goroutine
		if err := unix.Setns(int(ns), unix.CLONE_NEWNET); err != nil {
			ch <- result{err: err}
			return
		}
		lo, err := netlink.LinkByName("lo")
		if err == nil {
			err = netlink.LinkSetUp(lo)
		}
		if err != nil {
			ch <- result{err: err}
			return
		}
		ln, err := net.Listen("tcp", addr)
		ch <- result{ln, err}
	}()
	r := <-ch
	if r.err != nil {
		t.Fatal(r.err)
	}
	t.Cleanup(func() { r.ln.Close() })
	return r.ln
}

func TestEgressIsMasqueraded(t *testing.T) {
	t.Parallel()
	m := newManager(t)
	o := newOutside(t, int(testSeq.Add(1)))
	sp, _, _ := spec("egress", tryConnect(o.ln.Addr().String())...)
	sp.Network = true
	accepted := make(chan net.Addr, 1)
	go func() {
		c, err := o.ln.Accept()
		if err != nil {
			accepted <- nil
			return
		}
		accepted <- c.RemoteAddr()
		c.Close()
	}()
	code, out, errOut := run(t, m, sp)
	if code != 0 || out != "connected\n" {
		t.Fatalf("exit %d, stdout %q, stderr %q; want connected", code, out, errOut)
	}
	from := <-accepted
	if ap, err := netip.ParseAddrPort(from.String()); err != nil || ap.Addr() != o.host {
		t.Errorf("outside saw the connection from %v, want the host's address %v (masquerade)", from, o.host)
	}
}

// listenOn accepts connections on a free port of addr until the test
// ends.
func listenOn(t *testing.T, addr netip.Addr) netip.AddrPort {
	t.Helper()
	ln, err := net.Listen("tcp", netip.AddrPortFrom(addr, 0).String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	accepting(ln)
	return ln.Addr().(*net.TCPAddr).AddrPort()
}

// accepting accepts and closes connections on ln until it is closed.
func accepting(ln net.Listener) {
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
}

func TestInternalNetworksRefused(t *testing.T) {
	t.Parallel()
	n := int(testSeq.Add(1))
	o := newOutside(t, n)
	accepting(o.ln)
	accepting(o.listen(t, 53))
	resolv := filepath.Join(t.TempDir(), "resolv.conf")
	if err := os.WriteFile(resolv, []byte("search example\nnameserver "+o.addr.String()+"\nnameserver 8.8.8.8\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(t, n)
	cfg.Internal = []netip.Prefix{o.prefix()}
	cfg.resolvConf = resolv
	m := newManagerWith(t, cfg)
	for _, c := range []struct {
		name, addr, want string
	}{
		{"internal", o.ln.Addr().String(), "blocked"},
		{"nameserver inside", netip.AddrPortFrom(o.addr, 53).String(), "connected"},
	} {
		t.Run(c.name, func(t *testing.T) {
			sp, _, _ := spec("internal-"+strings.ReplaceAll(c.name, " ", "-"), tryConnect(c.addr)...)
			sp.Network = true
			code, out, errOut := run(t, m, sp)
			if code != 0 || !strings.HasPrefix(out, c.want) {
				t.Errorf("exit %d, stdout %q, stderr %q; want %s", code, out, errOut, c.want)
			}
		})
	}
}

func TestRoutersAloneReachSandboxes(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name     string
		routers  func(o *outside) []netip.Prefix
		internal bool // the router's network is also Internal (netns hosts: the fabric)
		reach    bool
	}{
		{"any source", func(*outside) []netip.Prefix { return nil }, false, true},
		{"a router", func(o *outside) []netip.Prefix { return []netip.Prefix{netip.PrefixFrom(o.addr, 32)} }, false, true},
		{"a router on an internal network", func(o *outside) []netip.Prefix { return []netip.Prefix{netip.PrefixFrom(o.addr, 32)} }, true, true},
		{"not a router", func(*outside) []netip.Prefix { return []netip.Prefix{mustPrefix("192.0.2.0/24")} }, false, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			n := int(testSeq.Add(1))
			o := newOutside(t, n)
			cfg := testConfig(t, n)
			cfg.Routers = c.routers(o)
			if c.internal {
				cfg.Internal = []netip.Prefix{o.prefix()}
			}
			m := newManagerWith(t, cfg)
			s := start(t, m, webSpec(t, "routed"))
			waitListening(t, s, webPort)
			err := o.dial(t, netip.AddrPortFrom(s.Addr(), webPort))
			if c.reach != (err == nil) {
				t.Errorf("connection from %v to the sandbox: %v; want reachable %v", o.addr, err, c.reach)
			}
		})
	}
}

// TestServicesReachable: an add-on server's port (a service) is reachable
// from the sandboxes whose Reach names it, and from no other; another port
// of the same service (another app's Redis, say) is not, nor is the rest
// of the host. A new Manager that adopts the sandbox keeps it so.
func TestServicesReachable(t *testing.T) {
	n := int(testSeq.Add(1))
	svc := netip.MustParseAddr(fmt.Sprintf("10.235.%d.1", 200+n%50))
	lo, err := netlink.LinkByName("lo")
	if err != nil {
		t.Fatal(err)
	}
	addr := &netlink.Addr{IPNet: &net.IPNet{IP: svc.AsSlice(), Mask: net.CIDRMask(32, 32)}}
	if err := netlink.AddrAdd(lo, addr); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { netlink.AddrDel(lo, addr) })
	ours, theirs, host := listenOn(t, svc), listenOn(t, svc), listenOn(t, svc)
	first, last := min(ours.Port(), theirs.Port()), max(ours.Port(), theirs.Port())
	if p := host.Port(); p >= first && p <= last {
		t.Skipf("the host's port %d fell between the service's %d and %d", p, first, last)
	}
	cfg := testConfig(t, n)
	cfg.Services = []Service{{Addr: svc, FirstPort: first, LastPort: last}}
	m := newManagerWith(t, cfg)
	try := func(t *testing.T, m *Manager, id string, reach []netip.AddrPort, want map[netip.AddrPort]string) {
		t.Helper()
		for to, w := range want {
			sp, _, _ := spec(fmt.Sprintf("%s-%d", id, to.Port()), tryConnect(to.String())...)
			sp.Network, sp.Reach = true, reach
			if code, out, errOut := run(t, m, sp); code != 0 || out != w {
				t.Errorf("%s to %s: exit %d, %q (stderr %q), want %q", id, to, code, out, errOut, w)
			}
		}
	}
	try(t, m, "svc-ours", []netip.AddrPort{ours}, map[netip.AddrPort]string{
		ours: "connected\n", theirs: "blocked EHOSTUNREACH\n", host: "blocked EHOSTUNREACH\n",
	})
	try(t, m, "svc-none", nil, map[netip.AddrPort]string{ours: "blocked EHOSTUNREACH\n"})
	// The sandbox's element goes with it: the next one at its address
	// (the pool hands it out again) reaches nothing.
	try(t, m, "svc-next", nil, map[netip.AddrPort]string{ours: "blocked EHOSTUNREACH\n", theirs: "blocked EHOSTUNREACH\n"})

	// A sandbox adopted by a new Manager, whose table starts with an
	// empty set, keeps its reach.
	killer := startHelper(t, helperConfig{
		StateDir: cfg.StateDir, Subnet: cfg.Subnet.String(), CgroupParent: cfg.CgroupParent, Services: cfg.Services,
		Specs: []helperSpec{{ID: "svc-adopted", Args: []string{"sleep", "1000"}, Network: true, Reach: []netip.AddrPort{ours}}},
	})
	if err := killer.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = killer.Wait()
	m = newManagerWith(t, cfg)
	sb, err := m.Adopt("svc-adopted", io.Discard, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	defer sb.Destroy()
	if err := dialFrom(t, sb.net.nsPath, ours); err != nil {
		t.Errorf("adopted sandbox to %s: %v", ours, err)
	}
	if err := dialFrom(t, sb.net.nsPath, theirs); err == nil {
		t.Errorf("adopted sandbox reached %s", theirs)
	}
	if _, err := New(Config{StateDir: t.TempDir(), Services: []Service{{Addr: svc}}}); err == nil {
		t.Error("a service without ports was accepted")
	}
}

// TestEgressCapped (reliability.md I-10): a sandbox sending to the
// internet as fast as it can gets its EgressMbit and no more, through the
// token bucket; what it sends to its gateway (the router's side: the
// responses) passes beside the bucket.
func TestEgressCapped(t *testing.T) {
	t.Parallel()
	const mbit = 8 // 1 MB/s
	m := newManager(t)
	o := newOutside(t, int(testSeq.Add(1)))
	type upload struct {
		bytes int64
		took  time.Duration
		err   error
	}
	got := make(chan upload, 1)
	go func() {
		c, err := o.ln.Accept()
		if err != nil {
			got <- upload{err: err}
			return
		}
		defer c.Close()
		begin := time.Now()
		n, err := io.Copy(io.Discard, c)
		got <- upload{n, time.Since(begin), err}
	}()
	sender := `
import socket, sys, time
s = socket.create_connection((sys.argv[1], int(sys.argv[2])))
buf, end = b"x" * 65536, time.time() + 2
while time.time() < end:
    s.send(buf)
s.close()
`
	host, port, _ := net.SplitHostPort(o.ln.Addr().String())
	sp, _, _ := spec("upload", "python3", "-c", sender, host, port)
	sp.Network, sp.EgressMbit = true, mbit
	if code, out, errOut := run(t, m, sp); code != 0 {
		t.Fatalf("sender: exit %d, %q %q", code, out, errOut)
	}
	up := <-got
	if up.err != nil {
		t.Fatal(up.err)
	}
	rate := float64(up.bytes) / up.took.Seconds()
	limit := mbit*1e6/8*1.05 + float64(egressMinBurst)/up.took.Seconds()
	t.Logf("uploaded %d bytes in %v: %.0f bytes/s, cap %d", up.bytes, up.took, rate, mbit*1_000_000/8)
	if up.bytes < 256<<10 || rate > limit {
		t.Errorf("uploaded %d bytes at %.0f bytes/s; want at least 256 KB at no more than %.0f", up.bytes, rate, limit)
	}

	// The host reads 4 MB from a sandbox: none of it through the bucket.
	server := `
import socket
ln = socket.socket(); ln.bind(("0.0.0.0", 8000)); ln.listen()
print("listening", flush=True)
c, _ = ln.accept(); c.sendall(b"x" * (4 << 20)); c.close()
`
	sp, _, _ = spec("download", "python3", "-c", server)
	sp.Network, sp.EgressMbit = true, mbit
	sb := start(t, m, sp)
	waitListening(t, sb, webPort)
	c, err := net.Dial("tcp", netip.AddrPortFrom(sb.Addr(), webPort).String())
	if err != nil {
		t.Fatal(err)
	}
	n, err := io.Copy(io.Discard, c)
	c.Close()
	if n != 4<<20 || err != nil {
		t.Fatalf("read %d bytes from the sandbox, %v", n, err)
	}
	if shaped := bucketBytes(t, sb); shaped > 64<<10 {
		t.Errorf("%d bytes of the response went through the bucket", shaped)
	}
}

// bucketBytes is how many bytes the sandbox's egress token bucket passed.
func bucketBytes(t *testing.T, sb *Sandbox) uint64 {
	t.Helper()
	ns, err := netns.GetFromPath(sb.net.nsPath)
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	h, link, err := insideLink(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	qs, err := h.QdiscList(link)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range qs {
		if tbf, ok := q.(*netlink.Tbf); ok && tbf.Statistics != nil && tbf.Statistics.Basic != nil {
			return tbf.Statistics.Basic.Bytes
		}
	}
	t.Fatalf("no token bucket among %v", qs)
	return 0
}
