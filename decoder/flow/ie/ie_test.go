package ie

import "testing"

func TestRegistry(t *testing.T) {
	names := map[string]Key{}
	n := 0
	for k, e := range All() {
		if prev, ok := names[e.Name]; ok && !sameNtop(prev, k) {
			t.Errorf("%s named twice: %v and %v", e.Name, prev, k)
		}
		names[e.Name] = k
		if k.PEN == 0 && k.ID < 32768 {
			n++
		}
	}
	if n < 450 {
		t.Errorf("%d IANA elements, want the registry's 450 or more", n)
	}
	for _, c := range []struct {
		pen  uint32
		id   uint16
		want Element
	}{
		{0, 1, Element{"octetDeltaCount", Unsigned64}},
		{0, 225, Element{"postNATSourceIPv4Address", IPv4Address}},
		{0, 323, Element{"observationTimeMilliseconds", DateTimeMilliseconds}},
		{0, 291, Element{"basicList", BasicList}},
		{0, 33002, Element{"firewallEventExtended", Unsigned16}},
		{0, 56701, Element{"paloalto_appId", String}},
		{PENVMware, 880, Element{"vmware_tenantProtocol", Unsigned8}},
		{PENVMware, 950, Element{"vmware_ruleId", Unsigned32}},
		// Elements the IANA registry gained after 491 (2026-07-22 copy).
		{0, 492, Element{"srhFlagsIPv6", Unsigned8}},
		{0, 515, Element{"ipv6ExtensionHeadersFull", Unsigned256}},
		{0, 533, Element{"pathDelaySumDeltaMicroseconds", Unsigned64}},
		{PENCisco, 8234, Element{"cisco_c3plClassName", String}},
		{PENJuniper, 157, Element{"juniper_httpHost", String}},
		{PENNtop, 119, Element{"ntop_L7_PROTO_NAME", String}},
		{0, 57472 + 119, Element{"ntop_L7_PROTO_NAME", String}},
	} {
		if got, ok := Lookup(c.pen, c.id); !ok || got != c.want {
			t.Errorf("Lookup(%d, %d) = %v %v, want %v", c.pen, c.id, got, ok, c.want)
		}
	}
	if _, ok := Lookup(PENFortinet, 1); ok {
		t.Error("Fortinet element 1 named")
	}
	if got := Unknown(PENFortinet, 1); got != "enterprise_12356_1" {
		t.Errorf("Unknown = %s", got)
	}
	for from, to := range map[uint16]uint16{40000: 371, 40001: 225, 40002: 226, 40003: 227, 40004: 228, 40005: 233, 8: 8} {
		if got := V9Alias(from); got != to {
			t.Errorf("V9Alias(%d) = %d, want %d", from, got, to)
		}
	}
}

// sameNtop says whether a and b are one nProbe element, as NetFlow v9 type
// 57472 + id and as IPFIX element id of PEN 35632: one name for both.
func sameNtop(a, b Key) bool {
	if a.PEN == PENNtop {
		a, b = b, a
	}
	return a.PEN == 0 && b.PEN == PENNtop && uint32(a.ID) == 57472+uint32(b.ID)
}
