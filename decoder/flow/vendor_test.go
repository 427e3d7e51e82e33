package flow

import (
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/flowgate/flowgate/decoder/flow/ie"
	"github.com/flowgate/flowgate/format"
	"github.com/flowgate/flowgate/internal/peers"
	pb "github.com/flowgate/flowgate/proto"
)

// Datagrams built from the vendors' published specifications: no NSEL or
// vendor exporter runs on Linux. Each is checked against tshark's reading
// of the same bytes (TestVendorDatagramsAsTsharkReadsThem).

// nselExport is the export time of the NSEL datagrams, Unix seconds.
const nselExport = 1_800_000_000

// nselTemplate is a flow template as Cisco's "NSEL Configuration and
// Fields" guide lists an ASA's (ASA 9.x: IANA ids for NAT and counts).
var nselTemplate = []field{
	f(148, 4),    // NF_F_CONN_ID: flowId
	f(8, 4),      // NF_F_SRC_ADDR_IPV4
	f(7, 2),      // NF_F_SRC_PORT
	f(12, 4),     // NF_F_DST_ADDR_IPV4
	f(11, 2),     // NF_F_DST_PORT
	f(4, 1),      // NF_F_PROTOCOL
	f(176, 1),    // NF_F_ICMP_TYPE
	f(177, 1),    // NF_F_ICMP_CODE
	f(10, 2),     // NF_F_SRC_INTF_ID
	f(14, 2),     // NF_F_DST_INTF_ID
	f(225, 4),    // NF_F_XLATE_SRC_ADDR_IPV4
	f(226, 4),    // NF_F_XLATE_DST_ADDR_IPV4
	f(227, 2),    // NF_F_XLATE_SRC_PORT
	f(228, 2),    // NF_F_XLATE_DST_PORT
	f(233, 1),    // NF_F_FW_EVENT
	f(33002, 2),  // NF_F_FW_EXT_EVENT
	f(323, 8),    // NF_F_EVENT_TIME_MSEC
	f(152, 8),    // NF_F_FLOW_CREATE_TIME_MSEC
	f(231, 4),    // NF_F_FWD_FLOW_DELTA_BYTES
	f(232, 4),    // NF_F_REV_FLOW_DELTA_BYTES
	f(298, 4),    // initiatorPackets
	f(299, 4),    // responderPackets
	f(33000, 12), // NF_F_INGRESS_ACL_ID
	f(33001, 12), // NF_F_EGRESS_ACL_ID
	f(40000, 20), // NF_F_USERNAME
}

// nselOldTemplate is the NAT and event part as older ASA software sends
// it (ids 40001-40005).
var nselOldTemplate = []field{
	f(8, 4), f(7, 2), f(12, 4), f(11, 2), f(4, 1),
	f(40001, 4), // NF_F_XLATE_SRC_ADDR_IPV4
	f(40002, 4), // NF_F_XLATE_DST_ADDR_IPV4
	f(40003, 2), // NF_F_XLATE_SRC_PORT
	f(40004, 2), // NF_F_XLATE_DST_PORT
	f(40005, 1), // NF_F_FW_EVENT
	f(323, 8),
	f(231, 4), f(232, 4), f(298, 4), f(299, 4),
}

type nselEvent struct {
	event        uint8
	ext          uint16
	eventMs      uint64
	createMs     uint64
	fwdB, revB   uint32
	fwdP, revP   uint32
	proto        uint8
	icmpT, icmpC uint8
	sport, dport uint16
	user         string
}

func nselRecord(e nselEvent, id uint32) []byte {
	user := make([]byte, 20)
	copy(user, e.user)
	acl := func(a, b, c uint32) []byte { return cat(u32(a), u32(b), u32(c)) }
	return cat(u32(id), ip("10.1.1.10"), u16(e.sport), ip("198.51.100.20"), u16(e.dport), u8(e.proto), u8(e.icmpT), u8(e.icmpC),
		u16(3), u16(4), ip("203.0.113.5"), ip("198.51.100.20"), u16(e.sport+10000), u16(e.dport),
		u8(e.event), u16(e.ext), u64(e.eventMs), u64(e.createMs), u32(e.fwdB), u32(e.revB), u32(e.fwdP), u32(e.revP),
		acl(0x11111111, 0x22222222, 0), acl(0, 0, 0), user)
}

