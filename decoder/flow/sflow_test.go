package flow

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/netsampler/goflow2/v2/decoders/sflow"
	flowpb "github.com/netsampler/goflow2/v2/pb"
	protoproducer "github.com/netsampler/goflow2/v2/producer/proto"

	"github.com/flowgate/flowgate/internal/fuzzcorpus"
	pb "github.com/flowgate/flowgate/proto"
)

var (
	testExporter = netip.MustParseAddr("127.0.0.1")
	testReceived = time.Date(2026, 11, 23, 10, 0, 1, 234_567_891, time.UTC)
)

// TestDecodeSFlowAgreesWithGoflow2 decodes pmacctd's datagrams with
// goflow2's decoder and producer too, and compares every flow field both
// read, and the counters goflow2's decoder read.
func TestDecodeSFlowAgreesWithGoflow2(t *testing.T) {
	dec := NewDecoder(NewTemplates())
	flows, counters := 0, 0
	for name, seed := range fuzzcorpus.Read(t, "testdata/fuzz/FuzzDecodeSFlow") {
		if !strings.HasPrefix(name, "pmacctd-") {
			continue // inputs the fuzzer found, not exports
		}
		data := seed[0]
		var batch pb.Batch
		res, err := dec.DecodeSFlow(data, testExporter, testReceived, &batch)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		var packet sflow.Packet
		if err := sflow.DecodeMessageVersion(bytes.NewBuffer(data), &packet); err != nil {
			t.Fatalf("%s: goflow2: %v", name, err)
		}
		msgs, err := protoproducer.ProcessMessageSFlowConfig(&packet, nil)
		if err != nil {
			t.Fatalf("%s: goflow2: %v", name, err)
		}
		if res.Flows != len(msgs) || len(batch.Flows) != len(msgs) {
			t.Fatalf("%s: %d flows (result says %d), goflow2 %d", name, len(batch.Flows), res.Flows, len(msgs))
		}
		for i, m := range msgs {
			compareWithGoflow2(t, name, batch.Flows[i], &m.(*protoproducer.ProtoProducerMessage).FlowMessage)
		}
		var want []sflow.IfCounters
		for _, s := range packet.Samples {
			if cs, ok := s.(sflow.CounterSample); ok {
				for _, r := range cs.Records {
					if c, ok := r.Data.(sflow.IfCounters); ok {
						want = append(want, c)
					}
				}
			}
		}
		if res.Counters != len(want) || len(batch.Counters) != len(want) {
			t.Fatalf("%s: %d counters (result says %d), goflow2 %d", name, len(batch.Counters), res.Counters, len(want))
		}
		for i, w := range want {
			c := batch.Counters[i]
			got := sflow.IfCounters{
				IfIndex: c.IfIndex, IfType: c.IfType, IfSpeed: c.IfSpeed, IfDirection: c.IfDirection, IfStatus: c.IfStatus,
				IfInOctets: c.InOctets, IfInUcastPkts: c.InUcastPkts, IfInMulticastPkts: c.InMulticastPkts,
				IfInBroadcastPkts: c.InBroadcastPkts, IfInDiscards: c.InDiscards, IfInErrors: c.InErrors,
				IfInUnknownProtos: c.InUnknownProtos, IfOutOctets: c.OutOctets, IfOutUcastPkts: c.OutUcastPkts,
				IfOutMulticastPkts: c.OutMulticastPkts, IfOutBroadcastPkts: c.OutBroadcastPkts,
				IfOutDiscards: c.OutDiscards, IfOutErrors: c.OutErrors, IfPromiscuousMode: c.PromiscuousMode,
			}
			if got != w {
				t.Errorf("%s: counters %d:\n got %+v\nwant %+v", name, i, got, w)
			}
			if c.Type != pb.FlowType_SFLOW_5 || !bytes.Equal(c.Exporter, packet.AgentIP) || c.ObservationDomainId != packet.SubAgentId ||
				c.TimeReceivedNs != uint64(testReceived.UnixNano()) {
				t.Errorf("%s: counters %d: type %v exporter %v domain %d received %d", name, i, c.Type, c.Exporter, c.ObservationDomainId, c.TimeReceivedNs)
			}
		}
		flows += len(msgs)
		counters += len(want)
	}
	if flows == 0 || counters == 0 {
		t.Fatalf("the corpus holds %d flow samples and %d counter samples: want both", flows, counters)
	}
}

