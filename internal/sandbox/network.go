package sandbox

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"net"
	"net/netip"
	"os"
	"runtime"
	"sync"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/dynogrid/grid/internal/grid"
)

// Host-side veth names are vethPrefix + a 4-hex tag of the Manager's
// subnet + the slot number, e.g. "gd1a2b17". The firewall matches every
// sandbox by vethPrefix; New removes leftovers by the tagged prefix, so
// Managers with different subnets never touch each other's links.
const vethPrefix = "gd"

// peerName is the sandbox side of the veth pair, inside its netns.
const peerName = "eth0"

// defaultSubnet is carved into one /30 per networked sandbox when
// Config.Subnet is zero.
var defaultSubnet = netip.MustParsePrefix("10.231.0.0/16")

// linkPrefix is the tagged prefix of a Manager's host-side veths.
func linkPrefix(subnet netip.Prefix) string {
	h := fnv.New32a()
	h.Write([]byte(subnet.String()))
	return fmt.Sprintf("%s%04x", vethPrefix, h.Sum32()&0xffff)
}

// addrPool hands out /30 slots of a subnet; slot i is the i-th /30. It is
// safe for concurrent use.
type addrPool struct {
	base uint32 // first address of the subnet
	size int    // number of slots

	mu   sync.Mutex
	used map[int]bool
	next int // where the next search starts, so freed slots rest a while
}

func newAddrPool(subnet netip.Prefix) (*addrPool, error) {
	if !subnet.Addr().Is4() || subnet.Bits() > 30 || subnet.Bits() < 8 {
		return nil, fmt.Errorf("sandbox subnet %s: want an IPv4 prefix between /8 and /30: %w", subnet, grid.ErrInvalid)
	}
	a := subnet.Masked().Addr().As4()
	return &addrPool{base: binary.BigEndian.Uint32(a[:]), size: 1 << (30 - subnet.Bits()), used: map[int]bool{}}, nil
}

func (p *addrPool) get() (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i := range p.size {
		slot := (p.next + i) % p.size
		if !p.used[slot] {
			p.used[slot] = true
			p.next = slot + 1
			return slot, nil
		}
	}
	return 0, fmt.Errorf("sandbox addresses: all %d exhausted: %w", p.size, grid.ErrUnavailable)
}

// take marks slot used (by a sandbox of an earlier run).
func (p *addrPool) take(slot int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.used[slot] = true
}

func (p *addrPool) put(slot int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.used, slot)
}

func (p *addrPool) inUse() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.used)
}

// addrs returns the host-side (.1) and sandbox-side (.2) address of slot.
func (p *addrPool) addrs(slot int) (host, sandbox netip.Addr) {
	at := func(off uint32) netip.Addr {
		var b [4]byte
		binary.BigEndian.PutUint32(b[:], p.base+uint32(slot)*4+off)
		return netip.AddrFrom4(b)
	}
	return at(1), at(2)
}

// sandboxNet is the host-side network state of one sandbox.
type sandboxNet struct {
	slot   int
	host   netip.Addr // host end of the veth, the sandbox's gateway
	addr   netip.Addr // sandbox end
	link   string     // host-side veth name
	nsPath string     // bind mount keeping the netns alive
	reach  []netip.AddrPort
}

// linkName is the host-side veth of address slot.
func (m *Manager) linkName(slot int) string { return fmt.Sprintf("%s%d", m.linkPrefix, slot) }

// sandboxNetAt describes the network of the sandbox with layout l at slot
// that may reach the endpoints reach.
func (m *Manager) sandboxNetAt(slot int, l layout, reach []netip.AddrPort) *sandboxNet {
	n := &sandboxNet{slot: slot, link: m.linkName(slot), nsPath: l.netns(), reach: reach}
	n.host, n.addr = m.pool.addrs(slot)
	return n
}

