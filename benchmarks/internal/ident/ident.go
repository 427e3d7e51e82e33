// Package ident gives every event the benchmarks send a countable identity,
// a run (one measurement) and a sequence number within it, carried in fields
// that every collector writes out, and counts the identities that come back:
// unique, duplicated, or not ours.
//
// A flow carries its sequence number in its source IPv4 address (10.0.0.0
// plus the number) and its run in its destination address (198.18.0.0/16,
// the range set aside for benchmarks, plus the run). A syslog message
// carries a token "fgb=RUN.SEQ.SENTMS" in its text.
package ident

import (
	"bytes"
	"strconv"
)

const (
	srcBase     = 10 << 24         // 10.0.0.0
	dstBase     = 198<<24 | 18<<16 // 198.18.0.0
	dstMask     = 0xffff_0000      // the run is the low 16 bits
	maxSeq      = 1<<28 - 1        // bounds a run's bitmap to 32 MiB
	tokenPrefix = "fgb="
)

// MaxSeq is the highest sequence number a run can use (a run of 30 s at
// 8 million flows per second).
const MaxSeq = maxSeq

// SrcAddr is the source address that carries seq.
func SrcAddr(seq uint32) [4]byte { return be32(srcBase + seq) }

// DstAddr is the destination address that carries run.
func DstAddr(run uint16) [4]byte { return be32(dstBase | uint32(run)) }

// FromAddrs reads the identity of a flow from its dotted source and
// destination addresses; ok is false for a flow that is not ours.
func FromAddrs(src, dst []byte) (run uint16, seq uint32, ok bool) {
	s, ok1 := parseIPv4(src)
	d, ok2 := parseIPv4(dst)
	if !ok1 || !ok2 || d&dstMask != dstBase || s-srcBase > maxSeq {
		return 0, 0, false
	}
	return uint16(d), s - srcBase, true
}

// Keys name the source and destination address in a collector's JSON.
type Keys struct{ Src, Dst string }

// The keys of the collectors the benchmarks read.
var (
	FlowgateKeys = Keys{"sourceIPv4Address", "destinationIPv4Address"}
	GoflowKeys   = Keys{"src_addr", "dst_addr"}
	PmacctKeys   = Keys{"ip_src", "ip_dst"}
)

// FromJSON reads the identity of a flow from a flat JSON object.
func (k Keys) FromJSON(obj []byte) (run uint16, seq uint32, ok bool) {
	return FromAddrs(Field(obj, k.Src), Field(obj, k.Dst))
}

// FromEscapedJSON is FromJSON for an object inside a JSON string (see
// EscapedField).
func (k Keys) FromEscapedJSON(s []byte) (run uint16, seq uint32, ok bool) {
	return FromAddrs(EscapedField(s, k.Src), EscapedField(s, k.Dst))
}

// AppendToken appends the token a syslog message carries.
func AppendToken(dst []byte, run uint16, seq uint32, sentMs int64) []byte {
	dst = append(dst, tokenPrefix...)
	dst = strconv.AppendUint(dst, uint64(run), 10)
	dst = append(dst, '.')
	dst = strconv.AppendUint(dst, uint64(seq), 10)
	dst = append(dst, '.')
	return strconv.AppendInt(dst, sentMs, 10)
}

// FromToken finds the token in a message; ok is false when there is none.
func FromToken(msg []byte) (run uint16, seq uint32, sentMs int64, ok bool) {
	i := bytes.Index(msg, []byte(tokenPrefix))
	if i < 0 {
		return 0, 0, 0, false
	}
	rest := msg[i+len(tokenPrefix):]
	r, rest, ok1 := number(rest, '.')
	s, rest, ok2 := number(rest, '.')
	t, _, ok3 := number(rest, 0)
	if !ok1 || !ok2 || !ok3 || r > 0xffff || s > maxSeq {
		return 0, 0, 0, false
	}
	return uint16(r), uint32(s), int64(t), true
}

// number reads decimal digits up to sep (0: up to the first non-digit).
func number(b []byte, sep byte) (uint64, []byte, bool) {
	var v uint64
	n := 0
	for n < len(b) && b[n] >= '0' && b[n] <= '9' && n < 19 {
		v = v*10 + uint64(b[n]-'0')
		n++
	}
	if n == 0 {
		return 0, b, false
	}
	if sep != 0 {
		if n >= len(b) || b[n] != sep {
			return 0, b, false
		}
		n++
	}
	return v, b[n:], true
}

// parseIPv4 reads a dotted IPv4 address.
func parseIPv4(b []byte) (uint32, bool) {
	var addr uint32
	for part := range 4 {
		v, n := 0, 0
		for n < len(b) && b[n] >= '0' && b[n] <= '9' && n < 3 {
			v = v*10 + int(b[n]-'0')
			n++
		}
		if n == 0 || v > 255 {
			return 0, false
		}
		addr = addr<<8 | uint32(v)
		b = b[n:]
		if part < 3 {
			if len(b) == 0 || b[0] != '.' {
				return 0, false
			}
			b = b[1:]
		}
	}
	return addr, len(b) == 0
}

func be32(v uint32) [4]byte { return [4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)} }

// Counter counts the sequence numbers of one run that came back.
type Counter struct {
	seen []uint64
	// Events is every identity counted, Unique the distinct ones,
	// Duplicates those seen more than once (Events = Unique + Duplicates).
	Events, Unique, Duplicates uint64
}

// Add counts seq (at most MaxSeq).
func (c *Counter) Add(seq uint32) {
	w := int(seq / 64)
	if w >= len(c.seen) {
		c.seen = append(c.seen, make([]uint64, max(w+1-len(c.seen), len(c.seen)/2))...)
	}
	c.Events++
	if bit := uint64(1) << (seq % 64); c.seen[w]&bit != 0 {
		c.Duplicates++
	} else {
		c.seen[w] |= bit
		c.Unique++
	}
}

// Field returns the value of key in a flat JSON object: a string's
// contents (escapes left as they are), or a number's text; nil when the key
// is absent. It reads collectors' output lines without parsing all of them.
func Field(obj []byte, key string) []byte { return field(obj, key, `"`) }

// EscapedField is Field for an object written as the contents of a JSON
// string, its quotes escaped (\"), as the intake's /jsons body carries each
// event: it reads the value where it lies, without unescaping the event.
func EscapedField(s []byte, key string) []byte { return field(s, key, `\"`) }

// field is Field with the object's quote q.
func field(obj []byte, key, q string) []byte {
	for off := 0; ; {
		i := bytes.Index(obj[off:], []byte(key))
		if i < 0 {
			return nil
		}
		i += off
		off = i + len(key)
		if !bytes.HasSuffix(obj[:i], []byte(q)) || !bytes.HasPrefix(obj[off:], []byte(q)) {
			continue
		}
		rest := skipSpace(obj[off+len(q):])
		if len(rest) == 0 || rest[0] != ':' {
			continue
		}
		rest = skipSpace(rest[1:])
		if bytes.HasPrefix(rest, []byte(q)) {
			rest = rest[len(q):]
			end := bytes.Index(rest, []byte(q))
			if end < 0 {
				return nil
			}
			return rest[:end]
		}
		end := 0
		for end < len(rest) && rest[end] != ',' && rest[end] != '}' && rest[end] != ' ' {
			end++
		}
		return rest[:end]
	}
}

func skipSpace(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t' || b[0] == '\n' || b[0] == '\r') {
		b = b[1:]
	}
	return b
}