// nselEvents are a TCP flow's creation and teardown, a denied UDP flow
// and an ICMP flow's teardown, as an ASA reports them.
var nselEvents = []nselEvent{
	{event: 1, eventMs: 1_800_000_000_100, proto: 6, sport: 51000, dport: 443, user: "alice"},
	{event: 2, ext: 2001, eventMs: 1_800_000_030_000, createMs: 1_800_000_000_100, fwdB: 1200, revB: 64000, fwdP: 12, revP: 50, proto: 6, sport: 51000, dport: 443, user: "alice"},
	{event: 3, ext: 1001, eventMs: 1_800_000_000_500, proto: 17, sport: 5353, dport: 53},
	{event: 2, ext: 2002, eventMs: 1_800_000_001_000, createMs: 1_800_000_000_900, fwdB: 84, revB: 84, fwdP: 1, revP: 1, proto: 1, icmpT: 8},
}

// nselDatagrams are an ASA's template and data datagrams.
func nselDatagrams() [][]byte {
	var recs []byte
	for i, e := range nselEvents {
		recs = append(recs, nselRecord(e, uint32(100+i))...)
	}
	old := cat(ip("10.1.1.11"), u16(40000), ip("192.0.2.80"), u16(80), u8(6),
		ip("203.0.113.6"), ip("192.0.2.80"), u16(50000), u16(80), u8(1), u64(1_800_000_002_000),
		u32(60), u32(0), u32(1), u32(0))
	tm := msg{version: 9, export: nselExport, uptime: 100_000, sets: [][]byte{
		set(setV9Template, cat(tmpl(260, nselTemplate...), tmpl(261, nselOldTemplate...))),
	}}
	data := msg{version: 9, export: nselExport, uptime: 100_000, seq: 1, sets: [][]byte{set(260, recs), set(261, old)}}
	return [][]byte{tm.bytes(), data.bytes()}
}

// events decodes datagrams and writes each flow as format.IANA writes it.
func events(t *testing.T, datagrams [][]byte) []map[string]any {
	t.Helper()
	flows, _ := decodeAll(t, NewDecoder(NewTemplates()), exporterA, datagrams...)
	return toEvents(t, flows)
}

// sflowEvents decodes sFlow datagrams and writes each flow as
// format.IANA writes it.
func sflowEvents(t *testing.T, datagrams [][]byte) []map[string]any {
	t.Helper()
	d := NewDecoder(NewTemplates())
	var batch pb.Batch
	for i, dg := range datagrams {
		if _, err := d.DecodeSFlow(dg, exporterA, received, &batch); err != nil {
			t.Fatalf("sFlow datagram %d: %v", i, err)
		}
	}
	return toEvents(t, batch.Flows)
}

func toEvents(t *testing.T, flows []*pb.Flow) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, fl := range flows {
		var ev map[string]any
		b := format.IANA{}.AppendFlow(nil, fl)
		if err := json.Unmarshal(b, &ev); err != nil {
			t.Fatalf("event %s: %v", b, err)
		}
		out = append(out, ev)
	}
	return out
}

// vendorExportMs is the time of the vendor records, Unix milliseconds.
const vendorExportMs = 1_800_000_010_000

// ntp is a Unix time in microseconds as an NTP timestamp (RFC 7011
// section 6.1.9).
func ntp(us uint64) []byte {
	// The fraction rounded up, so that reading it back truncates to us.
	sec, frac := us/1e6+ntpEpochOffsetSeconds, ((us%1e6)<<32+1e6-1)/1e6
	return u64(sec<<32 | frac)
}