// compareWithGoflow2 compares the values of one flow both decoders read.
// goflow2 writes an interface word as it came, format bits included;
// flowgate leaves out interfaces that are not an ifIndex.
func compareWithGoflow2(t *testing.T, name string, f *pb.Flow, g *flowpb.FlowMessage) {
	t.Helper()
	ifIndex := func(v uint32) uint64 {
		if v >= ifIndexNone {
			return 0
		}
		return uint64(v)
	}
	for _, c := range []struct {
		field       string
		ours, their uint64
	}{
		{"bytes", f.Bytes, g.Bytes},
		{"packets", f.Packets, g.Packets},
		{"sampling rate", f.SamplingRate, g.SamplingRate},
		{"sequence", uint64(f.SequenceNum), uint64(g.SequenceNum)},
		{"in_if", uint64(f.InIf), ifIndex(g.InIf)},
		{"out_if", uint64(f.OutIf), ifIndex(g.OutIf)},
		{"src_mac", f.SrcMac, g.SrcMac},
		{"dst_mac", f.DstMac, g.DstMac},
		{"etype", uint64(f.Etype), uint64(g.Etype)},
		{"vlan", uint64(f.Vlan), uint64(g.SrcVlan)},
		{"post vlan", uint64(f.PostVlan), uint64(g.DstVlan)},
		{"dot1q vlan", uint64(f.Dot1QVlan), uint64(g.VlanId)},
		{"proto", uint64(f.Proto), uint64(g.Proto)},
		{"src_port", uint64(f.SrcPort), uint64(g.SrcPort)},
		{"dst_port", uint64(f.DstPort), uint64(g.DstPort)},
		{"tos", uint64(f.Tos), uint64(g.IpTos)},
		{"ttl", uint64(f.IpTtl), uint64(g.IpTtl)},
		{"tcp flags", uint64(f.TcpFlags), uint64(g.TcpFlags)},
		{"fragment id", uint64(f.FragmentId), uint64(g.FragmentId)},
		{"fragment offset", uint64(f.FragmentOffset), uint64(g.FragmentOffset)},
		{"fragment flags", uint64(f.FragmentFlags), uint64(g.IpFlags)},
		{"flow label", uint64(f.FlowLabel), uint64(g.Ipv6FlowLabel)},
		{"icmp type", uint64(f.IcmpTypeCode >> 8), uint64(g.IcmpType)},
		{"icmp code", uint64(f.IcmpTypeCode & 0xff), uint64(g.IcmpCode)},
		{"src mask", uint64(f.SrcMask), uint64(g.SrcNet)},
		{"dst mask", uint64(f.DstMask), uint64(g.DstNet)},
		{"src as", uint64(f.SrcAs), uint64(g.SrcAs)},
		{"dst as", uint64(f.DstAs), uint64(g.DstAs)},
	} {
		if c.ours != c.their {
			t.Errorf("%s: flow %s: %s %d, goflow2 %d", name, flowName(f), c.field, c.ours, c.their)
		}
	}
	for _, c := range []struct {
		field       string
		ours, their []byte
	}{
		{"src addr", f.SrcAddr, g.SrcAddr},
		{"dst addr", f.DstAddr, g.DstAddr},
		{"exporter", f.Exporter, g.SamplerAddress},
		{"next hop", f.NextHop, g.NextHop},
		{"bgp next hop", f.BgpNextHop, g.BgpNextHop},
	} {
		if !bytes.Equal(c.ours, c.their) {
			t.Errorf("%s: flow %s: %s %v, goflow2 %v", name, flowName(f), c.field, c.ours, c.their)
		}
	}
	if f.Type != pb.FlowType_SFLOW_5 || f.TimeReceivedNs != uint64(testReceived.UnixNano()) ||
		f.StartMs != uint64(testReceived.UnixMilli()) || f.EndMs != f.StartMs {
		t.Errorf("%s: flow %s: type %v, received %d, start %d, end %d", name, flowName(f), f.Type, f.TimeReceivedNs, f.StartMs, f.EndMs)
	}
}

