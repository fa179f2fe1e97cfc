package sandbox

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// The firewall is one nftables table per Manager (named after its subnet,
// e.g. "inet grid_10_231_0_0_16"), written in one transaction that
// replaces any previous version:
//
//	set reach    ipv4_addr . ipv4_addr . inet_service  # sandbox . service . port, per Spec.Reach
//
//	input        iifname gd* ct state established,related accept
//	             iifname gd* ip saddr . ip daddr . tcp dport @reach accept
//	             iifname gd* ip saddr <subnet> reject  # dynos never open connections to the host
//	forward      oifname gd* ct state established,related accept
//	             iifname gd* ct state established,related accept  # replies, also to Internal peers
//	             iifname gd* oifname gd* reject  # no dyno reaches another
//	             iifname gd* ip daddr 169.254.0.0/16 reject
//	             iifname gd* ip saddr <subnet> ip daddr <dns> udp/tcp dport 53 accept  # per nameserver in Internal
//	             iifname gd* ip saddr . ip daddr . tcp dport @reach accept
//	             iifname gd* ip daddr <addr> tcp dport <ports> reject                # per Config.Services
//	             iifname gd* ip saddr <subnet> ip daddr <internal> reject           # per Config.Internal
//	             iifname gd* accept            # egress
//	             oifname gd* ip daddr <subnet> ip saddr <subnet> reject  # forged: our dynos never come from outside
//	             oifname gd* ip daddr <subnet> ip saddr <router> accept  # per Config.Routers, if any,
//	             oifname gd* ip daddr <subnet> reject                    #   and then nothing else
//	postrouting  ip saddr <subnet> oifname != gd* masquerade
//
// A sandbox reaches an add-on server only at the endpoints of its own
// Spec.Reach (its app's add-ons), each of them added to the set while the
// sandbox exists: not another app's Redis on the next port, even where
// the servers are on the open internet.
//
// The host reaches every dyno port directly (its packets take the output
// path, which is not filtered). Rejects answer with ICMP admin-prohibited
// so a connect fails at once instead of hanging. Without Config.Routers,
// new connections from other machines towards dynos are forwarded.

// firewall owns the Manager's nftables table.
type firewall struct {
	table    *nftables.Table
	subnet   netip.Prefix
	internal []netip.Prefix
	dns      []netip.Addr // nameservers inside internal, kept reachable on port 53
	routers  []netip.Prefix
	services []Service
	reach    *nftables.Set // the endpoints each sandbox may reach
}

func newFirewall(cfg Config) (*firewall, error) {
	name := "grid_" + strings.NewReplacer(".", "_", "/", "_").Replace(cfg.Subnet.String())
	f := &firewall{
		table:  &nftables.Table{Family: nftables.TableFamilyINet, Name: name},
		subnet: cfg.Subnet, internal: cfg.Internal, routers: cfg.Routers, services: cfg.Services,
	}
	f.reach = &nftables.Set{
		Table: f.table, Name: "reach", Concatenation: true,
		KeyType: nftables.MustConcatSetType(nftables.TypeIPAddr, nftables.TypeIPAddr, nftables.TypeInetService),
	}
	if len(cfg.Internal) == 0 {
		return f, nil
	}
	servers, err := nameservers(cfg.resolvConf)
	if err != nil {
		return nil, fmt.Errorf("sandbox firewall: %w", err)
	}
	for _, a := range servers {
		if slices.ContainsFunc(cfg.Internal, func(p netip.Prefix) bool { return p.Contains(a) }) {
			f.dns = append(f.dns, a)
		}
	}
	return f, nil
}

// nameservers lists the IPv4 nameservers of a resolv.conf; a missing file
// has none.
func nameservers(path string) ([]netip.Addr, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []netip.Addr
	for line := range strings.Lines(string(b)) {
		f := strings.Fields(line)
		if len(f) < 2 || f[0] != "nameserver" {
			continue
		}
		if a, err := netip.ParseAddr(f[1]); err == nil && a.Is4() {
			out = append(out, a)
		}
	}
	return out, nil
}

// install replaces the table with the current rules, atomically.
func (f *firewall) install() error {
	c, err := nftables.New()
	if err != nil {
		return err
	}
	c.AddTable(f.table) // "add" then "delete": the delete cannot fail for a missing table
	c.DelTable(f.table)
	c.AddTable(f.table)
	if err := c.AddSet(f.reach, nil); err != nil {
		return fmt.Errorf("nftables set %s: %w", f.reach.Name, err)
	}
	f.inputChain(c)
	f.forwardChain(c)
	f.natChain(c)
	if err := c.Flush(); err != nil {
		return fmt.Errorf("nftables table %s: %w", f.table.Name, err)
	}
	return nil
}