// ipfixVendorDatagrams are an IPFIX exporter's template and data with
// elements of every kind: enterprise elements of named vendors (Cisco AVC,
// VMware NSX) and of others (Fortinet, ntop), variable-length strings,
// octet arrays and lists followed by more fields, MACs, booleans, floats,
// NTP times, IPv6 post-NAT addresses; and a record with total counts and
// microsecond times only.
func ipfixVendorDatagrams() [][]byte {
	vendor := []field{
		f(8, 4), f(12, 4), f(7, 2), f(11, 2), f(4, 1), f(1, 8), f(2, 8), f(152, 8), f(153, 8),
		f(81, 6),                                 // postSourceMacAddress
		f(96, variableLength),                    // applicationName
		f(95, variableLength),                    // applicationId
		f(291, variableLength),                   // basicList
		f(136, 1),                                // flowEndReason, after the list
		f(324, 8),                                // observationTimeMicroseconds
		f(192, 1),                                // ipTTL
		f(276, 1),                                // dataRecordsReliability (boolean)
		f(320, 8),                                // absoluteError (float64)
		f(281, 16),                               // postNATSourceIPv6Address
		{typ: 4315, length: 4, pen: ie.PENCisco}, // tcpWindowSizeMin
		{typ: 880, length: 1, pen: ie.PENVMware}, // tenantProtocol
		{typ: 881, length: 4, pen: ie.PENVMware}, // tenantSourceIPv4
		{typ: 1, length: 4, pen: ie.PENFortinet},
		{typ: 7, length: variableLength, pen: ie.PENNtop},
	}
	// A basicList of two destination ports (RFC 6313 section 4.5.1):
	// semantic allOf, element 11, 2 bytes each.
	list := cat(u8(3), u16(11), u16(2), u16(443), u16(8443))
	rec := cat(ip("10.2.0.1"), ip("192.0.2.50"), u16(40001), u16(443), u8(6), u64(5000), u64(7),
		u64(vendorExportMs-2000), u64(vendorExportMs-1000),
		[]byte{0x00, 0x1b, 0x21, 0x3a, 0x4b, 0x5c},
		varlen([]byte("https")), varlen([]byte{0x03, 0x00, 0x01, 0xbb}), varlen(list), u8(3),
		ntp((vendorExportMs-500)*1000+250), u8(64), u8(1), u64(math.Float64bits(0.25)), ip("2001:db8::5"),
		u32(65535), u8(17), ip("172.16.0.9"), []byte{0xde, 0xad, 0xbe, 0xef}, varlen([]byte("ndpi")))
	totals := []field{f(27, 16), f(28, 16), f(7, 2), f(11, 2), f(4, 1), f(85, 8), f(86, 8), f(154, 8), f(155, 8)}
	trec := cat(ip("2001:db8::1"), ip("2001:db8::2"), u16(5000), u16(53), u8(17), u64(900), u64(3),
		ntp((vendorExportMs-3000)*1000), ntp((vendorExportMs-2500)*1000))
	tm := msg{version: 10, export: vendorExportMs / 1000, sets: [][]byte{set(setIPFIXTemplate, cat(tmpl(300, vendor...), tmpl(301, totals...)))}}
	data := msg{version: 10, export: vendorExportMs / 1000, seq: 0, sets: [][]byte{set(300, rec), set(301, trec)}}
	return [][]byte{tm.bytes(), data.bytes()}
}

// paloAltoDatagrams are a PAN-OS firewall's NetFlow v9 template and data
// with its App-ID and User-ID fields (PAN-OS "NetFlow Templates").
func paloAltoDatagrams() [][]byte {
	pad := func(s string, n int) []byte { b := make([]byte, n); copy(b, s); return b }
	fields := []field{f(8, 4), f(12, 4), f(7, 2), f(11, 2), f(4, 1), f(1, 4), f(2, 4), f(22, 4), f(21, 4), f(346, 4), f(56701, 32), f(56702, 64)}
	rec := cat(ip("10.3.0.7"), ip("192.0.2.99"), u16(52000), u16(443), u8(6), u32(3000), u32(9), u32(90_000), u32(95_000),
		u32(ie.PENPaloAlto), pad("ssl", 32), pad(`corp\bob`, 64))
	tm := msg{version: 9, export: nselExport, uptime: 100_000, sets: [][]byte{set(setV9Template, tmpl(280, fields...))}}
	data := msg{version: 9, export: nselExport, uptime: 100_000, seq: 1, sets: [][]byte{set(280, rec)}}
	return [][]byte{tm.bytes(), data.bytes()}
}