func flowName(f *pb.Flow) string {
	src, _ := netip.AddrFromSlice(f.SrcAddr)
	dst, _ := netip.AddrFromSlice(f.DstAddr)
	return netip.AddrPortFrom(src, uint16(f.SrcPort)).String() + ">" + netip.AddrPortFrom(dst, uint16(f.DstPort)).String()
}

// Builders of sFlow datagrams for the cases real exporters at hand do not
// send: expanded samples, VLANs, IPv6 extension headers, routers' records.

func u32s(vs ...uint32) []byte {
	b := make([]byte, 0, 4*len(vs))
	for _, v := range vs {
		b = binary.BigEndian.AppendUint32(b, v)
	}
	return b
}

// tlv is a sample or record: its format, its length, its body padded to 4 bytes.
func tlv(format uint32, body ...[]byte) []byte {
	b := slices.Concat(body...)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return slices.Concat(u32s(format, uint32(len(b))), b)
}

func sflowPacket(agent netip.Addr, subAgent, seq uint32, samples ...[]byte) []byte {
	b := u32s(5)
	if agent.Is4() {
		b = append(b, u32s(1)...)
	} else {
		b = append(b, u32s(2)...)
	}
	b = append(b, agent.AsSlice()...)
	b = append(b, u32s(subAgent, seq, 123456, uint32(len(samples)))...)
	return slices.Concat(b, slices.Concat(samples...))
}

func compactFlowSample(rate, in, out uint32, records ...[]byte) []byte {
	return tlv(sampleFlow, u32s(1, 7, rate, 1000, 0, in, out, uint32(len(records))), slices.Concat(records...))
}

func expandedFlowSample(rate, inFormat, in, outFormat, out uint32, records ...[]byte) []byte {
	return tlv(sampleFlowExpanded, u32s(1, 0, 7, rate, 1000, 0, inFormat, in, outFormat, out, uint32(len(records))), slices.Concat(records...))
}

func headerRecord(protocol uint32, frameLen uint32, header []byte) []byte {
	return tlv(recordSampledHeader, u32s(protocol, frameLen, 4, uint32(len(header))), header)
}

func ifCounters(expanded bool, ifIndex uint32, inOctets, outOctets uint64) []byte {
	c := slices.Concat(u32s(ifIndex, 6), binary.BigEndian.AppendUint64(nil, 10_000_000_000), u32s(1, 3),
		binary.BigEndian.AppendUint64(nil, inOctets), u32s(100, 2, 3, 4, 5, 6),
		binary.BigEndian.AppendUint64(nil, outOctets), u32s(200, 7, 8, 9, 10, 0))
	if expanded {
		return tlv(sampleCountersExpand, u32s(9, 0, ifIndex, 1), tlv(recordGenericCounters, c))
	}
	return tlv(sampleCounters, u32s(9, ifIndex, 1), tlv(recordGenericCounters, c))
}

// Packet headers.

func eth(etype uint16, payload ...[]byte) []byte {
	return slices.Concat([]byte{2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, byte(etype >> 8), byte(etype)}, slices.Concat(payload...))
}

func vlanTag(tci, etype uint16) []byte {
	return []byte{byte(tci >> 8), byte(tci), byte(etype >> 8), byte(etype)}
}

