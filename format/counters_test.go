package format_test

import (
	"encoding/json"
	"testing"

	"github.com/flowgate/flowgate/format"
	pb "github.com/flowgate/flowgate/proto"
)

func TestAppendCounters(t *testing.T) {
	c := &pb.InterfaceCounters{
		Type: pb.FlowType_SFLOW_5, TimeReceivedNs: uint64(received.UnixNano()), Exporter: []byte{192, 0, 2, 7},
		ObservationDomainId: 3, IfIndex: 12, IfType: 6, IfSpeed: 10_000_000_000, IfDirection: 1, IfStatus: 2,
		InOctets: 1 << 40, InUcastPkts: 100, InMulticastPkts: 2, InBroadcastPkts: 3, InDiscards: 4, InErrors: 5,
		InUnknownProtos: 1<<32 - 1, OutOctets: 1<<64 - 1, OutUcastPkts: 200, OutMulticastPkts: 7,
		OutBroadcastPkts: 8, OutDiscards: 9, OutErrors: 10, PromiscuousMode: 1,
	}
	out := format.IANA{}.AppendCounters([]byte("prefix"), c)
	keys, vals := orderedObject(t, out[len("prefix"):])
	want := map[string]string{
		"eventType": `"interfaceCounters"`, "ifIndex": "12", "ifType": "6", "ifSpeed": "10000000000",
		"ifDirection": "1", "ifAdminStatus": `"down"`, "ifOperStatus": `"up"`, "ifInOctets": "1099511627776",
		"ifInUcastPkts": "100", "ifInMulticastPkts": "2", "ifInBroadcastPkts": "3", "ifInDiscards": "4",
		"ifInErrors": "5", "ifOutUcastPkts": "200", "ifOutMulticastPkts": "7", "ifOutBroadcastPkts": "8",
		"ifOutDiscards": "9", "ifOutErrors": "10", "ifPromiscuousMode": "1",
		"exporterIPv4Address": `"192.0.2.7"`, "observationDomainId": "3",
		"collectionTimeMilliseconds": "1795428001234", "flowType": `"SFLOW_5"`,
	}
	// Counters the agent marks unknown (all ones) are left out.
	if len(keys) != len(want) {
		t.Errorf("keys %v, want %d of them", keys, len(want))
	}
	for k, w := range want {
		if vals[k] != w {
			t.Errorf("%s = %s, want %s", k, vals[k], w)
		}
	}
	if keys[0] != "eventType" {
		t.Errorf("eventType is not first: %v", keys)
	}
}

func TestAppendFlowSampledHeaderFields(t *testing.T) {
	f := &pb.Flow{
		Type: pb.FlowType_SFLOW_5, Exporter: []byte{192, 0, 2, 7}, SrcAddr: make([]byte, 16), IpVersion: 6,
		Etype: 0x86dd, IpTtl: 9, FlowLabel: 0x12345, FragmentId: 7, FragmentOffset: 8, FragmentFlags: 1,
		Vlan: 10, PostVlan: 20, Dot1QVlan: 30,
	}
	for _, b := range []pb.Field{pb.Field_SRC_ADDR, pb.Field_IP_VERSION, pb.Field_ETYPE, pb.Field_IP_TTL,
		pb.Field_FLOW_LABEL, pb.Field_FRAGMENT_ID, pb.Field_FRAGMENT_OFFSET, pb.Field_FRAGMENT_FLAGS,
		pb.Field_VLAN, pb.Field_POST_VLAN, pb.Field_DOT1Q_VLAN} {
		f.Present |= 1 << uint(b)
	}
	var got map[string]any
	if err := json.Unmarshal(format.IANA{}.AppendFlow(nil, f), &got); err != nil {
		t.Fatal(err)
	}
	for k, w := range map[string]any{
		"sourceIPv6Address": "::", "ipVersion": 6.0, "ethernetType": 34525.0, "ipTTL": 9.0, "flowLabelIPv6": 74565.0,
		"fragmentIdentification": 7.0, "fragmentOffset": 8.0, "fragmentFlags": 1.0, "vlanId": 10.0,
		"postVlanId": 20.0, "dot1qVlanId": 30.0, "exporterIPv4Address": "192.0.2.7", "flowType": "SFLOW_5",
	} {
		if got[k] != w {
			t.Errorf("%s = %v, want %v", k, got[k], w)
		}
	}
	if len(got) != 13 {
		t.Errorf("%d keys, want 13: %v", len(got), got)
	}
}