// enterpriseDatagrams are an IPFIX record with elements the registry
// gained with IANA's 2026-07-22 copy (past 491) and with the vendor tables:
// nProbe's (ntop), Cisco AVC's, Juniper's, VMware NSX's; beside a Fortinet
// element no document names. Then nProbe's NetFlow v9 record of some of the
// same ntop elements, as field types 57472 + id.
func enterpriseDatagrams() [][]byte {
	e := func(pen uint32, typ, length uint16) field { return field{typ: typ, length: length, pen: pen} }
	fields := []field{
		f(8, 4), f(12, 4), f(7, 2), f(11, 2), f(4, 1), f(1, 8), f(2, 8), f(152, 8), f(153, 8),
		e(ie.PENNtop, 118, 2),              // L7_PROTO
		e(ie.PENNtop, 119, variableLength), // L7_PROTO_NAME
		e(ie.PENNtop, 80, 2),               // SRC_FRAGMENTS
		e(ie.PENNtop, 114, 4),              // UNTUNNELED_IPV4_SRC_ADDR
		e(ie.PENNtop, 353, 6),              // DHCP_CLIENT_MAC
		e(ie.PENNtop, 180, variableLength), // HTTP_URL
		e(ie.PENCisco, 4254, 4),            // transportRtpSsrc
		e(ie.PENCisco, 8234, variableLength),
		e(ie.PENCisco, 12243, 4),              // appTrafficClass
		e(ie.PENJuniper, 157, variableLength), // httpHost
		e(ie.PENJuniper, 103, 4),              // uplinkOctets
		e(ie.PENVMware, 950, 4),               // ruleId
		f(492, 1),                             // srhFlagsIPv6
		f(515, 4),                             // ipv6ExtensionHeadersFull, reduced size
		f(530, 4),                             // pathDelayMeanDeltaMicroseconds
		e(ie.PENFortinet, 5, 2),
	}
	rec := cat(ip("10.4.0.2"), ip("192.0.2.7"), u16(41000), u16(443), u8(6), u64(7000), u64(11),
		u64(vendorExportMs-4000), u64(vendorExportMs-3000),
		u16(91), varlen([]byte("TLS")), u16(2), ip("10.9.9.9"), []byte{0x00, 0x11, 0x22, 0x33, 0x44, 0x55},
		varlen([]byte("/index.html")),
		u32(0x12345678), varlen([]byte("voice")), u32(0x0a0b0c0d),
		varlen([]byte("example.org")), u32(4242),
		u32(1001),
		u8(0x80), u32(0x14), u32(1500),
		u16(0xbeef))
	tm := msg{version: 10, export: vendorExportMs / 1000, sets: [][]byte{set(setIPFIXTemplate, tmpl(310, fields...))}}
	data := msg{version: 10, export: vendorExportMs / 1000, sets: [][]byte{set(310, rec)}}

	const ntopV9 = 57472
	v9 := []field{f(8, 4), f(12, 4), f(7, 2), f(11, 2), f(4, 1), f(1, 4), f(2, 4), f(22, 4), f(21, 4),
		f(ntopV9+118, 2), f(ntopV9+119, 16), f(ntopV9+80, 2)}
	name := make([]byte, 16)
	copy(name, "DNS")
	v9rec := cat(ip("10.4.0.3"), ip("192.0.2.53"), u16(5300), u16(53), u8(17), u32(80), u32(1), u32(90_000), u32(95_000),
		u16(5), name, u16(0))
	v9tm := msg{version: 9, export: nselExport, uptime: 100_000, sets: [][]byte{set(setV9Template, tmpl(320, v9...))}}
	v9data := msg{version: 9, export: nselExport, uptime: 100_000, seq: 1, sets: [][]byte{set(320, v9rec)}}
	return [][]byte{tm.bytes(), data.bytes(), v9tm.bytes(), v9data.bytes()}
}

