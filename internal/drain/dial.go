package drain

import (
	"fmt"
	"net"
	"net/netip"
	"syscall"
	"time"

	"github.com/dynogrid/grid/internal/grid"
)

// broadcast is 255.255.255.255, which netip has no name for.
var broadcast = netip.AddrFrom4([4]byte{255, 255, 255, 255})

// dialTimeout bounds one TCP connect (and, for HTTP, TLS handshake).
const dialTimeout = 10 * time.Second

// DefaultAllow is the address policy of a drain whose Config.Allow is
// nil. It refuses the addresses a tenant could use to reach the grid
// itself or its cloud's metadata service: loopback, link-local (which
// holds 169.254.169.254), unspecified (0.0.0.0/8, ::), multicast and
// broadcast addresses. It allows private-use addresses, because a
// self-hosted grid's log servers often live on the operator's private
// network; an operator who hosts tenants it does not trust passes a
// stricter Allow. Errors wrap grid.ErrForbidden.
func DefaultAllow(a netip.Addr) error {
	a = a.Unmap()
	why := ""
	switch {
	case a.IsLoopback():
		why = "a loopback address"
	case a.IsMulticast(), a == broadcast:
		why = "a multicast or broadcast address"
	case a.IsLinkLocalUnicast():
		why = "a link-local address"
	case a.IsUnspecified(), a.Is4() && a.As4()[0] == 0: // Linux takes 0.0.0.0 for this host
		why = "the unspecified address"
	default:
		return nil
	}
	return fmt.Errorf("drain address %s is %s; point the drain at a receiver outside this grid: %w", a, why, grid.ErrForbidden)
}

// newDialer returns a dialer that checks allow against the address it is
// about to connect to, after DNS resolution, so a name that resolves (or
// later re-resolves) to a forbidden address is refused too.
func newDialer(allow func(netip.Addr) error) *net.Dialer {
	return &net.Dialer{
		Timeout: dialTimeout,
		Control: func(_, address string, _ syscall.RawConn) error {
			ap, err := netip.ParseAddrPort(address)
			if err != nil {
				return fmt.Errorf("drain address %q: %v: %w", address, err, grid.ErrForbidden)
			}
			return allow(ap.Addr().Unmap())
		},
	}
}
