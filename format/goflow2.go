package format

import (
	"net/netip"

	protoproducer "github.com/netsampler/goflow2/v2/producer/proto"

	pb "github.com/flowgate/flowgate/proto"
)

// appendGoFlow2 appends f as goflow2 v2 writes a flow with its default
// JSON format, for pipelines built on goflow2's output: its keys in its
// order, and its value shapes (protocol and Ethernet type names, MACs as
// text, prefixes for src_net and dst_net, "" for an address not sent, 0 for
// a number not sent). Keys of values flowgate does not keep are left out:
// forwarding_status, next_hop_as, bgp_communities, as_path, mpls_ttl,
// mpls_label, mpls_ip, observation_point_id, layer_stack, layer_size and
// the ipv6_routing_header ones. bytes and packets are as enrich left them
// (scaled by the sampling rate unless scaling is off, where goflow2 never
// scales). An interface word that is not an ifIndex (sFlow's "none",
// "dropped", "several") is 0 where goflow2 writes the raw word. asString
// writes it as a JSON string, as appendFlow does.
func appendGoFlow2(dst []byte, f *pb.Flow, asString bool) []byte {
	o := newObject(dst, asString)
	o.str(kType, goflow2Type(f.Type))
	o.uint(gTimeReceivedNs, f.TimeReceivedNs)
	o.uint(gSequenceNum, uint64(f.SequenceNum))
	o.uint(gSamplingRate, f.SamplingRate)
	o.ipText(gSamplerAddress, f.Exporter)
	// sFlow has no flow times: goflow2 gives the receive time, as flowgate
	// does, but to the nanosecond.
	start, end := f.StartMs*1e6, f.EndMs*1e6
	if f.Type == pb.FlowType_SFLOW_5 || !has(f, pb.Field_START) {
		start = f.TimeReceivedNs
	}
	if f.Type == pb.FlowType_SFLOW_5 || !has(f, pb.Field_END) {
		end = f.TimeReceivedNs
	}
	o.uint(gTimeFlowStartNs, start)
	o.uint(gTimeFlowEndNs, end)
	o.uint(kBytes, f.Bytes)
	o.uint(kPackets, f.Packets)
	o.ipText(gSrcAddr, f.SrcAddr)
	o.ipText(gDstAddr, f.DstAddr)
	o.str(kEtype, etypeName(f))
	o.str(kProto, protoproducer.ProtoName(f.Proto))
	o.uint(gSrcPort, uint64(f.SrcPort))
	o.uint(gDstPort, uint64(f.DstPort))
	o.uint(gInIf, uint64(f.InIf))
	o.uint(gOutIf, uint64(f.OutIf))
	o.mac(gSrcMac, f.SrcMac)
	o.mac(gDstMac, f.DstMac)
	o.uint(gSrcVlan, uint64(f.Vlan))
	o.uint(gDstVlan, uint64(f.PostVlan))
	// goflow2's vlan_id is the frame's tag (sFlow) or the ingress VLAN (NetFlow).
	if has(f, pb.Field_DOT1Q_VLAN) {
		o.uint(gVlanId, uint64(f.Dot1QVlan))
	} else {
		o.uint(gVlanId, uint64(f.Vlan))
	}
	o.uint(gIpTos, uint64(f.Tos))
	o.uint(gIpTtl, uint64(f.IpTtl))
	o.uint(gIpFlags, uint64(f.FragmentFlags))
	o.uint(gTcpFlags, uint64(f.TcpFlags))
	o.uint(gIcmpType, uint64(f.IcmpTypeCode>>8))
	o.uint(gIcmpCode, uint64(f.IcmpTypeCode&0xff))
	o.uint(gIpv6FlowLabel, uint64(f.FlowLabel))
	o.uint(gFragmentId, uint64(f.FragmentId))
	o.uint(gFragmentOffset, uint64(f.FragmentOffset))
	o.uint(gSrcAs, uint64(f.SrcAs))
	o.uint(gDstAs, uint64(f.DstAs))
	o.ipText(gNextHop, f.NextHop)
	o.network(gSrcNet, f.SrcAddr, f.SrcMask)
	o.network(gDstNet, f.DstAddr, f.DstMask)
	o.ipText(gBgpNextHop, f.BgpNextHop)
	o.uint(gObservationDomainId, uint64(f.ObservationDomainId))
	return o.end()
}

// goflow2Type is the name goflow2 gives an export protocol: ours, but for
// the unknown one.
func goflow2Type(t pb.FlowType) string {
	if n := flowTypeName(t); n != "UNKNOWN" {
		return n
	}
	return "FLOWUNKNOWN"
}

// etypeName names the Ethernet type as goflow2 does ("" beyond these
// three); NetFlow sends none, goflow2 takes it from the addresses.
func etypeName(f *pb.Flow) string {
	etype := f.Etype
	if !has(f, pb.Field_ETYPE) {
		switch f.IpVersion {
		case 4:
			etype = 0x0800
		case 6:
			etype = 0x86dd
		}
	}
	switch etype {
	case 0x0800:
		return "IPv4"
	case 0x86dd:
		return "IPv6"
	case 0x0806:
		return "ARP"
	}
	return ""
}

// ipText writes an address as text, or "" when there is none.
func (o *object) ipText(k name, a []byte) {
	if len(a) != 4 && len(a) != 16 {
		o.str(k, "")
		return
	}
	o.addr(k, k, a)
}

// network writes the prefix of an address and mask length as goflow2
// renders it ("10.1.0.0/16"), "invalid Prefix" included.
func (o *object) network(k name, a []byte, mask uint32) {
	o.key(k)
	o.b = append(o.b, o.q...)
	ip, _ := netip.AddrFromSlice(a)
	p, err := ip.Prefix(int(min(mask, 255)))
	if err != nil {
		o.b = append(o.b, "invalid Prefix"...)
	} else {
		o.b = p.AppendTo(o.b)
	}
	o.b = append(o.b, o.q...)
}
