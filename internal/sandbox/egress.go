package sandbox

import (
	"encoding/binary"
	"fmt"
	"net/netip"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// A sandbox's egress is capped at Spec.EgressMbit by queueing disciplines
// on its own end of the veth, inside its netns, where it cannot change
// them (no CAP_NET_ADMIN):
//
//	qdisc htb 1: default 20
//	class htb 1:20 rate <EgressMbit> ceil <EgressMbit> burst <burst>
//	qdisc tbf 20: parent 1:20 rate <EgressMbit> burst <burst> limit <burst + egressQueueMs of rate>
//	filter u32 parent 1: ip dst <exempt> classid 1:0   # per exempt prefix: htb's direct queue, unshaped
//
// (htb for the classifying, since this kernel has no prio qdisc; tbf as
// the leaf for its byte limit on the queue, which htb's default pfifo
// counts in packets of up to 64 KB.)
//
// Exempt are the sandbox's gateway (the host, whose router opens the
// connections dynos answer) and Config.Routers: what the cap bounds is
// what a dyno sends out on its own, to the internet or its add-ons, so
// that one uploading as fast as it can does not take the host's link from
// its neighbours, while no response to a request is slowed. Without
// Config.Routers, responses to routers on other machines are capped too.

// The bucket's burst is egressBurstMs of the rate, at least
// egressMinBurst: how much a sandbox sends at line rate after it was
// quiet.
const (
	egressBurstMs  = 10
	egressMinBurst = 32 << 10
	// egressQueueMs is how much a sandbox may queue at its rate before
	// its packets are dropped (and its TCP slows down).
	egressQueueMs = 100
)

// shapeEgress caps what the sandbox in ns sends at mbit, except to exempt.
func shapeEgress(ns netns.NsHandle, mbit int, exempt []netip.Prefix) error {
	h, link, err := insideLink(ns)
	if err != nil {
		return err
	}
	defer h.Close()
	idx := link.Attrs().Index
	htb := netlink.NewHtb(netlink.QdiscAttrs{LinkIndex: idx, Handle: netlink.MakeHandle(1, 0), Parent: netlink.HANDLE_ROOT})
	htb.Defcls = 0x20
	if err := h.QdiscAdd(htb); err != nil {
		return fmt.Errorf("htb qdisc: %w", err)
	}
	rate := uint64(mbit) * 1_000_000 / 8 // bytes a second
	burst := max(rate*egressBurstMs/1000, egressMinBurst)
	class := netlink.NewHtbClass(
		netlink.ClassAttrs{LinkIndex: idx, Handle: netlink.MakeHandle(1, 0x20), Parent: netlink.MakeHandle(1, 0)},
		netlink.HtbClassAttrs{Rate: rate * 8, Ceil: rate * 8, Buffer: uint32(burst), Cbuffer: uint32(burst)},
	)
	if err := h.ClassAdd(class); err != nil {
		return fmt.Errorf("htb class: %w", err)
	}
	tbf := &netlink.Tbf{
		QdiscAttrs: netlink.QdiscAttrs{LinkIndex: idx, Handle: netlink.MakeHandle(0x20, 0), Parent: netlink.MakeHandle(1, 0x20)},
		Rate:       rate,
		Buffer:     netlink.Xmittime(rate, uint32(burst)),
		Limit:      uint32(burst + rate*egressQueueMs/1000),
	}
	if err := h.QdiscAdd(tbf); err != nil {
		return fmt.Errorf("tbf qdisc: %w", err)
	}
	for i, p := range exempt {
		addr := p.Masked().Addr().As4()
		mask := uint32(0xffffffff) << (32 - p.Bits())
		if p.Bits() == 0 {
			mask = 0
		}
		f := &netlink.U32{
			FilterAttrs: netlink.FilterAttrs{LinkIndex: idx, Parent: netlink.MakeHandle(1, 0), Priority: uint16(i + 1), Protocol: unix.ETH_P_IP},
			ClassId:     netlink.MakeHandle(1, 0), // htb's own handle: its direct queue
			Sel: &netlink.TcU32Sel{
				Flags: netlink.TC_U32_TERMINAL,
				// Host order: the library turns it into network order.
				Keys: []netlink.TcU32Key{{Mask: mask, Val: binary.BigEndian.Uint32(addr[:]) & mask, Off: 16}},
			},
		}
		if err := h.FilterAdd(f); err != nil {
			return fmt.Errorf("filter for %v: %w", p, err)
		}
	}
	return nil
}
