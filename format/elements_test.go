package format

import (
	"encoding/json"
	"reflect"
	"testing"

	pb "github.com/flowgate/flowgate/proto"
)

// TestElements checks the writing of a record's other elements: by the
// registry's type, once each, never a key the record's own fields write,
// and in string mode the same event quoted.
func TestElements(t *testing.T) {
	var el []byte
	for _, e := range []struct {
		pen uint32
		id  uint16
		v   []byte
	}{
		{0, 233, []byte{2}},                                     // firewallEvent
		{0, 231, []byte{0, 0, 4, 0}},                            // initiatorOctets, reduced size
		{0, 8, []byte{192, 0, 2, 9}},                            // sourceIPv4Address: the record's own
		{0, 233, []byte{3}},                                     // repeated: the first wins
		{0, 371, []byte("bob\x00\x00")},                         // userName, NUL-padded
		{0, 371, []byte("again")},                               // repeated
		{0, 434, []byte{0xff, 0xff, 0xff, 0xfe}},                // mibObjectValueInteger: signed32
		{0, 276, []byte{2}},                                     // dataRecordsReliability: false
		{0, 333, []byte{9}},                                     // hashDigestOutput: not a boolean value
		{0, 325, []byte{0xee, 0xf4, 0x50, 0x80, 0x80, 0, 0, 0}}, // observationTimeNanoseconds
		{0, 33001, []byte{1, 2}},                                // egressAclId (NSEL)
		{0, 600, []byte{0xab}},                                  // unassigned
		{6876, 889, []byte{1}},                                  // vmware_vxlanExportRole
		{12356, 5, []byte("a\"b")},                              // Fortinet: unnamed
		{0, 82, []byte("ge-0/0/1")},                             // interfaceName: no configured name
		{0, 130, []byte{192, 0, 2, 200}},                        // exporterIPv4Address: the record has none
	} {
		el = pb.AppendElement(el, e.pen, e.id, e.v)
	}
	f := &pb.Flow{Type: pb.FlowType_IPFIX, SrcAddr: []byte{10, 0, 0, 1}, Present: present(pb.Field_SRC_ADDR), Elements: el}
	var got map[string]any
	b := IANA{}.AppendFlow(nil, f)
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	want := map[string]any{
		"sourceIPv4Address": "10.0.0.1", "flowType": "IPFIX",
		"firewallEvent": 2.0, "initiatorOctets": 1024.0, "userName": "bob",
		"mibObjectValueInteger": -2.0, "dataRecordsReliability": false, "hashDigestOutput": "09",
		"observationTimeNanoseconds": 1_800_000_000_500_000_000.0,
		"egressAclId":                "0102", "element_600": "ab", "vmware_vxlanExportRole": 1.0,
		"enterprise_12356_5": "612262",
		"interfaceName":      "ge-0/0/1", "exporterIPv4Address": "192.0.2.200",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("event %s\nwant %v", b, want)
	}
	if s, want := (IANA{AsString: true}).AppendFlow(nil, f), AppendBytes(nil, b); string(s) != string(want) {
		t.Errorf("string form %s\nwant %s", s, want)
	}
}
