package format

import (
	pb "github.com/flowgate/flowgate/proto"
)

func has(f *pb.Flow, field pb.Field) bool { return f.Present&(1<<uint(field)) != 0 }

// AppendFlow appends f as one flat JSON object whose keys are IANA IPFIX
// Information Element names, the naming Sekoia's NetFlow parser reads
// whatever version the flow arrived in. Values the exporter did not send are
// left out rather than written as zero.
func AppendFlow(dst []byte, f *pb.Flow) []byte { return appendFlow(dst, f, false) }

// AppendFlowString appends the same object as a JSON string holding it,
// as /jsons carries events: one pass, not an encoding and an escaping.
func AppendFlowString(dst []byte, f *pb.Flow) []byte { return appendFlow(dst, f, true) }

func appendFlow(dst []byte, f *pb.Flow, asString bool) []byte {
	o := newObject(dst, asString)
	if has(f, pb.Field_SRC_ADDR) {
		o.addr("sourceIPv4Address", "sourceIPv6Address", f.SrcAddr)
	}
	if has(f, pb.Field_DST_ADDR) {
		o.addr("destinationIPv4Address", "destinationIPv6Address", f.DstAddr)
	}
	if has(f, pb.Field_SRC_PORT) {
		o.uint("sourceTransportPort", uint64(f.SrcPort))
	}
	if has(f, pb.Field_DST_PORT) {
		o.uint("destinationTransportPort", uint64(f.DstPort))
	}
	if has(f, pb.Field_PROTO) {
		o.uint("protocolIdentifier", uint64(f.Proto))
	}
	if has(f, pb.Field_IP_VERSION) {
		o.uint("ipVersion", uint64(f.IpVersion))
	}
	if has(f, pb.Field_TOS) {
		o.uint("ipClassOfService", uint64(f.Tos))
	}
	if has(f, pb.Field_IP_TTL) {
		o.uint("ipTTL", uint64(f.IpTtl))
	}
	if has(f, pb.Field_FLOW_LABEL) {
		o.uint("flowLabelIPv6", uint64(f.FlowLabel))
	}
	if has(f, pb.Field_FRAGMENT_ID) {
		o.uint("fragmentIdentification", uint64(f.FragmentId))
	}
	if has(f, pb.Field_FRAGMENT_OFFSET) {
		o.uint("fragmentOffset", uint64(f.FragmentOffset))
	}
	if has(f, pb.Field_FRAGMENT_FLAGS) {
		o.uint("fragmentFlags", uint64(f.FragmentFlags))
	}
	if has(f, pb.Field_TCP_FLAGS) {
		o.uint("tcpControlBits", uint64(f.TcpFlags))
	}
	if has(f, pb.Field_BYTES) {
		o.uint("octetDeltaCount", f.Bytes)
	}
	if has(f, pb.Field_PACKETS) {
		o.uint("packetDeltaCount", f.Packets)
	}
	if has(f, pb.Field_IN_IF) {
		o.uint("ingressInterface", uint64(f.InIf))
	}
	if f.InIfName != "" {
		o.str("interfaceName", f.InIfName)
	}
	if has(f, pb.Field_OUT_IF) {
		o.uint("egressInterface", uint64(f.OutIf))
	}
	if f.OutIfName != "" {
		o.str("egressInterfaceName", f.OutIfName)
	}
	if has(f, pb.Field_START) {
		o.uint("flowStartSeconds", f.StartMs/1000)
		o.uint("flowStartMilliseconds", f.StartMs)
	}
	if has(f, pb.Field_END) {
		o.uint("flowEndSeconds", f.EndMs/1000)
		o.uint("flowEndMilliseconds", f.EndMs)
	}
	if has(f, pb.Field_START_UPTIME) {
		o.uint("flowStartSysUpTime", uint64(f.StartUptimeMs))
	}
	if has(f, pb.Field_END_UPTIME) {
		o.uint("flowEndSysUpTime", uint64(f.EndUptimeMs))
	}
	if has(f, pb.Field_SRC_AS) {
		o.uint("bgpSourceAsNumber", uint64(f.SrcAs))
	}
	if has(f, pb.Field_DST_AS) {
		o.uint("bgpDestinationAsNumber", uint64(f.DstAs))
	}
	if has(f, pb.Field_SRC_MASK) {
		if len(f.SrcAddr) == 16 {
			o.uint("sourceIPv6PrefixLength", uint64(f.SrcMask))
		} else {
			o.uint("sourceIPv4PrefixLength", uint64(f.SrcMask))
		}
	}
	if has(f, pb.Field_DST_MASK) {
		if len(f.DstAddr) == 16 {
			o.uint("destinationIPv6PrefixLength", uint64(f.DstMask))
		} else {
			o.uint("destinationIPv4PrefixLength", uint64(f.DstMask))
		}
	}
	if has(f, pb.Field_NEXT_HOP) {
		o.addr("ipNextHopIPv4Address", "ipNextHopIPv6Address", f.NextHop)
	}
	if has(f, pb.Field_BGP_NEXT_HOP) {
		o.addr("bgpNextHopIPv4Address", "bgpNextHopIPv6Address", f.BgpNextHop)
	}
	if has(f, pb.Field_SRC_MAC) {
		o.mac("sourceMacAddress", f.SrcMac)
	}
	if has(f, pb.Field_DST_MAC) {
		o.mac("destinationMacAddress", f.DstMac)
	}
	if has(f, pb.Field_ETYPE) {
		o.uint("ethernetType", uint64(f.Etype))
	}
	if has(f, pb.Field_VLAN) {
		o.uint("vlanId", uint64(f.Vlan))
	}
	if has(f, pb.Field_POST_VLAN) {
		o.uint("postVlanId", uint64(f.PostVlan))
	}
	if has(f, pb.Field_DOT1Q_VLAN) {
		o.uint("dot1qVlanId", uint64(f.Dot1QVlan))
	}
	if has(f, pb.Field_DIRECTION) {
		o.uint("flowDirection", uint64(f.Direction))
	}
	if has(f, pb.Field_ICMP_TYPE_CODE) {
		if f.IpVersion == 6 {
			o.uint("icmpTypeCodeIPv6", uint64(f.IcmpTypeCode))
		} else {
			o.uint("icmpTypeCodeIPv4", uint64(f.IcmpTypeCode))
		}
	}
	if has(f, pb.Field_FLOW_END_REASON) {
		o.uint("flowEndReason", uint64(f.FlowEndReason))
	}
	if has(f, pb.Field_SAMPLING) {
		o.uint("samplingPacketInterval", f.SamplingRate)
	}
	o.addr("exporterIPv4Address", "exporterIPv6Address", f.Exporter)
	if f.ExporterName != "" {
		o.str("exporterName", f.ExporterName)
	}
	if has(f, pb.Field_OBSERVATION_DOMAIN) {
		o.uint("observationDomainId", uint64(f.ObservationDomainId))
	}
	if f.TimeReceivedNs != 0 {
		o.uint("collectionTimeMilliseconds", f.TimeReceivedNs/1e6)
	}
	o.str("flowType", flowTypeName(f.Type))
	return o.end()
}

// flowTypeName is FlowType.String without the reflection behind it.
func flowTypeName(t pb.FlowType) string {
	switch t {
	case pb.FlowType_NETFLOW_V5:
		return "NETFLOW_V5"
	case pb.FlowType_NETFLOW_V9:
		return "NETFLOW_V9"
	case pb.FlowType_IPFIX:
		return "IPFIX"
	case pb.FlowType_SFLOW_5:
		return "SFLOW_5"
	}
	return "UNKNOWN"
}
