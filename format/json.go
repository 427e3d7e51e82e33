// Package format turns records into the bytes an intake receives: flow
// events as flat JSON objects named after IANA IPFIX elements (or as
// goflow2 writes them), interface counter events, RFC 5424 lines carrying
// the intake key for the syslog and RELP endpoints, and JSON string quoting
// for events carried inside other JSON. Encoders append to a
// caller's buffer and use no reflection: they run once per record.
package format

import (
	"net/netip"
	"unicode/utf8"
	"unsafe"
)

const hexDigits = "0123456789abcdef"

// AppendBytes appends b as a quoted JSON string, as AppendString does.
func AppendBytes(dst, b []byte) []byte {
	// The string is only read, never kept: no copy needed.
	return AppendString(dst, unsafe.String(unsafe.SliceData(b), len(b)))
}

// plain marks the bytes that go into a JSON string as they are: printable
// ASCII but for '"' and '\\'.
var plain = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// AppendString appends s as a quoted JSON string. Invalid UTF-8 becomes
// U+FFFD, so the output is always valid JSON whatever the network sent.
func AppendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	dst = appendEscaped(dst, s)
	return append(dst, '"')
}

// appendEscaped appends the inside of s as a JSON string, without quotes.
func appendEscaped(dst []byte, s string) []byte {
	start := 0
	for i := 0; i < len(s); {
		// Runs of plain bytes are copied in one append.
		for i < len(s) && plain[s[i]] {
			i++
		}
		if i == len(s) {
			break
		}
		dst = append(dst, s[start:i]...)
		c := s[i]
		if c < utf8.RuneSelf {
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			dst = append(dst, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			// Valid JSON, but they end lines in JavaScript.
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
		default:
			dst = append(dst, s[i:i+size]...)
		}
		i += size
		start = i
	}
	return append(dst, s[start:]...)
}

// isPlain says whether s goes into a JSON string as it is.
func isPlain(s string) bool {
	for i := 0; i < len(s); i++ {
		if !plain[s[i]] {
			return false
		}
	}
	return true
}

// object writes the members of one JSON object; the first member is
// written without a comma. In string mode (q is `\"`) it writes the object
// already quoted as a JSON string, as /jsons carries events, in one pass
// instead of writing it and escaping it again.
type object struct {
	b     []byte
	first bool
	// q is how a quote is written: `"`, or `\"` in string mode.
	q string
}

// newObject starts an object at the end of dst; asString writes it as a
// JSON string holding the object.
func newObject(dst []byte, asString bool) object {
	if asString {
		return object{b: append(dst, '"', '{'), first: true, q: `\"`}
	}
	return object{b: append(dst, '{'), first: true, q: `"`}
}

// end closes the object and returns the buffer.
func (o *object) end() []byte {
	o.b = append(o.b, '}')
	if len(o.q) > 1 {
		o.b = append(o.b, '"')
	}
	return o.b
}

// name is a key of an event, written out beforehand in both modes with
// the comma that separates it from the member before: a member's key costs
// one append, not five.
type name struct {
	plain, quoted string // `,"k":` and `,\"k\":`
}

func newName(k string) name {
	return name{plain: `,"` + k + `":`, quoted: `,\"` + k + `\":`}
}

func (o *object) key(k name) {
	s := k.plain
	if len(o.q) > 1 {
		s = k.quoted
	}
	if o.first {
		o.first = false
		s = s[1:]
	}
	o.b = append(o.b, s...)
}

func (o *object) uint(k name, v uint64) {
	o.key(k)
	o.b = appendUint(o.b, v)
}

// rawKey writes a key made up when the event is written, a name that
// needs no escaping.
func (o *object) rawKey(k string) {
	if o.first {
		o.first = false
	} else {
		o.b = append(o.b, ',')
	}
	o.b = append(o.b, o.q...)
	o.b = append(o.b, k...)
	o.b = append(o.b, o.q...)
	o.b = append(o.b, ':')
}

func (o *object) str(k name, v string) {
	o.key(k)
	o.strValue(v)
}

func (o *object) strValue(v string) {
	if len(o.q) == 1 {
		o.b = AppendString(o.b, v)
		return
	}
	o.b = append(o.b, o.q...)
	if isPlain(v) {
		o.b = append(o.b, v...)
	} else {
		// Escaped once for the object, once more for the string holding it.
		var scratch [256]byte
		inner := appendEscaped(scratch[:0], v)
		o.b = appendEscaped(o.b, unsafe.String(unsafe.SliceData(inner), len(inner)))
	}
	o.b = append(o.b, o.q...)
}

// addr writes an address held as 4 or 16 bytes; other lengths are skipped.
func (o *object) addr(k4, k6 name, a []byte) {
	switch len(a) {
	case 4:
		o.key(k4)
	case 16:
		o.key(k6)
	default:
		return
	}
	o.addrValue(a)
}

// addrValue writes an address of 4 or 16 bytes.
func (o *object) addrValue(a []byte) {
	var ip netip.Addr
	if len(a) == 4 {
		ip = netip.AddrFrom4([4]byte(a))
	} else {
		ip = netip.AddrFrom16([16]byte(a))
	}
	o.b = append(o.b, o.q...)
	o.b = ip.AppendTo(o.b)
	o.b = append(o.b, o.q...)
}

// hex writes bytes as a string of hex digits.
func (o *object) hex(v []byte) {
	o.b = append(o.b, o.q...)
	for _, c := range v {
		o.b = append(o.b, hexDigits[c>>4], hexDigits[c&0xf])
	}
	o.b = append(o.b, o.q...)
}

func (o *object) mac(k name, v uint64) {
	o.key(k)
	o.macValue(v)
}

func (o *object) macValue(v uint64) {
	o.b = append(o.b, o.q...)
	for i := 5; i >= 0; i-- {
		c := byte(v >> (8 * i))
		o.b = append(o.b, hexDigits[c>>4], hexDigits[c&0xf])
		if i > 0 {
			o.b = append(o.b, ':')
		}
	}
	o.b = append(o.b, o.q...)
}