func ipv4(proto byte, src, dst string, fragment uint16, payload []byte) []byte {
	h := []byte{0x45, 0x28, 0, 0, 0x12, 0x34, byte(fragment >> 8), byte(fragment), 63, proto, 0, 0}
	h = append(h, netip.MustParseAddr(src).AsSlice()...)
	h = append(h, netip.MustParseAddr(dst).AsSlice()...)
	binary.BigEndian.PutUint16(h[2:], uint16(len(h)+len(payload)))
	return append(h, payload...)
}

func ipv6(next byte, src, dst string, payload []byte) []byte {
	h := []byte{0x6b, 0x81, 0x23, 0x45, 0, 0, next, 9}
	binary.BigEndian.PutUint16(h[4:], uint16(len(payload)))
	h = append(h, netip.MustParseAddr(src).AsSlice()...)
	h = append(h, netip.MustParseAddr(dst).AsSlice()...)
	return append(h, payload...)
}

func tcp(sport, dport uint16, flags byte) []byte {
	h := make([]byte, 20)
	binary.BigEndian.PutUint16(h, sport)
	binary.BigEndian.PutUint16(h[2:], dport)
	h[12], h[13] = 5<<4, flags
	return h
}

func udp(sport, dport uint16) []byte {
	return []byte{byte(sport >> 8), byte(sport), byte(dport >> 8), byte(dport), 0, 8, 0, 0}
}

