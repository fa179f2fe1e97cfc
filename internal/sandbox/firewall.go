package sandbox

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
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
//	input        iifname gd* ct state established,related accept
//	             iifname gd* reject            # dynos never open connections to the host
//	forward      oifname gd* ct state established,related accept
//	             iifname gd* oifname gd* reject  # no dyno reaches another
//	             iifname gd* ip daddr 169.254.0.0/16 reject
//	             iifname gd* accept            # egress
//	postrouting  ip saddr <subnet> oifname != gd* masquerade
//
// The host reaches every dyno port directly (its packets take the output
// path, which is not filtered). Rejects answer with ICMP admin-prohibited
// so a dyno's connect fails at once instead of hanging.
//
// New connections from other machines towards dynos are forwarded
// (policy accept) so routers on other hosts could reach them.

// firewall owns the Manager's nftables table.
type firewall struct {
	table  *nftables.Table
	subnet netip.Prefix
}

func newFirewall(subnet netip.Prefix) *firewall {
	name := "grid_" + strings.NewReplacer(".", "_", "/", "_").Replace(subnet.String())
	return &firewall{table: &nftables.Table{Family: nftables.TableFamilyINet, Name: name}, subnet: subnet}
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
	f.rule(c, ch, ifname(expr.MetaKeyIIFNAME, true), ctEstablished(), accept())
	f.rule(c, ch, ifname(expr.MetaKeyIIFNAME, true), reject())
}

func (f *firewall) forwardChain(c *nftables.Conn) {
	ch := f.chain(c, "forward", nftables.ChainHookForward, nftables.ChainPriorityFilter, nftables.ChainTypeFilter)
	f.rule(c, ch, ifname(expr.MetaKeyOIFNAME, true), ctEstablished(), accept())
	f.rule(c, ch, ifname(expr.MetaKeyIIFNAME, true), ifname(expr.MetaKeyOIFNAME, true), reject())
	f.rule(c, ch, ifname(expr.MetaKeyIIFNAME, true), ipv4In(16, netip.MustParsePrefix("169.254.0.0/16")), reject())
	f.rule(c, ch, ifname(expr.MetaKeyIIFNAME, true), accept())
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