// checkEvent compares the keys of want with an event; a nil value means
// the key must be absent.
func checkEvent(t *testing.T, i int, ev, want map[string]any) {
	t.Helper()
	for k, w := range want {
		got, ok := ev[k]
		switch {
		case w == nil && ok:
			t.Errorf("event %d: %s = %v, want it absent", i, k, got)
		case w == nil:
		case !ok:
			t.Errorf("event %d: no %s (want %v)", i, k, w)
		case got != w:
			t.Errorf("event %d: %s = %v (%T), want %v (%T)", i, k, got, got, w, w)
		}
	}
}

func TestNSELEvents(t *testing.T) {
	evs := events(t, nselDatagrams())
	if len(evs) != len(nselEvents)+1 {
		t.Fatalf("%d events, want %d", len(evs), len(nselEvents)+1)
	}
	common := map[string]any{
		"sourceIPv4Address": "10.1.1.10", "destinationIPv4Address": "198.51.100.20",
		"postNATSourceIPv4Address": "203.0.113.5", "postNATDestinationIPv4Address": "198.51.100.20",
		"ingressInterface": 3.0, "egressInterface": 4.0,
		"ingressAclId": "111111112222222200000000", "egressAclId": "000000000000000000000000",
	}
	want := []map[string]any{
		// Creation: no counts but zeros, no creation time: the event time
		// is the flow's start and end.
		{"flowId": 100.0, "firewallEvent": 1.0, "firewallEventExtended": 0.0, "userName": "alice",
			"sourceTransportPort": 51000.0, "postNAPTSourceTransportPort": 61000.0, "protocolIdentifier": 6.0,
			"observationTimeMilliseconds": 1_800_000_000_100.0, "flowStartMilliseconds": 1_800_000_000_100.0,
			"flowStartSeconds": 1_800_000_000.0, "flowEndSeconds": 1_800_000_000.0,
			"octetDeltaCount": 0.0, "packetDeltaCount": 0.0},
		// Teardown: bytes and packets of both directions, from creation to
		// the event.
		{"flowId": 101.0, "firewallEvent": 2.0, "firewallEventExtended": 2001.0,
			"initiatorOctets": 1200.0, "responderOctets": 64000.0, "initiatorPackets": 12.0, "responderPackets": 50.0,
			"octetDeltaCount": 65200.0, "packetDeltaCount": 62.0,
			"flowStartMilliseconds": 1_800_000_000_100.0, "flowEndMilliseconds": 1_800_000_030_000.0,
			"flowStartSeconds": 1_800_000_000.0, "flowEndSeconds": 1_800_000_030.0},
		// Denied: an empty user name is still named.
		{"flowId": 102.0, "firewallEvent": 3.0, "firewallEventExtended": 1001.0, "userName": "",
			"protocolIdentifier": 17.0, "destinationTransportPort": 53.0,
			"flowStartSeconds": 1_800_000_000.0, "flowEndMilliseconds": 1_800_000_000_500.0},
		{"flowId": 103.0, "firewallEvent": 2.0, "icmpTypeIPv4": 8.0, "icmpCodeIPv4": 0.0, "protocolIdentifier": 1.0,
			"octetDeltaCount": 168.0, "packetDeltaCount": 2.0,
			"flowStartMilliseconds": 1_800_000_000_900.0, "flowEndMilliseconds": 1_800_000_001_000.0},
	}
	for i, w := range want {
		maps.Copy(w, common)
		checkEvent(t, i, evs[i], w)
	}
	// Older software: ids 40001-40005 come out under the IANA names.
	checkEvent(t, 4, evs[4], map[string]any{
		"sourceIPv4Address": "10.1.1.11", "postNATSourceIPv4Address": "203.0.113.6",
		"postNATDestinationIPv4Address": "192.0.2.80", "postNAPTSourceTransportPort": 50000.0,
		"postNAPTDestinationTransportPort": 80.0, "firewallEvent": 1.0,
		"flowStartSeconds": 1_800_000_002.0, "flowEndSeconds": 1_800_000_002.0,
		"element_40001": nil, "element_40005": nil, "octetDeltaCount": 60.0, "packetDeltaCount": 1.0,
	})
}