func TestDecodeSFlow(t *testing.T) {
	agent4 := netip.MustParseAddr("192.0.2.7")
	agent6 := netip.MustParseAddr("2001:db8::7")
	for _, tc := range []struct {
		name     string
		datagram []byte
		check    func(t *testing.T, f *pb.Flow)
	}{{
		name: "compact sample, VLAN-tagged IPv4 TCP, switch router and gateway records",
		datagram: sflowPacket(agent4, 3, 41, compactFlowSample(512, 5, 2<<30|3,
			headerRecord(headerEthernet, 1518, eth(etherVLAN, vlanTag(0xa00a, etherIPv4), ipv4(protoTCP, "10.1.1.1", "10.2.2.2", 0x4000, tcp(40000, 443, 0x12)))),
			tlv(recordExtendedSwitch, u32s(10, 0, sflowUnknownVLAN, 0)),
			tlv(recordExtendedRouter, u32s(1), []byte{10, 0, 0, 254}, u32s(24, 16)),
			tlv(recordExtendedGateway, u32s(1), []byte{10, 0, 0, 253}, u32s(65000, 65001, 65002, 1, 2, 2, 65010, 65020, 0, 100)),
		)),
		check: func(t *testing.T, f *pb.Flow) {
			want := &pb.Flow{
				Bytes: 1518, Packets: 1, SamplingRate: 512, InIf: 5,
				SrcMac: 0x020000000001, DstMac: 0x020000000002, Etype: etherIPv4, Dot1QVlan: 10, Vlan: 10,
				SrcAddr: []byte{10, 1, 1, 1}, DstAddr: []byte{10, 2, 2, 2}, IpVersion: 4, Proto: protoTCP,
				Tos: 0x28, IpTtl: 63, FragmentId: 0x1234, FragmentFlags: 2, SrcPort: 40000, DstPort: 443, TcpFlags: 0x12,
				NextHop: []byte{10, 0, 0, 254}, SrcMask: 24, DstMask: 16, BgpNextHop: []byte{10, 0, 0, 253},
				SrcAs: 65001, DstAs: 65020,
			}
			checkFlow(t, f, want, bits(pb.Field_BYTES, pb.Field_PACKETS, pb.Field_SAMPLING, pb.Field_IN_IF,
				pb.Field_SRC_MAC, pb.Field_DST_MAC, pb.Field_ETYPE, pb.Field_DOT1Q_VLAN, pb.Field_VLAN,
				pb.Field_SRC_ADDR, pb.Field_DST_ADDR, pb.Field_IP_VERSION, pb.Field_PROTO, pb.Field_TOS,
				pb.Field_IP_TTL, pb.Field_FRAGMENT_ID, pb.Field_FRAGMENT_FLAGS, pb.Field_FRAGMENT_OFFSET,
				pb.Field_SRC_PORT, pb.Field_DST_PORT, pb.Field_TCP_FLAGS, pb.Field_NEXT_HOP, pb.Field_SRC_MASK,
				pb.Field_DST_MASK, pb.Field_BGP_NEXT_HOP, pb.Field_SRC_AS, pb.Field_DST_AS))
			if !bytes.Equal(f.Exporter, agent4.AsSlice()) || f.ObservationDomainId != 3 || f.SequenceNum != 41 {
				t.Errorf("exporter %v domain %d sequence %d", f.Exporter, f.ObservationDomainId, f.SequenceNum)
			}
		},
	}, {
		name: "expanded sample from an IPv6 agent, QinQ and MPLS to IPv6 with extension headers, ICMPv6",
		datagram: sflowPacket(agent6, 0, 1, expandedFlowSample(1, 0, 70000, 0, ifIndexNone,
			headerRecord(headerEthernet, 200, eth(etherQinQ, vlanTag(100, etherVLAN), vlanTag(200, etherMPLS),
				[]byte{0, 0x10, 0x00, 64, 0, 0x20, 0x01, 64}, // two labels, the second at the bottom
				ipv6(protoIPv6Hop, "2001:db8::1", "2001:db8::2", slices.Concat(
					[]byte{protoFrag, 0, 0, 0, 0, 0, 0, 0},
					[]byte{protoICMPv6, 0, 0, 1, 0xde, 0xad, 0xbe, 0xef}, // first fragment, more to come
					[]byte{128, 0, 0, 0})))),
		)),
		check: func(t *testing.T, f *pb.Flow) {
			want := &pb.Flow{
				Bytes: 200, Packets: 1, SamplingRate: 1, InIf: 70000,
				SrcMac: 0x020000000001, DstMac: 0x020000000002, Etype: etherIPv6, Dot1QVlan: 100,
				SrcAddr: netip.MustParseAddr("2001:db8::1").AsSlice(), DstAddr: netip.MustParseAddr("2001:db8::2").AsSlice(),
				IpVersion: 6, Proto: protoICMPv6, Tos: 0xb8, FlowLabel: 0x12345, IpTtl: 9,
				FragmentId: 0xdeadbeef, FragmentFlags: 1, IcmpTypeCode: 128 << 8,
			}
			checkFlow(t, f, want, bits(pb.Field_BYTES, pb.Field_PACKETS, pb.Field_SAMPLING, pb.Field_IN_IF,
				pb.Field_SRC_MAC, pb.Field_DST_MAC, pb.Field_ETYPE, pb.Field_DOT1Q_VLAN,
				pb.Field_SRC_ADDR, pb.Field_DST_ADDR, pb.Field_IP_VERSION, pb.Field_PROTO, pb.Field_TOS,
				pb.Field_FLOW_LABEL, pb.Field_IP_TTL, pb.Field_FRAGMENT_ID, pb.Field_FRAGMENT_FLAGS,
				pb.Field_FRAGMENT_OFFSET, pb.Field_ICMP_TYPE_CODE))
			if !bytes.Equal(f.Exporter, agent6.AsSlice()) {
				t.Errorf("exporter %v, want the agent %v", f.Exporter, agent6)
			}
		},
	}, {
		name: "a later IPv4 fragment has no ports; an unknown agent address leaves the sender as exporter",
		datagram: sflowPacket(netip.IPv4Unspecified(), 0, 1, compactFlowSample(0, 1<<30|3, 0,
			headerRecord(headerIPv4, 1000, ipv4(protoUDP, "10.1.1.1", "10.2.2.2", 0x00b9, udp(53, 53))))),
		check: func(t *testing.T, f *pb.Flow) {
			want := &pb.Flow{
				Bytes: 1000, Packets: 1, OutIf: 0,
				SrcAddr: []byte{10, 1, 1, 1}, DstAddr: []byte{10, 2, 2, 2}, IpVersion: 4, Proto: protoUDP,
				Tos: 0x28, IpTtl: 63, FragmentId: 0x1234, FragmentOffset: 0xb9,
			}
			checkFlow(t, f, want, bits(pb.Field_BYTES, pb.Field_PACKETS, pb.Field_OUT_IF,
				pb.Field_SRC_ADDR, pb.Field_DST_ADDR, pb.Field_IP_VERSION, pb.Field_PROTO, pb.Field_TOS,
				pb.Field_IP_TTL, pb.Field_FRAGMENT_ID, pb.Field_FRAGMENT_FLAGS, pb.Field_FRAGMENT_OFFSET))
			if !bytes.Equal(f.Exporter, testExporter.AsSlice()) {
				t.Errorf("exporter %v, want the sender %v", f.Exporter, testExporter)
			}
		},
	}, {
		name: "sampled IPv4 record; an enterprise sample, a record goflow2 refuses and a header record cut short are skipped",
		datagram: sflowPacket(agent4, 0, 1,
			tlv(4300<<12|1002, u32s(1, 2, 3)),
			compactFlowSample(100, 2, 0,
				tlv(recordExtendedRouter, u32s(7), []byte{1, 2, 3, 4}),  // address type 7
				tlv(recordSampledHeader, u32s(headerEthernet, 1518, 4)), // no header length
				tlv(recordSampledIPv4, u32s(576, protoTCP), []byte{10, 1, 1, 1, 10, 2, 2, 2}, u32s(1234, 80, 0x02, 0x10)),
				tlv(4300<<12|1, u32s(99)),
			)),
		check: func(t *testing.T, f *pb.Flow) {
			want := &pb.Flow{
				Bytes: 576, Packets: 1, SamplingRate: 100, InIf: 2, OutIf: 0,
				SrcAddr: []byte{10, 1, 1, 1}, DstAddr: []byte{10, 2, 2, 2}, IpVersion: 4, Proto: protoTCP,
				SrcPort: 1234, DstPort: 80, TcpFlags: 0x02, Tos: 0x10,
			}
			checkFlow(t, f, want, bits(pb.Field_BYTES, pb.Field_PACKETS, pb.Field_SAMPLING, pb.Field_IN_IF,
				pb.Field_OUT_IF, pb.Field_SRC_ADDR, pb.Field_DST_ADDR, pb.Field_IP_VERSION, pb.Field_PROTO,
				pb.Field_SRC_PORT, pb.Field_DST_PORT, pb.Field_TCP_FLAGS, pb.Field_TOS))
		},
	}, {
		name: "sampled IPv6 and Ethernet records: the frame's length counts, MACs are padded to 8 bytes",
		datagram: sflowPacket(agent4, 0, 1, compactFlowSample(8, 2, 3,
			tlv(recordSampledIPv6, u32s(1000, protoUDP), netip.MustParseAddr("2001:db8::1").AsSlice(),
				netip.MustParseAddr("2001:db8::2").AsSlice(), u32s(53, 5353, 0, 0x20)),
			tlv(recordSampledEthernet, u32s(1018), []byte{2, 0, 0, 0, 0, 1, 0, 0, 2, 0, 0, 0, 0, 2, 0, 0}, u32s(etherIPv6)),
		)),
		check: func(t *testing.T, f *pb.Flow) {
			want := &pb.Flow{
				Bytes: 1018, Packets: 1, SamplingRate: 8, InIf: 2, OutIf: 3,
				SrcMac: 0x020000000001, DstMac: 0x020000000002, Etype: etherIPv6,
				SrcAddr: netip.MustParseAddr("2001:db8::1").AsSlice(), DstAddr: netip.MustParseAddr("2001:db8::2").AsSlice(),
				IpVersion: 6, Proto: protoUDP, SrcPort: 53, DstPort: 5353, Tos: 0x20,
			}
			checkFlow(t, f, want, bits(pb.Field_BYTES, pb.Field_PACKETS, pb.Field_SAMPLING, pb.Field_IN_IF,
				pb.Field_OUT_IF, pb.Field_SRC_MAC, pb.Field_DST_MAC, pb.Field_ETYPE, pb.Field_SRC_ADDR,
				pb.Field_DST_ADDR, pb.Field_IP_VERSION, pb.Field_PROTO, pb.Field_SRC_PORT, pb.Field_DST_PORT,
				pb.Field_TCP_FLAGS, pb.Field_TOS))
		},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			var batch pb.Batch
			res, err := NewDecoder(NewTemplates()).DecodeSFlow(tc.datagram, testExporter, testReceived, &batch)
			if err != nil {
				t.Fatal(err)
			}
			if res.Flows != 1 || len(batch.Flows) != 1 || res.Counters != 0 || len(batch.Counters) != 0 {
				t.Fatalf("result %+v, %d flows, %d counters; want one flow", res, len(batch.Flows), len(batch.Counters))
			}
			f := batch.Flows[0]
			if f.Type != pb.FlowType_SFLOW_5 || f.TimeReceivedNs != uint64(testReceived.UnixNano()) ||
				f.StartMs != uint64(testReceived.UnixMilli()) || f.EndMs != f.StartMs {
				t.Errorf("type %v, received %d, start %d, end %d", f.Type, f.TimeReceivedNs, f.StartMs, f.EndMs)
			}
			tc.check(t, f)
		})
	}
}

