package ident

import (
	"fmt"
	"strings"
	"testing"
)

func dotted(a [4]byte) []byte { return fmt.Appendf(nil, "%d.%d.%d.%d", a[0], a[1], a[2], a[3]) }

func TestAddressesCarryRunAndSequence(t *testing.T) {
	for _, tc := range []struct {
		run uint16
		seq uint32
	}{{1, 0}, {1, 1}, {7, 255}, {300, 65_536}, {65_535, MaxSeq}} {
		src, dst := dotted(SrcAddr(tc.seq)), dotted(DstAddr(tc.run))
		run, seq, ok := FromAddrs(src, dst)
		if !ok || run != tc.run || seq != tc.seq {
			t.Errorf("run %d seq %d: %s -> %s read back as %d %d %v", tc.run, tc.seq, src, dst, run, seq, ok)
		}
	}
	if got := string(dotted(SrcAddr(1))); got != "10.0.0.1" {
		t.Errorf("SrcAddr(1) = %s", got)
	}
	if got := string(dotted(DstAddr(258))); got != "198.18.1.2" {
		t.Errorf("DstAddr(258) = %s", got)
	}
}

func TestForeignAddressesAreRefused(t *testing.T) {
	for _, tc := range []struct{ src, dst string }{
		{"10.0.0.1", "192.0.2.1"},     // not a benchmark destination
		{"192.168.1.1", "198.18.0.1"}, // source below 10.0.0.0
		{"26.0.0.0", "198.18.0.1"},    // sequence above MaxSeq
		{"10.0.0.1", "198.19.0.1"},
		{"10.0.0", "198.18.0.1"},
		{"10.0.0.256", "198.18.0.1"},
		{"10.0.0.1x", "198.18.0.1"},
		{"", ""},
		{"2001:db8::1", "198.18.0.1"},
	} {
		if run, seq, ok := FromAddrs([]byte(tc.src), []byte(tc.dst)); ok {
			t.Errorf("%s -> %s read as run %d seq %d", tc.src, tc.dst, run, seq)
		}
	}
}

func TestToken(t *testing.T) {
	msg := AppendToken([]byte("<134>1 - host app - - - hello "), 42, 123_456, 1_700_000_000_123)
	msg = append(msg, " padding"...)
	run, seq, sent, ok := FromToken(msg)
	if !ok || run != 42 || seq != 123_456 || sent != 1_700_000_000_123 {
		t.Fatalf("%q read as %d %d %d %v", msg, run, seq, sent, ok)
	}
	for _, bad := range []string{"no token", "fgb=", "fgb=1.2", "fgb=1..3", "fgb=70000.1.1", "fgb=1.x.1"} {
		if _, _, _, ok := FromToken([]byte(bad)); ok {
			t.Errorf("%q read as a token", bad)
		}
	}
}

func TestCounter(t *testing.T) {
	var c Counter
	for _, seq := range []uint32{5, 1, 5, 100_000, 1, 5, 0} {
		c.Add(seq)
	}
	if c.Events != 7 || c.Unique != 4 || c.Duplicates != 3 {
		t.Fatalf("%+v", c)
	}
}

func TestField(t *testing.T) {
	for _, tc := range []struct{ obj, key, want string }{
		{`{"src_addr":"10.0.0.1","dst_addr":"198.18.0.1"}`, "dst_addr", "198.18.0.1"},
		{`{"ip_src": "10.0.0.1", "ip_dst": "198.18.0.1", "packets": 3}`, "packets", "3"},
		{`{"a":1,"collectionTimeMilliseconds":1700000000123}`, "collectionTimeMilliseconds", "1700000000123"},
		{`{"next_src_addr":"x","src_addr":"y"}`, "src_addr", "y"}, // a key that ends like another
		{`{"note":"src_addr","src_addr":"z"}`, "src_addr", "z"},   // a value that reads like the key
		{`{"src_addr":"y"}`, "dst_addr", ""},
	} {
		if got := string(Field([]byte(tc.obj), tc.key)); got != tc.want {
			t.Errorf("Field(%s, %s) = %q, want %q", tc.obj, tc.key, got, tc.want)
		}
		// The same object inside a JSON string, as /jsons carries it.
		escaped := strings.ReplaceAll(tc.obj, `"`, `\"`)
		if got := string(EscapedField([]byte(escaped), tc.key)); got != tc.want {
			t.Errorf("EscapedField(%s, %s) = %q, want %q", escaped, tc.key, got, tc.want)
		}
		if tc.want != "" && Field([]byte(escaped), tc.key) != nil {
			t.Errorf("Field read the escaped %s", escaped)
		}
	}
}
