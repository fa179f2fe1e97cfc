package provider

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/dynogrid/grid/internal/cgroupfs"
	"github.com/dynogrid/grid/internal/grid"
)

// The fabric joins the hosts in namespaces to the root namespace, where
// the server (NATS) and the router run:
//
//	root netns                                     netns gridh<n>
//	gridfab0 10.199.0.1/16 ─ gridv<n> ═══ veth ═══ eth0 10.199.0.<n+1>/16
//	route <host subnet> via 10.199.0.<n+1>          default via 10.199.0.1
//	nft inet grid_fabric: masquerade 10.199.0.0/16     └─ gd… ── dynos in <host subnet>
//	  leaving by any other link (dyno egress)
//
// The router reaches a dyno at its own address through the route; dynos
// reach the internet through their host's masquerade, then the fabric's.
const (
	bridgeName  = "gridfab0"
	netnsPrefix = "gridh"
	vethPrefix  = "gridv"
	netnsDir    = "/run/netns"
	fabricTable = "grid_fabric"
	// lockPath serialises fabrics: one process per machine owns the
	// namespaces, the bridge and the routes.
	lockPath = "/run/grid-netns.lock"
)

var (
	fabricPrefix = netip.MustParsePrefix("10.199.0.0/16")
	// FabricAddr is the root namespace's address on the fabric: where a
	// server must listen for hosts in namespaces to reach its NATS.
	FabricAddr = netip.MustParseAddr("10.199.0.1")
)

// Fabric is the bridge, masquerade and lock that netns hosts need. Only
// one Fabric is open on a machine at a time.
type Fabric struct {
	lock *os.File
}

// OpenFabric takes the machine's fabric lock, waiting while ctx allows
// if another process holds it, and creates the bridge and masquerade
// (idempotent: an existing fabric is kept as it is).
func OpenFabric(ctx context.Context) (*Fabric, error) {
	lock, err := lockFile(ctx, lockPath)
	if err != nil {
		return nil, err
	}
	f := &Fabric{lock: lock}
	if err := setupFabric(); err != nil {
		f.Close()
		return nil, fmt.Errorf("netns fabric: %w", err)
	}
	return f, nil
}

// Addr is FabricAddr.
func (f *Fabric) Addr() netip.Addr { return FabricAddr }

// Remove deletes the bridge, the masquerade and the (empty) parent of the
// hosts' cgroups. Hosts still attached lose their link; release them
// first.
func (f *Fabric) Remove() error {
	for _, dir := range cgroupfs.Dirs(filepath.Dir(cgroupParent("x"))) {
		_ = os.Remove(dir) // only if empty: a host still running keeps it
	}
	return errors.Join(deleteLink(bridgeName), removeTable())
}

// Close releases the lock; the fabric and its hosts stay.
func (f *Fabric) Close() error {
	if f.lock == nil {
		return nil
	}
	err := f.lock.Close()
	f.lock = nil
	return err
}

// lockFile takes an exclusive flock on path, polling until ctx ends: a
// blocking flock could not be cancelled.
func lockFile(ctx context.Context, path string) (*os.File, error) {
	fd, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	delay := 20 * time.Millisecond
	for {
		err := unix.Flock(int(fd.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			return fd, nil
		}
		if !errors.Is(err, unix.EWOULDBLOCK) {
			fd.Close()
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		select {
		case <-ctx.Done():
			fd.Close()
			return nil, fmt.Errorf("another process runs netns hosts on this machine (it holds %s): %w", path, grid.ErrConflict)
		case <-time.After(delay):
			delay = min(2*delay, 500*time.Millisecond)
		}
	}
}

func setupFabric() error {
	br, err := netlink.LinkByName(bridgeName)
	if err != nil {
		if err := netlink.LinkAdd(&netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: bridgeName}}); err != nil && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("create bridge %s: %w", bridgeName, err)
		}
		if br, err = netlink.LinkByName(bridgeName); err != nil {
			return err
		}
	}
	if err := netlink.AddrReplace(br, &netlink.Addr{IPNet: ipNet(FabricAddr, fabricPrefix.Bits())}); err != nil {
		return fmt.Errorf("address of %s: %w", bridgeName, err)
	}
	if err := netlink.LinkSetUp(br); err != nil {
		return err
	}
	if err := os.WriteFile("/proc/sys/net/ipv4/ip_forward", []byte("1\n"), 0o644); err != nil {
		return fmt.Errorf("enable ip forwarding: %w", err)
	}
	return installTable()
}