// remove deletes the table; a missing table is fine.
func (f *firewall) remove() error {
	c, err := nftables.New()
	if err != nil {
		return err
	}
	c.DelTable(f.table)
	if err := c.Flush(); err != nil && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("nftables table %s: %w", f.table.Name, err)
	}
	return nil
}

func (f *firewall) chain(c *nftables.Conn, name string, hook *nftables.ChainHook, prio *nftables.ChainPriority, typ nftables.ChainType) *nftables.Chain {
	accept := nftables.ChainPolicyAccept
	return c.AddChain(&nftables.Chain{Name: name, Table: f.table, Hooknum: hook, Priority: prio, Type: typ, Policy: &accept})
}

func (f *firewall) inputChain(c *nftables.Conn) {
	ch := f.chain(c, "input", nftables.ChainHookInput, nftables.ChainPriorityFilter, nftables.ChainTypeFilter)
	fromDyno := ifname(expr.MetaKeyIIFNAME, true)
	f.rule(c, ch, fromDyno, ctEstablished(), accept())
	// The reject is for this Manager's sandboxes only: every table's
	// input chain sees every sandbox's packets, and a catch-all in one
	// Manager's table would refuse the services another admits.
	// (Sandboxes cannot forge their source: they have no CAP_NET_RAW.)
	fromOurs := append(fromDyno, ipv4In(12, f.subnet)...)
	f.rule(c, ch, fromDyno, f.reached(), accept())
	f.rule(c, ch, fromOurs, reject())
}

func (f *firewall) forwardChain(c *nftables.Conn) {
	ch := f.chain(c, "forward", nftables.ChainHookForward, nftables.ChainPriorityFilter, nftables.ChainTypeFilter)
	fromDyno, toDyno := ifname(expr.MetaKeyIIFNAME, true), ifname(expr.MetaKeyOIFNAME, true)
	f.rule(c, ch, toDyno, ctEstablished(), accept())
	// Replies on connections the router (or anyone admitted) opened to a
	// dyno, even when that peer is in Internal.
	f.rule(c, ch, fromDyno, ctEstablished(), accept())
	f.rule(c, ch, fromDyno, toDyno, reject())
	f.rule(c, ch, fromDyno, ipv4In(16, netip.MustParsePrefix("169.254.0.0/16")), reject())
	// The rules below match this Manager's subnet too: every Manager's
	// table sees every sandbox's packets.
	fromOurs, toOurs := append(fromDyno, ipv4In(12, f.subnet)...), append(toDyno, ipv4In(16, f.subnet)...)
	for _, a := range f.dns {
		for _, proto := range []byte{unix.IPPROTO_UDP, unix.IPPROTO_TCP} {
			f.rule(c, ch, fromOurs, ipv4In(16, netip.PrefixFrom(a, 32)), dport(proto, 53), accept())
		}
	}
	f.rule(c, ch, fromDyno, f.reached(), accept())
	for _, sv := range f.services {
		f.rule(c, ch, fromOurs, ipv4In(16, netip.PrefixFrom(sv.Addr, 32)), tcpPorts(sv.FirstPort, sv.LastPort), reject())
	}
	for _, p := range f.internal {
		f.rule(c, ch, fromOurs, ipv4In(16, p), reject())
	}
	f.rule(c, ch, fromDyno, accept())
	// What is left towards dynos are new connections from elsewhere.
	f.rule(c, ch, toOurs, ipv4In(12, f.subnet), reject())
	if len(f.routers) > 0 {
		for _, p := range f.routers {
			f.rule(c, ch, toOurs, ipv4In(12, p), accept())
		}
		f.rule(c, ch, toOurs, reject())
	}
}

// reached matches TCP packets whose source, destination and port are an
// element of the reach set. The three are loaded into consecutive 32-bit
// registers (1 is the first of them), as nft does for a concatenation.
func (f *firewall) reached() []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.NFPROTO_IPV4}},
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.IPPROTO_TCP}},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 12, Len: 4},
		&expr.Payload{DestRegister: 9, Base: expr.PayloadBaseNetworkHeader, Offset: 16, Len: 4},
		&expr.Payload{DestRegister: 10, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
		&expr.Lookup{SourceRegister: 1, SetName: f.reach.Name, SetID: f.reach.ID},
	}
}

