package format

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	pb "github.com/flowgate/flowgate/proto"
)

func present(fields ...pb.Field) uint64 {
	var p uint64
	for _, f := range fields {
		p |= 1 << uint(f)
	}
	return p
}

// allFields is a flow with every field set to a distinct value.
func allFields() *pb.Flow {
	return &pb.Flow{
		Type:                pb.FlowType_IPFIX,
		TimeReceivedNs:      1795428001234567890,
		Exporter:            []byte{192, 0, 2, 1},
		ObservationDomainId: 7,
		SrcAddr:             []byte{10, 0, 0, 1},
		DstAddr:             []byte{198, 51, 100, 2},
		SrcPort:             41970,
		DstPort:             443,
		Proto:               6,
		IpVersion:           4,
		Tos:                 184,
		TcpFlags:            27,
		Bytes:               1 << 40,
		Packets:             12,
		InIf:                3,
		OutIf:               4,
		StartMs:             1795428000005,
		EndMs:               1795428000999,
		StartUptimeMs:       61588,
		EndUptimeMs:         62004,
		SrcAs:               64500,
		DstAs:               4200000000,
		SrcMask:             24,
		DstMask:             16,
		NextHop:             []byte{192, 0, 2, 254},
		BgpNextHop:          []byte{192, 0, 2, 253},
		SrcMac:              0x0000_5e00_5301,
		DstMac:              0xaabb_ccdd_eeff,
		Vlan:                100,
		Direction:           1,
		IcmpTypeCode:        0x0800,
		SamplingRate:        1000,
		FlowEndReason:       3,
		Present: present(pb.Field_SRC_ADDR, pb.Field_DST_ADDR, pb.Field_SRC_PORT, pb.Field_DST_PORT,
			pb.Field_PROTO, pb.Field_TOS, pb.Field_TCP_FLAGS, pb.Field_BYTES, pb.Field_PACKETS,
			pb.Field_IN_IF, pb.Field_OUT_IF, pb.Field_START, pb.Field_END, pb.Field_START_UPTIME,
			pb.Field_END_UPTIME, pb.Field_SRC_AS, pb.Field_DST_AS, pb.Field_SRC_MASK, pb.Field_DST_MASK,
			pb.Field_NEXT_HOP, pb.Field_BGP_NEXT_HOP, pb.Field_SRC_MAC, pb.Field_DST_MAC, pb.Field_VLAN,
			pb.Field_DIRECTION, pb.Field_ICMP_TYPE_CODE, pb.Field_SAMPLING, pb.Field_OBSERVATION_DOMAIN,
			pb.Field_IP_VERSION, pb.Field_FLOW_END_REASON),
	}
}

func decode(t *testing.T, b []byte) map[string]any {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("not JSON: %v: %s", err, b)
	}
	return m
}

func TestAppendFlowEveryField(t *testing.T) {
	got := decode(t, IANA{}.AppendFlow(nil, allFields()))
	want := map[string]any{
		"sourceIPv4Address":           "10.0.0.1",
		"destinationIPv4Address":      "198.51.100.2",
		"sourceTransportPort":         json.Number("41970"),
		"destinationTransportPort":    json.Number("443"),
		"protocolIdentifier":          json.Number("6"),
		"ipVersion":                   json.Number("4"),
		"ipClassOfService":            json.Number("184"),
		"tcpControlBits":              json.Number("27"),
		"octetDeltaCount":             json.Number("1099511627776"),
		"packetDeltaCount":            json.Number("12"),
		"ingressInterface":            json.Number("3"),
		"egressInterface":             json.Number("4"),
		"flowStartSeconds":            json.Number("1795428000"),
		"flowStartMilliseconds":       json.Number("1795428000005"),
		"flowEndSeconds":              json.Number("1795428000"),
		"flowEndMilliseconds":         json.Number("1795428000999"),
		"flowStartSysUpTime":          json.Number("61588"),
		"flowEndSysUpTime":            json.Number("62004"),
		"bgpSourceAsNumber":           json.Number("64500"),
		"bgpDestinationAsNumber":      json.Number("4200000000"),
		"sourceIPv4PrefixLength":      json.Number("24"),
		"destinationIPv4PrefixLength": json.Number("16"),
		"ipNextHopIPv4Address":        "192.0.2.254",
		"bgpNextHopIPv4Address":       "192.0.2.253",
		"sourceMacAddress":            "00:00:5e:00:53:01",
		"destinationMacAddress":       "aa:bb:cc:dd:ee:ff",
		"vlanId":                      json.Number("100"),
		"flowDirection":               json.Number("1"),
		"icmpTypeCodeIPv4":            json.Number("2048"),
		"flowEndReason":               json.Number("3"),
		"samplingPacketInterval":      json.Number("1000"),
		"exporterIPv4Address":         "192.0.2.1",
		"observationDomainId":         json.Number("7"),
		"collectionTimeMilliseconds":  json.Number("1795428001234"),
		"flowType":                    "IPFIX",
	}
	if !reflect.DeepEqual(got, want) {
		for k, v := range want {
			if !reflect.DeepEqual(got[k], v) {
				t.Errorf("%s = %#v, want %#v", k, got[k], v)
			}
		}
		for k := range got {
			if _, ok := want[k]; !ok {
				t.Errorf("unexpected %s = %v", k, got[k])
			}
		}
	}
}