// installTable replaces the fabric's nftables table in one transaction:
//
//	postrouting  ip saddr 10.199.0.0/16 oifname != gridfab0 masquerade
func installTable() error {
	c, err := nftables.New()
	if err != nil {
		return err
	}
	t := &nftables.Table{Family: nftables.TableFamilyINet, Name: fabricTable}
	c.AddTable(t) // add, delete, add: the delete cannot fail for a missing table
	c.DelTable(t)
	c.AddTable(t)
	accept := nftables.ChainPolicyAccept
	ch := c.AddChain(&nftables.Chain{
		Name: "postrouting", Table: t, Type: nftables.ChainTypeNAT,
		Hooknum: nftables.ChainHookPostrouting, Priority: nftables.ChainPriorityNATSource, Policy: &accept,
	})
	src := fabricPrefix.Addr().As4()
	c.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: []expr.Any{
		&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.NFPROTO_IPV4}},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 12, Len: 4},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: net.CIDRMask(fabricPrefix.Bits(), 32), Xor: make([]byte, 4)},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: src[:]},
		&expr.Meta{Key: expr.MetaKeyOIFNAME, Register: 1},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: ifname(bridgeName)},
		&expr.Masq{},
	}})
	if err := c.Flush(); err != nil {
		return fmt.Errorf("nftables table %s: %w", fabricTable, err)
	}
	return nil
}

func removeTable() error {
	c, err := nftables.New()
	if err != nil {
		return err
	}
	c.DelTable(&nftables.Table{Family: nftables.TableFamilyINet, Name: fabricTable})
	if err := c.Flush(); err != nil && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("nftables table %s: %w", fabricTable, err)
	}
	return nil
}

// ifname is an interface name as nftables compares it: NUL-padded to
// IFNAMSIZ.
func ifname(name string) []byte {
	b := make([]byte, unix.IFNAMSIZ)
	copy(b, name)
	return b
}

// hostNet is the network of the host in namespace gridh<n>.
type hostNet struct {
	n      int
	netns  string       // gridh<n>
	veth   string       // gridv<n>, the bridge side
	addr   netip.Addr   // on the fabric: 10.199.0.1 + n
	subnet netip.Prefix // its dynos' addresses
}

func (h hostNet) nsPath() string { return filepath.Join(netnsDir, h.netns) }

// setupHostNet creates the namespace, its link to the bridge and the
// route to its dynos. On error nothing is left.
func setupHostNet(h hostNet) (err error) {
	defer func() {
		if err != nil {
			_ = teardownHostNet(h)
		}
	}()
	if err := newNamedNetns(h.nsPath()); err != nil {
		return fmt.Errorf("create netns %s: %w", h.netns, err)
	}
	ns, err := netns.GetFromPath(h.nsPath())
	if err != nil {
		return err
	}
	defer ns.Close()
	br, err := netlink.LinkByName(bridgeName)
	if err != nil {
		return fmt.Errorf("bridge %s (is the fabric open?): %w", bridgeName, err)
	}
	_ = deleteLink(h.veth) // a leftover of a host whose namespace is gone
	veth := &netlink.Veth{
		LinkAttrs:     netlink.LinkAttrs{Name: h.veth, MasterIndex: br.Attrs().Index},
		PeerName:      "eth0",
		PeerNamespace: netlink.NsFd(int(ns)),
	}
	if err := netlink.LinkAdd(veth); err != nil {
		return fmt.Errorf("veth %s: %w", h.veth, err)
	}
	if err := netlink.LinkSetUp(veth); err != nil {
		return err
	}
	if err := configureInside(h, ns); err != nil {
		return fmt.Errorf("configure netns %s: %w", h.netns, err)
	}
	err = netlink.RouteReplace(&netlink.Route{LinkIndex: br.Attrs().Index, Dst: ipNet(h.subnet.Addr(), h.subnet.Bits()), Gw: net.IP(h.addr.AsSlice())})
	if err != nil {
		return fmt.Errorf("route %s via %s: %w", h.subnet, h.addr, err)
	}
	return nil
}