// checkFlow compares the values of f that sFlow decoding sets with want,
// and the present bits with the common ones (times, domain) added.
func checkFlow(t *testing.T, f, want *pb.Flow, present uint64) {
	t.Helper()
	g := &pb.Flow{
		Bytes: f.Bytes, Packets: f.Packets, SamplingRate: f.SamplingRate, InIf: f.InIf, OutIf: f.OutIf,
		SrcMac: f.SrcMac, DstMac: f.DstMac, Etype: f.Etype, Dot1QVlan: f.Dot1QVlan, Vlan: f.Vlan, PostVlan: f.PostVlan,
		SrcAddr: f.SrcAddr, DstAddr: f.DstAddr, IpVersion: f.IpVersion, Proto: f.Proto, Tos: f.Tos, IpTtl: f.IpTtl,
		FlowLabel: f.FlowLabel, FragmentId: f.FragmentId, FragmentFlags: f.FragmentFlags, FragmentOffset: f.FragmentOffset,
		SrcPort: f.SrcPort, DstPort: f.DstPort, TcpFlags: f.TcpFlags, IcmpTypeCode: f.IcmpTypeCode,
		NextHop: f.NextHop, SrcMask: f.SrcMask, DstMask: f.DstMask, BgpNextHop: f.BgpNextHop, SrcAs: f.SrcAs, DstAs: f.DstAs,
	}
	if !proto.Equal(g, want) {
		t.Errorf("flow\n got %v\nwant %v", g, want)
	}
	present |= bits(pb.Field_START, pb.Field_END, pb.Field_OBSERVATION_DOMAIN)
	if f.Present != present {
		t.Errorf("present bits %b, want %b (extra %b, missing %b)", f.Present, present, f.Present&^present, present&^f.Present)
	}
}

