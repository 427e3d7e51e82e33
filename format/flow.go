package format

import (
	pb "github.com/flowgate/flowgate/proto"
)

func has(f *pb.Flow, field pb.Field) bool { return f.Present&(1<<uint(field)) != 0 }

// appendFlow appends f as one flat JSON object whose keys are IANA IPFIX
// Information Element names, the naming Sekoia's NetFlow parser reads
// whatever version the flow arrived in. Values the exporter did not send are
// left out rather than written as zero. asString writes the same object as
// a JSON string holding it, as /jsons carries events: one pass, not an
// encoding and an escaping.
func appendFlow(dst []byte, f *pb.Flow, asString bool) []byte {
	o := newObject(dst, asString)
	if has(f, pb.Field_SRC_ADDR) {
		o.addr(kSourceIPv4Address, kSourceIPv6Address, f.SrcAddr)
	}
	if has(f, pb.Field_DST_ADDR) {
		o.addr(kDestinationIPv4Address, kDestinationIPv6Address, f.DstAddr)
	}
	if has(f, pb.Field_SRC_PORT) {
		o.uint(kSourceTransportPort, uint64(f.SrcPort))
	}
	if has(f, pb.Field_DST_PORT) {
		o.uint(kDestinationTransportPort, uint64(f.DstPort))
	}
	if has(f, pb.Field_PROTO) {
		o.uint(kProtocolIdentifier, uint64(f.Proto))
	}
	if has(f, pb.Field_IP_VERSION) {
		o.uint(kIpVersion, uint64(f.IpVersion))
	}
	if has(f, pb.Field_TOS) {
		o.uint(kIpClassOfService, uint64(f.Tos))
	}
	if has(f, pb.Field_IP_TTL) {
		o.uint(kIpTTL, uint64(f.IpTtl))
	}
	if has(f, pb.Field_FLOW_LABEL) {
		o.uint(kFlowLabelIPv6, uint64(f.FlowLabel))
	}
	if has(f, pb.Field_FRAGMENT_ID) {
		o.uint(kFragmentIdentification, uint64(f.FragmentId))
	}
	if has(f, pb.Field_FRAGMENT_OFFSET) {
		o.uint(kFragmentOffset, uint64(f.FragmentOffset))
	}
	if has(f, pb.Field_FRAGMENT_FLAGS) {
		o.uint(kFragmentFlags, uint64(f.FragmentFlags))
	}
	if has(f, pb.Field_TCP_FLAGS) {
		o.uint(kTcpControlBits, uint64(f.TcpFlags))
	}
	if has(f, pb.Field_BYTES) {
		o.uint(kOctetDeltaCount, f.Bytes)
	}
	if has(f, pb.Field_PACKETS) {
		o.uint(kPacketDeltaCount, f.Packets)
	}
	if has(f, pb.Field_IN_IF) {
		o.uint(kIngressInterface, uint64(f.InIf))
	}
	if f.InIfName != "" {
		o.str(kInterfaceName, f.InIfName)
	}
	if has(f, pb.Field_OUT_IF) {
		o.uint(kEgressInterface, uint64(f.OutIf))
	}
	if f.OutIfName != "" {
		o.str(kEgressInterfaceName, f.OutIfName)
	}
	if has(f, pb.Field_START) {
		o.uint(kFlowStartSeconds, f.StartMs/1000)
		o.uint(kFlowStartMilliseconds, f.StartMs)
	}
	if has(f, pb.Field_END) {
		o.uint(kFlowEndSeconds, f.EndMs/1000)
		o.uint(kFlowEndMilliseconds, f.EndMs)
	}
	if has(f, pb.Field_START_UPTIME) {
		o.uint(kFlowStartSysUpTime, uint64(f.StartUptimeMs))
	}
	if has(f, pb.Field_END_UPTIME) {
		o.uint(kFlowEndSysUpTime, uint64(f.EndUptimeMs))
	}
	if has(f, pb.Field_SRC_AS) {
		o.uint(kBgpSourceAsNumber, uint64(f.SrcAs))
	}
	if has(f, pb.Field_DST_AS) {
		o.uint(kBgpDestinationAsNumber, uint64(f.DstAs))
	}
	if g := f.Geo; g != nil {
		o.geo(g)
	}
	if has(f, pb.Field_SRC_MASK) {
		if len(f.SrcAddr) == 16 {
			o.uint(kSourceIPv6PrefixLength, uint64(f.SrcMask))
		} else {
			o.uint(kSourceIPv4PrefixLength, uint64(f.SrcMask))
		}
	}
	if has(f, pb.Field_DST_MASK) {
		if len(f.DstAddr) == 16 {
			o.uint(kDestinationIPv6PrefixLength, uint64(f.DstMask))
		} else {
			o.uint(kDestinationIPv4PrefixLength, uint64(f.DstMask))
		}
	}
	if has(f, pb.Field_NEXT_HOP) {
		o.addr(kIpNextHopIPv4Address, kIpNextHopIPv6Address, f.NextHop)
	}
	if has(f, pb.Field_BGP_NEXT_HOP) {
		o.addr(kBgpNextHopIPv4Address, kBgpNextHopIPv6Address, f.BgpNextHop)
	}
	if has(f, pb.Field_SRC_MAC) {
		o.mac(kSourceMacAddress, f.SrcMac)
	}
	if has(f, pb.Field_DST_MAC) {
		o.mac(kDestinationMacAddress, f.DstMac)
	}
	if has(f, pb.Field_ETYPE) {
		o.uint(kEthernetType, uint64(f.Etype))
	}
	if has(f, pb.Field_VLAN) {
		o.uint(kVlanId, uint64(f.Vlan))
	}
	if has(f, pb.Field_POST_VLAN) {
		o.uint(kPostVlanId, uint64(f.PostVlan))
	}
	if has(f, pb.Field_DOT1Q_VLAN) {
		o.uint(kDot1qVlanId, uint64(f.Dot1QVlan))
	}
	if has(f, pb.Field_DIRECTION) {
		o.uint(kFlowDirection, uint64(f.Direction))
	}
	if has(f, pb.Field_ICMP_TYPE_CODE) {
		if f.IpVersion == 6 {
			o.uint(kIcmpTypeCodeIPv6, uint64(f.IcmpTypeCode))
		} else {
			o.uint(kIcmpTypeCodeIPv4, uint64(f.IcmpTypeCode))
		}
	}
	if has(f, pb.Field_FLOW_END_REASON) {
		o.uint(kFlowEndReason, uint64(f.FlowEndReason))
	}
	if has(f, pb.Field_SAMPLING) {
		o.uint(kSamplingPacketInterval, f.SamplingRate)
	}
	o.addr(kExporterIPv4Address, kExporterIPv6Address, f.Exporter)
	if f.ExporterName != "" {
		o.str(kExporterName, f.ExporterName)
	}
	if has(f, pb.Field_OBSERVATION_DOMAIN) {
		o.uint(kObservationDomainId, uint64(f.ObservationDomainId))
	}
	if f.TimeReceivedNs != 0 {
		o.uint(kCollectionTimeMilliseconds, f.TimeReceivedNs/1e6)
	}
	o.str(kFlowType, flowTypeName(f.Type))
	if len(f.Elements) > 0 {
		o.elements(f)
	}
	return o.end()
}

// geo writes what geolocation databases said of the addresses.
func (o *object) geo(g *pb.Geo) {
	if g.SrcAsOrg != "" {
		o.str(kSourceAsOrganization, g.SrcAsOrg)
	}
	if g.DstAsOrg != "" {
		o.str(kDestinationAsOrganization, g.DstAsOrg)
	}
	if g.SrcCountry != "" {
		o.str(kSourceCountry, g.SrcCountry)
	}
	if g.DstCountry != "" {
		o.str(kDestinationCountry, g.DstCountry)
	}
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