// configureInside brings up lo and eth0 with the host's fabric address and
// a default route via the bridge.
func configureInside(h hostNet, ns netns.NsHandle) error {
	nh, err := netlink.NewHandleAt(ns)
	if err != nil {
		return err
	}
	defer nh.Close()
	lo, err := nh.LinkByName("lo")
	if err != nil {
		return err
	}
	if err := nh.LinkSetUp(lo); err != nil {
		return err
	}
	eth, err := nh.LinkByName("eth0")
	if err != nil {
		return err
	}
	if err := nh.AddrAdd(eth, &netlink.Addr{IPNet: ipNet(h.addr, fabricPrefix.Bits())}); err != nil {
		return err
	}
	if err := nh.LinkSetUp(eth); err != nil {
		return err
	}
	return nh.RouteAdd(&netlink.Route{LinkIndex: eth.Attrs().Index, Gw: net.IP(FabricAddr.AsSlice())})
}

// teardownHostNet removes the route, the veth pair and the namespace;
// missing parts are fine. Processes must be gone first, or the namespace
// lives on with them.
func teardownHostNet(h hostNet) error {
	var errs []error
	if h.subnet.IsValid() {
		err := netlink.RouteDel(&netlink.Route{Dst: ipNet(h.subnet.Addr(), h.subnet.Bits())})
		if err != nil && !errors.Is(err, unix.ESRCH) && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, fmt.Errorf("route %s: %w", h.subnet, err))
		}
	}
	errs = append(errs, deleteLink(h.veth), deleteNamedNetns(h.nsPath()))
	return errors.Join(errs...)
}

// setLink sets the bridge side of a host's link up or down.
func setLink(name string, up bool) error {
	link, err := netlink.LinkByName(name)
	if err != nil {
		return fmt.Errorf("link %s: %w", name, err)
	}
	if up {
		return netlink.LinkSetUp(link)
	}
	return netlink.LinkSetDown(link)
}

// newNamedNetns creates a network namespace and bind-mounts it at path,
// as `ip netns add` does. The unshare happens on a thread that is thrown
// away afterwards (the goroutine exits while locked), so no Go thread is
// left in the new namespace.
func newNamedNetns(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE|os.O_EXCL, 0o444)
	if err != nil {
		return err
	}
	f.Close()
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread dies with this goroutine
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("unshare: %w", err)
			return
		}
		self := fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid())
		errc <- os.NewSyscallError("mount", unix.Mount(self, path, "", unix.MS_BIND, ""))
	}()
	if err := <-errc; err != nil {
		os.Remove(path)
		return err
	}
	return nil
}

// deleteNamedNetns drops the bind mount and its file; the kernel frees the
// namespace once no process is left in it.
func deleteNamedNetns(path string) error {
	err := unix.Unmount(path, unix.MNT_DETACH)
	if err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("unmount netns %s: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

func deleteLink(name string) error {
	link, err := netlink.LinkByName(name)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) {
			return nil
		}
		return err
	}
	if err := netlink.LinkDel(link); err != nil && !errors.Is(err, unix.ENODEV) {
		return fmt.Errorf("delete link %s: %w", name, err)
	}
	return nil
}

func ipNet(a netip.Addr, bits int) *net.IPNet {
	return &net.IPNet{IP: net.IP(a.AsSlice()), Mask: net.CIDRMask(bits, 32)}
}

// FabricContains reports whether ip is on the fabric (10.199.0.0/16).
func FabricContains(ip net.IP) bool {
	a, ok := netip.AddrFromSlice(ip)
	return ok && fabricPrefix.Contains(a.Unmap())
}