func TestDecodeSFlowCounters(t *testing.T) {
	for _, expanded := range []bool{false, true} {
		d := sflowPacket(netip.MustParseAddr("192.0.2.7"), 4, 9,
			ifCounters(expanded, 12, 1<<40, 1<<33),
			// Counter samples holding no generic interface block yield nothing.
			tlv(sampleCounters, u32s(10, 12, 1), tlv(1001, u32s(1, 2, 3))))
		var batch pb.Batch
		res, err := NewDecoder(NewTemplates()).DecodeSFlow(d, testExporter, testReceived, &batch)
		if err != nil {
			t.Fatal(err)
		}
		if res.Counters != 1 || res.Flows != 0 || len(batch.Counters) != 1 {
			t.Fatalf("expanded %v: result %+v, %d counters", expanded, res, len(batch.Counters))
		}
		want := &pb.InterfaceCounters{
			Type: pb.FlowType_SFLOW_5, TimeReceivedNs: uint64(testReceived.UnixNano()), Exporter: []byte{192, 0, 2, 7},
			ObservationDomainId: 4, IfIndex: 12, IfType: 6, IfSpeed: 10_000_000_000, IfDirection: 1,
			IfStatus: 3, InOctets: 1 << 40, InUcastPkts: 100, InMulticastPkts: 2, InBroadcastPkts: 3, InDiscards: 4,
			InErrors: 5, InUnknownProtos: 6, OutOctets: 1 << 33, OutUcastPkts: 200, OutMulticastPkts: 7,
			OutBroadcastPkts: 8, OutDiscards: 9, OutErrors: 10,
		}
		if !proto.Equal(batch.Counters[0], want) {
			t.Errorf("expanded %v:\n got %v\nwant %v", expanded, batch.Counters[0], want)
		}
	}
}