func TestVendorElements(t *testing.T) {
	evs := events(t, ipfixVendorDatagrams())
	if len(evs) != 2 {
		t.Fatalf("%d events, want 2", len(evs))
	}
	checkEvent(t, 0, evs[0], map[string]any{
		"postSourceMacAddress": "00:1b:21:3a:4b:5c", "applicationName": "https", "applicationId": "030001bb",
		"basicList": "03000b000201bb20fb", "flowEndReason": 3.0, "ipTTL": 64.0,
		"observationTimeMicroseconds": float64((vendorExportMs-500)*1000 + 250),
		"dataRecordsReliability":      true, "absoluteError": 0.25, "postNATSourceIPv6Address": "2001:db8::5",
		"cisco_tcpWindowSizeMin": 65535.0, "vmware_tenantProtocol": 17.0, "vmware_tenantSourceIPv4": "172.16.0.9",
		"enterprise_12356_1": "deadbeef", "enterprise_35632_7": "6e647069",
		// The exporter's own addresses win over translated ones.
		"sourceIPv4Address": "10.2.0.1", "octetDeltaCount": 5000.0,
	})
	// Total counts and microsecond times only.
	checkEvent(t, 1, evs[1], map[string]any{
		"sourceIPv6Address": "2001:db8::1", "octetTotalCount": 900.0, "packetTotalCount": 3.0,
		"octetDeltaCount": 900.0, "packetDeltaCount": 3.0,
		"flowStartSeconds": float64(vendorExportMs/1000 - 3), "flowEndMilliseconds": float64(vendorExportMs - 2500),
	})
	evs = events(t, paloAltoDatagrams())
	checkEvent(t, 0, evs[0], map[string]any{
		"paloalto_appId": "ssl", "paloalto_userId": `corp\bob`, "privateEnterpriseNumber": 25461.0,
		"flowStartSeconds": float64(nselExport - 10), "flowEndSeconds": float64(nselExport - 5),
	})
}

// TestEnterpriseElements checks the names and values of the elements of
// the vendor tables and of IANA's past 491 (their sources are in
// ie/gen/main.go); an element of a vendor no table names stays
// enterprise_<PEN>_<id>, in hex.
func TestEnterpriseElements(t *testing.T) {
	evs := events(t, enterpriseDatagrams())
	if len(evs) != 2 {
		t.Fatalf("%d events, want 2", len(evs))
	}
	checkEvent(t, 0, evs[0], map[string]any{
		"ntop_L7_PROTO": 91.0, "ntop_L7_PROTO_NAME": "TLS", "ntop_SRC_FRAGMENTS": 2.0,
		"ntop_UNTUNNELED_IPV4_SRC_ADDR": "10.9.9.9", "ntop_DHCP_CLIENT_MAC": "00:11:22:33:44:55",
		"ntop_HTTP_URL":          "/index.html",
		"cisco_transportRtpSsrc": float64(0x12345678), "cisco_c3plClassName": "voice", "cisco_appTrafficClass": "0a0b0c0d",
		"juniper_httpHost": "example.org", "juniper_uplinkOctets": 4242.0,
		"vmware_ruleId": 1001.0,
		"srhFlagsIPv6":  128.0, "ipv6ExtensionHeadersFull": "00000014", "pathDelayMeanDeltaMicroseconds": 1500.0,
		"enterprise_12356_5": "beef",
		"element_492":        nil, "enterprise_35632_118": nil, "enterprise_2636_157": nil,
	})
	checkEvent(t, 1, evs[1], map[string]any{
		"ntop_L7_PROTO": 5.0, "ntop_L7_PROTO_NAME": "DNS", "ntop_SRC_FRAGMENTS": 0.0,
		"element_57590": nil, "sourceTransportPort": 5300.0,
	})
}

