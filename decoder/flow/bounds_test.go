package flow

import (
	"encoding/binary"
	"slices"
	"testing"

	pb "github.com/flowgate/flowgate/proto"
)

// templated builds a v9 (version 9) or IPFIX (10) datagram of sets, each
// given as its ID and body.
func templated(version uint16, sets ...[]byte) []byte {
	hdr := make([]byte, v9HeaderBytes)
	if version == 10 {
		hdr = make([]byte, ipfixHdrBytes)
	}
	binary.BigEndian.PutUint16(hdr, version)
	d := slices.Concat(hdr, slices.Concat(sets...))
	if version == 10 {
		binary.BigEndian.PutUint16(d[2:], uint16(len(d)))
	} else {
		binary.BigEndian.PutUint16(d[2:], uint16(len(sets)))
	}
	return d
}

// words is a set body of 16-bit words.
func words(ws ...uint16) []byte {
	var b []byte
	for _, w := range ws {
		b = binary.BigEndian.AppendUint16(b, w)
	}
	return b
}

func TestTemplateBounds(t *testing.T) {
	for _, tc := range []struct {
		name     string
		datagram []byte
		ok       bool
	}{
		{"v9 template", templated(9, set(0, words(256, 2, 8, 4, 12, 4))), true},
		{"IPFIX template with an enterprise field", templated(10, set(2, words(256, 2, 8, 4, 0x8001, 4, 0, 9))), true},
		{"IPFIX withdrawal", templated(10, set(2, words(256, 0))), true},
		{"v9 options template", templated(9, set(1, words(257, 4, 8, 1, 4, 34, 4, 35, 1))), true},
		{"IPFIX options template", templated(10, set(3, words(257, 2, 1, 10, 4, 34, 4))), true},
		{"v9 template stating 65535 fields", templated(9, set(0, words(256, 65535, 8, 4))), false},
		{"IPFIX template stating more fields than it holds", templated(10, set(2, words(256, 3, 8, 4, 12, 4))), false},
		{"IPFIX template cut in an enterprise number", templated(10, set(2, words(256, 1, 0x8001, 4))), false},
		{"IPFIX options template stating 65535 scope fields", templated(10, set(3, words(257, 1, 65535, 10, 4))), false},
		{"v9 options template stating 65532 bytes of scopes", templated(9, set(1, words(257, 65532, 0, 1, 4))), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// A template that states more than its set holds, or fields
			// that take no bytes, is skipped as malformed and never kept.
			tmpl := NewTemplates()
			var batch pb.Batch
			res, err := NewDecoder(tmpl).Decode(tc.datagram, testExporter, testReceived, &batch)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			bad := res.BadSets+res.RefusedTemplates > 0
			if bad == tc.ok || !tc.ok && tmpl.Len() != 0 {
				t.Fatalf("Decode: %+v, %d templates kept; want ok %v", res, tmpl.Len(), tc.ok)
			}
		})
	}
}