// withSampleCount rewrites the number of samples a datagram (with an IPv4
// agent) says it holds.
func withSampleCount(d []byte, n uint32) []byte {
	binary.BigEndian.PutUint32(d[24:], n)
	return d
}

func TestDecodeSFlowRefuses(t *testing.T) {
	agent := netip.MustParseAddr("192.0.2.7")
	good := compactFlowSample(1, 1, 2, headerRecord(headerEthernet, 100, eth(etherIPv4, ipv4(protoUDP, "10.0.0.1", "10.0.0.2", 0, udp(1, 2)))))
	full := sflowPacket(agent, 0, 1, good, good)
	for _, tc := range []struct {
		name     string
		datagram []byte
		err      error
	}{
		{"empty", nil, ErrMalformed},
		{"version 4", slices.Concat(u32s(4), full[4:]), ErrVersion},
		{"cut in the header", full[:20], ErrMalformed},
		{"unknown agent address type", slices.Concat(u32s(5, 3), full[8:]), ErrMalformed},
		{"cut in the second sample", full[:len(full)-8], ErrMalformed},
		{"more samples than sent", withSampleCount(sflowPacket(agent, 0, 1, good), 2), ErrMalformed},
		{"a record past its sample", sflowPacket(agent, 0, 1, tlv(sampleFlow, u32s(1, 7, 1, 1, 0, 1, 2, 1), u32s(recordSampledHeader, 400))), ErrMalformed},
		{"a sample too short for its fields", sflowPacket(agent, 0, 1, good, tlv(sampleFlowExpanded, u32s(1, 2, 3))), ErrMalformed},
		{"a counter record past its sample", sflowPacket(agent, 0, 1, ifCounters(false, 1, 1, 1), tlv(sampleCounters, u32s(1, 1, 2), u32s(1, 4, 0))), ErrMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Records already in the batch stay; none of the datagram's are added.
			batch := pb.Batch{Flows: []*pb.Flow{{Bytes: 1}}, Counters: []*pb.InterfaceCounters{{IfIndex: 1}}}
			res, err := NewDecoder(NewTemplates()).DecodeSFlow(tc.datagram, testExporter, testReceived, &batch)
			if !errors.Is(err, tc.err) {
				t.Fatalf("error %v, want %v", err, tc.err)
			}
			if res != (Result{}) || len(batch.Flows) != 1 || batch.Flows[0].Bytes != 1 || len(batch.Counters) != 1 {
				t.Fatalf("result %+v, batch %v: want nothing added", res, &batch)
			}
		})
	}
}