// tsharkTime reads a time as tshark prints it, as Unix milliseconds.
func tsharkTime(t *testing.T, s string) string {
	t.Helper()
	tm, err := time.Parse("Jan _2, 2006 15:04:05.999999999 MST", s)
	if err != nil {
		t.Fatalf("tshark time %q: %v", s, err)
	}
	return strconv.FormatInt(tm.UnixMilli(), 10)
}

// TestVendorDatagramsAsTsharkReadsThem checks the datagrams built from the
// vendors' specifications, and our reading of them, against tshark's
// NetFlow dissector: every element both name has the same value.
func TestVendorDatagramsAsTsharkReadsThem(t *testing.T) {
	noColons := func(_ *testing.T, s string) string { return strings.ReplaceAll(s, ":", "") }
	pairs := []struct {
		ours, tshark string
		conv         func(*testing.T, string) string
	}{
		{"sourceIPv4Address", "cflow.srcaddr", nil},
		{"destinationIPv4Address", "cflow.dstaddr", nil},
		{"sourceIPv6Address", "cflow.srcaddrv6", nil},
		{"destinationIPv6Address", "cflow.dstaddrv6", nil},
		{"sourceTransportPort", "cflow.srcport", nil},
		{"destinationTransportPort", "cflow.dstport", nil},
		{"protocolIdentifier", "cflow.protocol", nil},
		{"ingressInterface", "cflow.inputint", nil},
		{"egressInterface", "cflow.outputint", nil},
		{"flowId", "cflow.flow_id", nil},
		{"firewallEvent", "cflow.firewall_event", nil},
		{"firewallEventExtended", "cflow.fw_ext_event", nil},
		{"initiatorOctets", "cflow.initiator_octets", nil},
		{"responderOctets", "cflow.responder_octets", nil},
		{"initiatorPackets", "cflow.initiator_packets", nil},
		{"responderPackets", "cflow.responder_packets", nil},
		{"postNATSourceIPv4Address", "cflow.post_natsource_ipv4_address", nil},
		{"postNATDestinationIPv4Address", "cflow.post_natdestination_ipv4_address", nil},
		{"postNAPTSourceTransportPort", "cflow.post_naptsource_transport_port", nil},
		{"postNAPTDestinationTransportPort", "cflow.post_naptdestination_transport_port", nil},
		{"postNATSourceIPv6Address", "cflow.post_nat_source_ipv6_address", nil},
		{"icmpTypeIPv4", "cflow.icmp_ipv4_type", nil},
		{"icmpCodeIPv4", "cflow.icmp_ipv4_code", nil},
		{"userName", "cflow.aaa_username", nil},
		{"ingressAclId", "cflow.ingress_acl_id", noColons},
		{"egressAclId", "cflow.egress_acl_id", noColons},
		{"observationTimeMilliseconds", "cflow.observation_time_milliseconds", tsharkTime},
		{"postSourceMacAddress", "cflow.post_srcmac", nil},
		{"applicationName", "cflow.appl_name", nil},
		{"flowEndReason", "cflow.flow_end_reason", nil},
		{"absoluteError", "cflow.absolute_error", nil},
		{"dataRecordsReliability", "cflow.data_records_reliability", func(_ *testing.T, s string) string {
			return strconv.FormatBool(s == "1")
		}},
		{"octetTotalCount", "cflow.permanent_octets", nil},
		{"packetTotalCount", "cflow.permanent_packets", nil},
		{"privateEnterpriseNumber", "cflow.private_enterprise_number", nil},
		{"enterprise_35632_7", "cflow.enterprise_private_entry", noColons},
		{"ntop_L7_PROTO", "cflow.pie.ntop.l7_proto", nil},
		{"ntop_L7_PROTO_NAME", "cflow.pie.ntop.l7_proto_name", nil},
		{"ntop_SRC_FRAGMENTS", "cflow.pie.ntop.src_fragments", nil},
		{"ntop_UNTUNNELED_IPV4_SRC_ADDR", "cflow.pie.ntop.untunneled_ipv4_src_addr", nil},
		{"ntop_DHCP_CLIENT_MAC", "cflow.pie.ntop.dhcp_client_mac", nil},
		{"ntop_HTTP_URL", "cflow.pie.ntop.http_url", nil},
		{"cisco_transportRtpSsrc", "cflow.pie.cisco.transport_rtp_ssrc", nil},
		{"cisco_c3plClassName", "cflow.pie.cisco.c3pl_class_name", nil},
		{"cisco_appTrafficClass", "cflow.pie.cisco.application_traffic_class", noColons},
	}
	for name, datagrams := range map[string][][]byte{"nsel": nselDatagrams(), "ipfix": ipfixVendorDatagrams(), "paloalto": paloAltoDatagrams(),
		"enterprise": enterpriseDatagrams()} {
		dec := peers.Tshark(t, datagrams)
		evs := events(t, datagrams)
		if len(dec.Flows) != len(evs) {
			t.Fatalf("%s: tshark read %d flows, we %d", name, len(dec.Flows), len(evs))
		}
		compared := 0
		seen := map[string]bool{}
		for i, ev := range evs {
			// tshark's records come in no set order: each event is
			// compared with the one record of the same flow.
			tf := matchTshark(t, name, i, ev, dec.Flows)
			for _, p := range pairs {
				tv, tok := tf[p.tshark]
				ov, ook := ev[p.ours]
				if !tok || !ook {
					continue
				}
				if p.conv != nil {
					tv = p.conv(t, tv)
				}
				got := fmt.Sprint(ov)
				if n, ok := ov.(float64); ok {
					got = strconv.FormatFloat(n, 'f', -1, 64)
				}
				if got != tv {
					t.Errorf("%s flow %d: %s = %s, tshark's %s = %s", name, i, p.ours, got, p.tshark, tv)
				}
				compared++
				seen[p.ours] = true
			}
		}
		// The vendor tables' names must meet tshark's own reading of them.
		for _, p := range pairs {
			if name == "enterprise" && (strings.HasPrefix(p.ours, "ntop_") || strings.HasPrefix(p.ours, "cisco_")) {
				if !seen[p.ours] {
					t.Errorf("%s: %s not compared with tshark's %s", name, p.ours, p.tshark)
				}
			}
		}
		t.Logf("%s: %d values compared with tshark's", name, compared)
		if compared < 5*len(evs) {
			t.Errorf("%s: only %d values compared for %d flows", name, compared, len(evs))
		}
	}
}

// matchTshark returns the fields of the one record tshark read for the
// flow of event ev.
func matchTshark(t *testing.T, name string, i int, ev map[string]any, flows []peers.FlowRecord) map[string]string {
	t.Helper()
	identity := map[string]string{"sourceIPv4Address": "cflow.srcaddr", "sourceIPv6Address": "cflow.srcaddrv6",
		"sourceTransportPort": "cflow.srcport", "flowId": "cflow.flow_id", "firewallEvent": "cflow.firewall_event"}
	var found []map[string]string
	for _, fl := range flows {
		same := true
		for ours, theirs := range identity {
			if v, ok := ev[ours]; ok && fmt.Sprint(v) != fl.Fields[theirs] {
				same = false
			}
		}
		if same {
			found = append(found, fl.Fields)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%s event %d: %d of tshark's records match it", name, i, len(found))
	}
	return found[0]
}
