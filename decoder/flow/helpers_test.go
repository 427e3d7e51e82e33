package flow

import (
	"encoding/binary"
	"net/netip"
	"os"
	"testing"
	"time"

	pb "github.com/flowgate/flowgate/proto"
)

// Builders of crafted v9 and IPFIX datagrams, in the wire format.

// field is a template field: type, length, and an enterprise number for
// IPFIX enterprise elements.
type field struct {
	typ, length uint16
	pen         uint32
}

func f(typ, length uint16) field { return field{typ: typ, length: length} }

// msg is a v9 or IPFIX datagram under construction.
type msg struct {
	version uint16
	domain  uint32
	seq     uint32
	export  uint32 // Unix seconds
	uptime  uint32 // ms, v9 only
	sets    [][]byte
}

func (m msg) bytes() []byte {
	var b []byte
	be := binary.BigEndian
	if m.version == 9 {
		b = be.AppendUint16(b, 9)
		b = be.AppendUint16(b, uint16(len(m.sets)))
		b = be.AppendUint32(b, m.uptime)
		b = be.AppendUint32(b, m.export)
		b = be.AppendUint32(b, m.seq)
		b = be.AppendUint32(b, m.domain)
	} else {
		b = be.AppendUint16(b, 10)
		b = be.AppendUint16(b, 0)
		b = be.AppendUint32(b, m.export)
		b = be.AppendUint32(b, m.seq)
		b = be.AppendUint32(b, m.domain)
	}
	for _, s := range m.sets {
		b = append(b, s...)
	}
	if m.version == 10 {
		be.PutUint16(b[2:], uint16(len(b)))
	}
	return b
}

// set wraps a set body with its header.
func set(id uint16, body []byte) []byte {
	b := binary.BigEndian.AppendUint16(nil, id)
	b = binary.BigEndian.AppendUint16(b, uint16(4+len(body)))
	return append(b, body...)
}

func appendFields(b []byte, fields []field) []byte {
	for _, fd := range fields {
		t := fd.typ
		if fd.pen != 0 {
			t |= enterpriseBit
		}
		b = binary.BigEndian.AppendUint16(b, t)
		b = binary.BigEndian.AppendUint16(b, fd.length)
		if fd.pen != 0 {
			b = binary.BigEndian.AppendUint32(b, fd.pen)
		}
	}
	return b
}

// tmpl is a data template record.
func tmpl(id uint16, fields ...field) []byte {
	b := binary.BigEndian.AppendUint16(nil, id)
	b = binary.BigEndian.AppendUint16(b, uint16(len(fields)))
	return appendFields(b, fields)
}

// ipfixOptTmpl is an IPFIX options template record.
func ipfixOptTmpl(id uint16, scopes []field, options ...field) []byte {
	b := binary.BigEndian.AppendUint16(nil, id)
	b = binary.BigEndian.AppendUint16(b, uint16(len(scopes)+len(options)))
	b = binary.BigEndian.AppendUint16(b, uint16(len(scopes)))
	b = appendFields(b, scopes)
	return appendFields(b, options)
}

// v9OptTmpl is a v9 options template record.
func v9OptTmpl(id uint16, scopes []field, options ...field) []byte {
	b := binary.BigEndian.AppendUint16(nil, id)
	b = binary.BigEndian.AppendUint16(b, uint16(4*len(scopes)))
	b = binary.BigEndian.AppendUint16(b, uint16(4*len(options)))
	b = appendFields(b, scopes)
	return appendFields(b, options)
}

func cat(parts ...[]byte) []byte {
	var b []byte
	for _, p := range parts {
		b = append(b, p...)
	}
	return b
}

func u8(v uint8) []byte   { return []byte{v} }
func u16(v uint16) []byte { return binary.BigEndian.AppendUint16(nil, v) }
func u32(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }
func u64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }
func ip(s string) []byte  { return netip.MustParseAddr(s).AsSlice() }

// varlen encodes a variable-length value (RFC 7011 section 7).
func varlen(v []byte) []byte {
	if len(v) < 255 {
		return append([]byte{byte(len(v))}, v...)
	}
	return append([]byte{255, byte(len(v) >> 8), byte(len(v))}, v...)
}

var (
	exporterA = netip.MustParseAddr("192.0.2.1")
	exporterB = netip.MustParseAddr("192.0.2.2")
	received  = time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
)

// decodeAll decodes datagrams in order with one decoder and returns the
// flows and the sum of the results.
func decodeAll(t *testing.T, d *Decoder, from netip.Addr, datagrams ...[]byte) ([]*pb.Flow, Result) {
	t.Helper()
	var batch pb.Batch
	var sum Result
	for i, dg := range datagrams {
		res, err := d.Decode(dg, from, received, &batch)
		if err != nil {
			t.Fatalf("datagram %d: %v", i, err)
		}
		sum.Flows += res.Flows
		sum.MissingTemplate += res.MissingTemplate
		sum.BadSets += res.BadSets
		sum.RefusedTemplates += res.RefusedTemplates
		sum.LostRecords += res.LostRecords
		sum.LostDatagrams += res.LostDatagrams
	}
	if len(batch.Flows) != sum.Flows {
		t.Fatalf("batch holds %d flows, results say %d", len(batch.Flows), sum.Flows)
	}
	return batch.Flows, sum
}

// readPcap returns the UDP payloads of a capture written by
// internal/testtraffic (Ethernet, IPv4, UDP).
func readPcap(t testing.TB, path string) [][]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	const ethIPUDP = 14 + 20 + 8
	var out [][]byte
	for b = b[24:]; len(b) >= 16; {
		n := int(binary.LittleEndian.Uint32(b[8:]))
		frame := b[16 : 16+n]
		out = append(out, frame[ethIPUDP:])
		b = b[16+n:]
	}
	return out
}

func has(f *pb.Flow, field pb.Field) bool { return f.Present&bit(field) != 0 }
