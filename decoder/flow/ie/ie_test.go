package ie

import "testing"

func TestRegistry(t *testing.T) {
	names := map[string]Key{}
	n := 0
	for k, e := range All() {
		if prev, ok := names[e.Name]; ok {
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