func TestAppendFlowIPv6(t *testing.T) {
	f := allFields()
	v6 := func(last byte) []byte { return []byte{0x20, 0x01, 0x0d, 0xb8, 15: last} }
	f.SrcAddr, f.DstAddr, f.NextHop, f.BgpNextHop, f.Exporter = v6(1), v6(2), v6(3), v6(4), v6(5)
	f.IpVersion, f.Type = 6, pb.FlowType_NETFLOW_V9
	got := decode(t, IANA{}.AppendFlow(nil, f))
	for k, v := range map[string]any{
		"sourceIPv6Address": "2001:db8::1", "destinationIPv6Address": "2001:db8::2",
		"ipNextHopIPv6Address": "2001:db8::3", "bgpNextHopIPv6Address": "2001:db8::4",
		"exporterIPv6Address": "2001:db8::5", "sourceIPv6PrefixLength": json.Number("24"),
		"destinationIPv6PrefixLength": json.Number("16"), "icmpTypeCodeIPv6": json.Number("2048"),
		"flowType": "NETFLOW_V9",
	} {
		if !reflect.DeepEqual(got[k], v) {
			t.Errorf("%s = %#v, want %#v", k, got[k], v)
		}
	}
	for _, k := range []string{"sourceIPv4Address", "destinationIPv4Address", "sourceIPv4PrefixLength", "icmpTypeCodeIPv4"} {
		if _, ok := got[k]; ok {
			t.Errorf("IPv6 flow has %s", k)
		}
	}
}

func TestAppendFlowLeavesOutWhatWasNotSent(t *testing.T) {
	f := &pb.Flow{Type: pb.FlowType_NETFLOW_V9, Exporter: []byte{127, 0, 0, 1}, Bytes: 99, InIf: 5,
		Present: present(pb.Field_BYTES)}
	got := decode(t, IANA{}.AppendFlow([]byte("prefix:"), f)[len("prefix:"):])
	want := map[string]any{"octetDeltaCount": json.Number("99"), "exporterIPv4Address": "127.0.0.1", "flowType": "NETFLOW_V9"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}

func TestAppendString(t *testing.T) {
	for in, want := range map[string]string{
		"":                         `""`,
		"plain":                    `"plain"`,
		`quote " and \ backslash`:  `"quote \" and \\ backslash"`,
		"line\nfeed\r\ttab":        `"line\nfeed\r\ttab"`,
		"\x00\x01\x1f\x7f":         `"\u0000\u0001\u001f` + "\x7f" + `"`,
		"héllo wörld ✓ 🚀":          `"héllo wörld ✓ 🚀"`,
		"bad \xff byte":            `"bad \ufffd byte"`,
		"truncated \xe2\x82":       `"truncated \ufffd\ufffd"`,
		"js \u2028 and \u2029":     `"js \u2028 and \u2029"`,
		`{"nested":"json","n":1}`:  `"{\"nested\":\"json\",\"n\":1}"`,
		"<script>&amp;</script>":   `"<script>&amp;</script>"`,
		"surrogate \xed\xa0\x80 x": `"surrogate \ufffd\ufffd\ufffd x"`,
	} {
		got := string(AppendString(nil, in))
		if got != want {
			t.Errorf("AppendString(%q) = %s, want %s", in, got, want)
		}
		var back string
		if err := json.Unmarshal([]byte(got), &back); err != nil {
			t.Errorf("AppendString(%q) = %s is not JSON: %v", in, got, err)
		}
		if utf8.ValidString(in) && back != in {
			t.Errorf("AppendString(%q) reads back as %q", in, back)
		}
		if b := string(AppendBytes(nil, []byte(in))); b != got {
			t.Errorf("AppendBytes(%q) = %s, AppendString gives %s", in, b, got)
		}
	}
}

func BenchmarkAppendFlow(b *testing.B) {
	f := allFields()
	buf := make([]byte, 0, 1024)
	b.ReportAllocs()
	for b.Loop() {
		buf = IANA{}.AppendFlow(buf[:0], f)
	}
	b.SetBytes(int64(len(buf)))
}

func BenchmarkAppendString(b *testing.B) {
	event := IANA{}.AppendFlow(nil, allFields())
	buf := make([]byte, 0, 2048)
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendBytes(buf[:0], event)
	}
	b.SetBytes(int64(len(event)))
}

func BenchmarkAppendFlowString(b *testing.B) {
	f := allFields()
	buf := make([]byte, 0, 2048)
	b.ReportAllocs()
	for b.Loop() {
		buf = IANA{AsString: true}.AppendFlow(buf[:0], f)
	}
	b.SetBytes(int64(len(buf)))
}
