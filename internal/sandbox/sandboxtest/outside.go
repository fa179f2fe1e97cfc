package sandboxtest

import (
	"errors"
	"net"
	"net/http"
	"net/netip"
	"runtime"
	"testing"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// ServeOutside serves h from a network namespace standing for the
// internet, and returns its base URL ("http://10.235.250.2"). The
// namespace hangs off the host by a veth on prefix, a /30 of its own per
// test binary ("10.235.250.0/30"): the host end gets the first address,
// the server the second. Sandboxes reach it as they reach any server
// outside (their egress is forwarded and masqueraded); the grid's
// internal services never see it. name (at most 10 characters) labels
// the links and the namespace.
func ServeOutside(t testing.TB, name string, prefix netip.Prefix, h http.Handler) string {
	t.Helper()
	hostAddr := prefix.Masked().Addr().Next()
	farAddr := hostAddr.Next()
	nsName := "gridtest-" + name
	_ = netns.DeleteNamed(nsName) // a killed run's
	if old, err := netlink.LinkByName("gto-" + name); err == nil {
		_ = netlink.LinkDel(old)
	}
	ns, err := newNamedNetns(nsName)
	if err != nil {
		t.Fatalf("outside: netns: %v", err)
	}
	t.Cleanup(func() {
		ns.Close()
		_ = netns.DeleteNamed(nsName)
	})
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "gto-" + name}, PeerName: "gti-" + name, PeerNamespace: netlink.NsFd(ns)}
	if err := netlink.LinkAdd(veth); err != nil {
		t.Fatalf("outside: veth: %v", err)
	}
	t.Cleanup(func() { _ = netlink.LinkDel(veth) })
	if err := configure(nil, veth.Name, netip.PrefixFrom(hostAddr, prefix.Bits()), netip.Addr{}); err != nil {
		t.Fatalf("outside: host end: %v", err)
	}
	inside, err := netlink.NewHandleAt(ns)
	if err != nil {
		t.Fatalf("outside: %v", err)
	}
	defer inside.Close()
	if err := configure(inside, veth.PeerName, netip.PrefixFrom(farAddr, prefix.Bits()), hostAddr); err != nil {
		t.Fatalf("outside: far end: %v", err)
	}
	ln, err := listenIn(ns, netip.AddrPortFrom(farAddr, 80).String())
	if err != nil {
		t.Fatalf("outside: listen: %v", err)
	}
	srv := &http.Server{Handler: h}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close() })
	return "http://" + farAddr.String()
}

// newNamedNetns makes a named network namespace without leaving the
// calling goroutine's thread in it.
func newNamedNetns(name string) (netns.NsHandle, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	origin, err := netns.Get()
	if err != nil {
		return 0, err
	}
	defer origin.Close()
	ns, err := netns.NewNamed(name)
	if err != nil {
		return 0, err
	}
	if err := netns.Set(origin); err != nil {
		ns.Close()
		return 0, err
	}
	return ns, nil
}

// configure gives link (through h; nil is the host's namespace) addr and
// brings it and lo up; a valid gw becomes the default route.
func configure(h *netlink.Handle, link string, addr netip.Prefix, gw netip.Addr) error {
	if h == nil {
		h = &netlink.Handle{}
	}
	l, err := h.LinkByName(link)
	if err != nil {
		return err
	}
	ipnet := &net.IPNet{IP: addr.Addr().AsSlice(), Mask: net.CIDRMask(addr.Bits(), 32)}
	if err := h.AddrAdd(l, &netlink.Addr{IPNet: ipnet}); err != nil {
		return err
	}
	if err := h.LinkSetUp(l); err != nil {
		return err
	}
	if !gw.IsValid() {
		return nil
	}
	lo, err := h.LinkByName("lo")
	if err != nil {
		return err
	}
	if err := h.LinkSetUp(lo); err != nil {
		return err
	}
	return h.RouteAdd(&netlink.Route{LinkIndex: l.Attrs().Index, Gw: gw.AsSlice()})
}

// listenIn opens a TCP listener inside ns; the socket keeps the namespace
// it was made in.
func listenIn(ns netns.NsHandle, addr string) (net.Listener, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	origin, err := netns.Get()
	if err != nil {
		return nil, err
	}
	defer origin.Close()
	if err := netns.Set(ns); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", addr)
	if serr := netns.Set(origin); serr != nil {
		// This thread must not go back to the pool in the wrong
		// namespace: keep it locked, so it dies with the goroutine.
		runtime.LockOSThread()
		return nil, errors.Join(err, serr)
	}
	return ln, err
}