// setupNetwork creates the sandbox's netns at l.netns(), wires it to the
// host with a veth pair, caps its egress and lets it reach its endpoints.
// On error nothing is left.
func (m *Manager) setupNetwork(l layout, spec Spec) (_ *sandboxNet, err error) {
	slot, err := m.pool.get()
	if err != nil {
		return nil, err
	}
	n := m.sandboxNetAt(slot, l, spec.Reach)
	defer func() {
		if err != nil {
			m.teardownNetwork(n)
		}
	}()
	if err := newNetns(n.nsPath); err != nil {
		return nil, fmt.Errorf("create netns: %w", err)
	}
	ns, err := netns.GetFromPath(n.nsPath)
	if err != nil {
		return nil, err
	}
	defer ns.Close()
	if err := addVeth(n, ns); err != nil {
		return nil, fmt.Errorf("veth %s: %w", n.link, err)
	}
	if err := configureInside(n, ns); err != nil {
		return nil, fmt.Errorf("configure sandbox netns: %w", err)
	}
	exempt := append([]netip.Prefix{netip.PrefixFrom(n.host, 32)}, m.cfg.Routers...)
	if err := shapeEgress(ns, spec.EgressMbit, exempt); err != nil {
		return nil, fmt.Errorf("egress cap: %w", err)
	}
	if err := m.fw.open(n.addr, n.reach); err != nil {
		return nil, fmt.Errorf("firewall: %w", err)
	}
	return n, nil
}

// newNetns creates a network namespace and bind-mounts it at path. The
// unshare happens on a thread that is thrown away afterwards (the
// goroutine exits while locked), so no Go thread is left in the new netns.
func newNetns(path string) error {
	if err := os.WriteFile(path, nil, 0o444); err != nil {
		return err
	}
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
	return <-errc
}

// addVeth creates the veth pair with its peer already inside ns, and
// brings the host end up with the gateway address.
func addVeth(n *sandboxNet, ns netns.NsHandle) error {
	veth := &netlink.Veth{
		LinkAttrs:     netlink.LinkAttrs{Name: n.link},
		PeerName:      peerName,
		PeerNamespace: netlink.NsFd(int(ns)),
	}
	err := netlink.LinkAdd(veth)
	if errors.Is(err, unix.EEXIST) { // a leftover New could not see; take the name back
		deleteLink(n.link)
		err = netlink.LinkAdd(veth)
	}
	if err != nil {
		return err
	}
	link, err := netlink.LinkByName(n.link)
	if err != nil {
		return err
	}
	if err := netlink.AddrAdd(link, &netlink.Addr{IPNet: ipNet(n.host, 30)}); err != nil {
		return err
	}
	return netlink.LinkSetUp(link)
}

// configureInside gives the sandbox end its address and a default route
// via the host end. Loopback is brought up by libcontainer.
func configureInside(n *sandboxNet, ns netns.NsHandle) error {
	h, link, err := insideLink(ns)
	if err != nil {
		return err
	}
	defer h.Close()
	if err := h.AddrAdd(link, &netlink.Addr{IPNet: ipNet(n.addr, 30)}); err != nil {
		return err
	}
	if err := h.LinkSetUp(link); err != nil {
		return err
	}
	return h.RouteAdd(&netlink.Route{LinkIndex: link.Attrs().Index, Gw: net.IP(n.host.AsSlice())})
}

// insideLink is the sandbox end of the veth in ns, with a handle on ns
// for the caller to close.
func insideLink(ns netns.NsHandle) (*netlink.Handle, netlink.Link, error) {
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		return nil, nil, err
	}
	link, err := h.LinkByName(peerName)
	if err != nil {
		h.Close()
		return nil, nil, err
	}
	return h, link, nil
}

// teardownNetwork removes what setupNetwork made; safe on partial state
// and when run twice.
func (m *Manager) teardownNetwork(n *sandboxNet) error {
	// Before the address goes back to the pool, and its next sandbox.
	err := m.fw.close(n.addr, n.reach)
	err = errors.Join(err, deleteLink(n.link))
	err = errors.Join(err, unmountNetns(n.nsPath))
	m.pool.put(n.slot)
	return err
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

// unmountNetns drops the bind mount that keeps a netns alive; the kernel
// frees the namespace once no process is left in it.
func unmountNetns(path string) error {
	err := unix.Unmount(path, unix.MNT_DETACH)
	if err == nil || errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOENT) {
		return nil
	}
	return fmt.Errorf("unmount netns %s: %w", path, err)
}

func ipNet(a netip.Addr, bits int) *net.IPNet {
	return &net.IPNet{IP: net.IP(a.AsSlice()), Mask: net.CIDRMask(bits, 32)}
}

// enableForwarding turns on IPv4 forwarding so sandbox traffic can leave
// the host (the firewall decides what may).
func enableForwarding() error {
	return os.WriteFile("/proc/sys/net/ipv4/ip_forward", []byte("1\n"), 0o644)
}
