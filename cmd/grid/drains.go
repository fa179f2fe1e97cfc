package main

import (
	"fmt"
	"net"
	"net/netip"

	"github.com/dynogrid/grid/internal/drain"
	"github.com/dynogrid/grid/internal/grid"
)

// drainPolicy is where log drains may connect: what drain.DefaultAllow
// allows, except the grid's own networks (deny: dyno, build and fabric
// subnets, --drain-deny) and this machine's addresses, where the API,
// NATS, the add-on servers and dynos listen. A drain must never become a
// tenant's way into the grid.
func drainPolicy(deny []netip.Prefix) func(netip.Addr) error {
	return func(a netip.Addr) error {
		if err := drain.DefaultAllow(a); err != nil {
			return err
		}
		for _, p := range deny {
			if p.Contains(a) {
				return fmt.Errorf("drain address %s is inside the grid (%s); point the drain at a receiver outside it: %w", a, p, grid.ErrForbidden)
			}
		}
		if isLocal(a) {
			return fmt.Errorf("drain address %s is this server's own; point the drain at a receiver outside the grid: %w", a, grid.ErrForbidden)
		}
		return nil
	}
}

// isLocal reports whether a is an address of this machine (now: addresses
// come and go).
func isLocal(a netip.Addr) bool {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return true // unsure: refuse
	}
	for _, ad := range addrs {
		if n, ok := ad.(*net.IPNet); ok {
			if ip, ok := netip.AddrFromSlice(n.IP); ok && ip.Unmap() == a {
				return true
			}
		}
	}
	return false
}
