package format

import (
	"math"
	"strconv"
	"unsafe"

	"github.com/flowgate/flowgate/decoder/flow/ie"
	pb "github.com/flowgate/flowgate/proto"
)

// elementNames are the keys of the registry's elements, written out once
// (see name), by enterprise number << 16 | id.
var elementNames = func() map[uint64]name {
	m := map[uint64]name{}
	for k, e := range ie.All() {
		m[uint64(k.PEN)<<16|uint64(k.ID)] = newName(e.Name)
	}
	return m
}()

// ownKeys are the IANA elements that the flow's own fields write (flow.go)
// when they are set: the decoder keeps these in the fields, so an element
// among the others with one of these ids (a corrupt record) is skipped
// rather than give a key twice.
var ownKeys = func() (t [512]bool) {
	for _, id := range []uint16{1, 2, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 21, 22,
		27, 28, 29, 30, 31, 32, 54, 56, 58, 59, 60, 61, 62, 63, 80, 88, 136, 139,
		150, 151, 152, 153, 192, 197, 243, 256, 305} {
		t[id] = true
	}
	return t
}()

// writtenByFields says whether the flow's own fields already wrote the key
// of IANA element id. The exporter's own exporter address, observation
// domain, collection time or interface name, sent as elements, are written
// unless the record's fields gave that key.
func writtenByFields(f *pb.Flow, id uint16) bool {
	switch id {
	case 82: // interfaceName
		return f.InIfName != ""
	case 130: // exporterIPv4Address
		return len(f.Exporter) == 4
	case 131: // exporterIPv6Address
		return len(f.Exporter) == 16
	case 149: // observationDomainId
		return f.Present&(1<<uint(pb.Field_OBSERVATION_DOMAIN)) != 0
	case 258: // collectionTimeMilliseconds
		return f.TimeReceivedNs != 0
	}
	return int(id) < len(ownKeys) && ownKeys[id]
}

// elements writes the record's other elements (Flow.elements), each under
// its registry name and as its type says; an element the registry does
// not know is written as hex under ie.Unknown's key. An element repeated
// in the record is written once, its first value.
func (o *object) elements(f *pb.Flow) {
	all := f.Elements
	for b := all; ; {
		pen, id, v, rest, ok := pb.NextElement(b)
		if !ok {
			return
		}
		if !(pen == 0 && writtenByFields(f, id)) && !seenBefore(all, len(all)-len(b), pen, id) {
			o.element(pen, id, v)
		}
		b = rest
	}
}

// seenBefore says whether the first end bytes of b hold element (pen, id).
func seenBefore(b []byte, end int, pen uint32, id uint16) bool {
	b = b[:end]
	for {
		p, i, _, rest, ok := pb.NextElement(b)
		if !ok {
			return false
		}
		if p == pen && i == id {
			return true
		}
		b = rest
	}
}

func (o *object) element(pen uint32, id uint16, v []byte) {
	e, ok := ie.Lookup(pen, id)
	if !ok {
		o.rawKey(ie.Unknown(pen, id))
		o.hex(v)
		return
	}
	o.key(elementNames[uint64(pen)<<16|uint64(id)])
	n := len(v)
	switch e.Type {
	case ie.Unsigned8, ie.Unsigned16, ie.Unsigned32, ie.Unsigned64, ie.DateTimeSeconds, ie.DateTimeMilliseconds:
		// Reduced-size encoding sends numbers in fewer bytes than their type.
		if n > 0 && n <= 8 {
			o.b = appendUint(o.b, beUint(v))
			return
		}
	case ie.Signed8, ie.Signed16, ie.Signed32, ie.Signed64:
		if n > 0 && n <= 8 {
			shift := uint(64 - 8*n)
			o.b = strconv.AppendInt(o.b, int64(beUint(v)<<shift)>>shift, 10)
			return
		}
	case ie.Float32, ie.Float64:
		var f float64
		switch n {
		case 4:
			f = float64(math.Float32frombits(uint32(beUint(v))))
		case 8:
			f = math.Float64frombits(beUint(v))
		}
		if (n == 4 || n == 8) && !math.IsNaN(f) && !math.IsInf(f, 0) {
			o.b = strconv.AppendFloat(o.b, f, 'g', -1, 64)
			return
		}
	case ie.Boolean:
		// RFC 7011 section 6.1.5: 1 is true, 2 is false.
		if n == 1 && (v[0] == 1 || v[0] == 2) {
			o.b = strconv.AppendBool(o.b, v[0] == 1)
			return
		}
	case ie.DateTimeMicroseconds, ie.DateTimeNanoseconds:
		// NTP timestamps (RFC 7011 section 6.1.9), written as Unix time in
		// the element's unit.
		if n == 8 {
			o.b = appendUint(o.b, ntpToUnix(beUint(v), e.Type == ie.DateTimeNanoseconds))
			return
		}
	case ie.MACAddress:
		if n == 6 {
			o.macValue(beUint(v))
			return
		}
	case ie.IPv4Address, ie.IPv6Address:
		if n == 4 || n == 16 {
			o.addrValue(v)
			return
		}
	case ie.String:
		// Fixed-length strings are padded with NULs (NSEL user names).
		for n > 0 && v[n-1] == 0 {
			n--
		}
		o.strValue(unsafe.String(unsafe.SliceData(v), n))
		return
	}
	// Octet arrays, lists (basicList, subTemplateList,
	// subTemplateMultiList: their raw content) and values of a length their
	// type cannot have.
	o.hex(v)
}

// ntpToUnix converts an NTP timestamp to Unix microseconds or nanoseconds;
// times before 1970 are 0.
func ntpToUnix(ntp uint64, nanoseconds bool) uint64 {
	const ntpEpochOffsetSeconds = 2208988800
	sec := ntp >> 32
	if sec < ntpEpochOffsetSeconds {
		return 0
	}
	unit := uint64(1e6)
	if nanoseconds {
		unit = 1e9
	}
	return (sec-ntpEpochOffsetSeconds)*unit + (ntp&0xffffffff)*unit>>32
}

func beUint(b []byte) uint64 {
	var v uint64
	for _, c := range b {
		v = v<<8 | uint64(c)
	}
	return v
}