// open lets the sandbox at addr reach those of endpoints that lie in a
// service (an endpoint elsewhere is left to the other rules: egress if it
// is on the internet, refused if it is internal).
func (f *firewall) open(addr netip.Addr, endpoints []netip.AddrPort) error {
	return f.edit(addr, endpoints, (*nftables.Conn).SetAddElements)
}

// close takes back what open gave addr; elements already gone are fine.
func (f *firewall) close(addr netip.Addr, endpoints []netip.AddrPort) error {
	err := f.edit(addr, endpoints, (*nftables.Conn).SetDeleteElements)
	if errors.Is(err, unix.ENOENT) {
		return nil
	}
	return err
}

func (f *firewall) edit(addr netip.Addr, endpoints []netip.AddrPort, op func(*nftables.Conn, *nftables.Set, []nftables.SetElement) error) error {
	var elems []nftables.SetElement
	for _, e := range endpoints {
		if !slices.ContainsFunc(f.services, func(sv Service) bool { return sv.contains(e) }) {
			continue
		}
		src, dst := addr.As4(), e.Addr().As4()
		key := slices.Concat(src[:], dst[:], binaryutil.BigEndian.PutUint16(e.Port()), []byte{0, 0})
		elems = append(elems, nftables.SetElement{Key: key})
	}
	if len(elems) == 0 {
		return nil
	}
	c, err := nftables.New()
	if err != nil {
		return err
	}
	if err := op(c, f.reach, elems); err != nil {
		return err
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("nftables set %s of %s: %w", f.reach.Name, addr, err)
	}
	return nil
}

func (f *firewall) natChain(c *nftables.Conn) {
	ch := f.chain(c, "postrouting", nftables.ChainHookPostrouting, nftables.ChainPriorityNATSource, nftables.ChainTypeNAT)
	f.rule(c, ch, ipv4In(12, f.subnet), ifname(expr.MetaKeyOIFNAME, false), []expr.Any{&expr.Masq{}})
}

func (f *firewall) rule(c *nftables.Conn, ch *nftables.Chain, parts ...[]expr.Any) {
	var exprs []expr.Any
	for _, p := range parts {
		exprs = append(exprs, p...)
	}
	c.AddRule(&nftables.Rule{Table: f.table, Chain: ch, Exprs: exprs})
}

// ifname matches (or, with match false, excludes) sandbox veths by name
// prefix, like nft's "gd*".
func ifname(key expr.MetaKey, match bool) []expr.Any {
	op := expr.CmpOpEq
	if !match {
		op = expr.CmpOpNeq
	}
	return []expr.Any{
		&expr.Meta{Key: key, Register: 1},
		&expr.Cmp{Op: op, Register: 1, Data: []byte(vethPrefix)},
	}
}

// ipv4In matches IPv4 packets whose address at offset (12 source, 16
// destination) lies in p.
func ipv4In(offset uint32, p netip.Prefix) []expr.Any {
	addr := p.Masked().Addr().As4()
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.NFPROTO_IPV4}},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: offset, Len: 4},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: net.CIDRMask(p.Bits(), 32), Xor: make([]byte, 4)},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: addr[:]},
	}
}

// dport matches packets of transport proto to port.
func dport(proto byte, port uint16) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{proto}},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.BigEndian.PutUint16(port)},
	}
}

// tcpPorts matches TCP packets to a port from first to last.
func tcpPorts(first, last uint16) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.IPPROTO_TCP}},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
		&expr.Cmp{Op: expr.CmpOpGte, Register: 1, Data: binaryutil.BigEndian.PutUint16(first)},
		&expr.Cmp{Op: expr.CmpOpLte, Register: 1, Data: binaryutil.BigEndian.PutUint16(last)},
	}
}

func ctEstablished() []expr.Any {
	return []expr.Any{
		&expr.Ct{Register: 1, Key: expr.CtKeySTATE},
		&expr.Bitwise{
			SourceRegister: 1, DestRegister: 1, Len: 4,
			Mask: binaryutil.NativeEndian.PutUint32(expr.CtStateBitESTABLISHED | expr.CtStateBitRELATED),
			Xor:  binaryutil.NativeEndian.PutUint32(0),
		},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: binaryutil.NativeEndian.PutUint32(0)},
	}
}

func accept() []expr.Any { return []expr.Any{&expr.Verdict{Kind: expr.VerdictAccept}} }

func reject() []expr.Any {
	return []expr.Any{&expr.Reject{Type: unix.NFT_REJECT_ICMPX_UNREACH, Code: unix.NFT_REJECT_ICMPX_ADMIN_PROHIBITED}}
}
