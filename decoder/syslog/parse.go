package syslog

import (
	"time"

	pb "github.com/flowgate/flowgate/proto"
)

// DefaultPRI is the PRI of a message that has none: user.notice, as
// rsyslog and RFC 3164 assume.
const DefaultPRI = 13

// Parse reads the header of one frame into l: format, PRI, timestamp,
// hostname, app-name, procid, msgid, structured data and message. The byte
// fields of l point into frame, which must stay unchanged while l is used.
// It never fails: an RFC 5424 header that does not hold is read as RFC
// 3164, and a frame with neither PRI nor timestamp is all message. received
// supplies the year and zone that RFC 3164 timestamps lack. Trailing line
// ends are framing, not message, and are dropped (as rsyslog does, for
// senders that end octet-counted frames with LF); so are the spaces that
// start a parsed MSG (as Sekoia's intake does).
func Parse(l *pb.Log, frame []byte, received time.Time) {
	frame = TrimLineEnd(frame)
	l.Format, l.Pri, l.TimestampNs = pb.LogFormat_UNPARSED, DefaultPRI, 0
	l.Hostname, l.AppName, l.Procid, l.Msgid, l.StructuredData, l.Msg = nil, nil, nil, nil, nil, frame
	pri, rest, ok := parsePRI(frame)
	if ok && parse5424(l, rest) {
		l.Format, l.Pri = pb.LogFormat_RFC5424, pri
		return
	}
	if !ok {
		rest = frame
	}
	if parse3164(l, rest, received) || ok {
		l.Format = pb.LogFormat_RFC3164
		if ok {
			l.Pri = pri
		}
		return
	}
	// Neither PRI nor timestamp: nothing says this is a header.
	l.TimestampNs, l.Hostname, l.AppName, l.Procid, l.Msg = 0, nil, nil, nil, frame
}

// parsePRI reads "<PRI>" with PRI from 0 to 191.
func parsePRI(b []byte) (uint32, []byte, bool) {
	if len(b) < 3 || b[0] != '<' {
		return 0, nil, false
	}
	n, i := uint32(0), 1
	for ; i < len(b) && i <= 4 && isDigit(b[i]); i++ {
		n = n*10 + uint32(b[i]-'0')
	}
	if i == 1 || i > 4 || i >= len(b) || b[i] != '>' || n > 191 {
		return 0, nil, false
	}
	return n, b[i+1:], true
}

// parse5424 reads what follows the PRI of an RFC 5424 message:
// VERSION SP TIMESTAMP SP HOSTNAME SP APP-NAME SP PROCID SP MSGID SP SD [SP MSG].
// Field lengths are not enforced here (the writer enforces them); field
// characters are.
func parse5424(l *pb.Log, b []byte) bool {
	// VERSION: 1 to 3 digits, not starting with 0.
	i := 0
	for i < len(b) && i < 3 && isDigit(b[i]) {
		i++
	}
	if i == 0 || b[0] == '0' || i >= len(b) || b[i] != ' ' {
		return false
	}
	b = b[i+1:]
	var ts []byte
	var fields [4][]byte
	var ok bool
	if ts, b, ok = field(b); !ok {
		return false
	}
	var tsNs int64
	if !isNil(ts) {
		t, n, good := parseRFC3339(ts)
		if !good || n != len(ts) {
			return false
		}
		tsNs = t.UnixNano()
	}
	for k := range fields {
		if fields[k], b, ok = field(b); !ok {
			return false
		}
	}
	sd, rest, ok := structuredData(b)
	if !ok {
		return false
	}
	switch {
	case len(rest) == 0:
	case rest[0] == ' ':
		rest = rest[1:]
	default:
		return false
	}
	l.TimestampNs = tsNs
	l.Hostname, l.AppName, l.Procid, l.Msgid = orNil(fields[0]), orNil(fields[1]), orNil(fields[2]), orNil(fields[3])
	l.StructuredData, l.Msg = sd, trimSpaces(rest)
	return true
}

// TrimLineEnd drops the LF, CRLF and NUL bytes that end b.
func TrimLineEnd(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r' || b[len(b)-1] == 0) {
		b = b[:len(b)-1]
	}
	return b
}

func trimSpaces(b []byte) []byte {
	for len(b) > 0 && b[0] == ' ' {
		b = b[1:]
	}
	return b
}

// field reads one header field of printable ASCII and the space after it.
func field(b []byte) (f, rest []byte, ok bool) {
	i := 0
	for i < len(b) && b[i] > ' ' && b[i] < 127 {
		i++
	}
	if i == 0 || i >= len(b) || b[i] != ' ' {
		return nil, nil, false
	}
	return b[:i], b[i+1:], true
}

func isNil(f []byte) bool { return len(f) == 1 && f[0] == '-' }

func orNil(f []byte) []byte {
	if isNil(f) {
		return nil
	}
	return f
}

// structuredData reads "-" or one or more [SD-ID *(SP PARAM="VALUE")]
// elements, returning them as sent (nil for "-").
func structuredData(b []byte) (sd, rest []byte, ok bool) {
	if len(b) > 0 && b[0] == '-' {
		return nil, b[1:], true
	}
	i := 0
	for i < len(b) && b[i] == '[' {
		j, good := sdElement(b, i+1)
		if !good {
			return nil, nil, false
		}
		i = j
	}
	if i == 0 {
		return nil, nil, false
	}
	return b[:i], b[i:], true
}

// sdElement reads one element from just after its "[" and returns the
// index after its "]". Names are printable ASCII without '=', ' ', ']',
// '"'; values are quoted, with \" \\ \] escapes.
func sdElement(b []byte, i int) (int, bool) {
	name := func() bool {
		start := i
		for i < len(b) && b[i] > ' ' && b[i] < 127 && b[i] != '=' && b[i] != ']' && b[i] != '"' {
			i++
		}
		return i > start
	}
	if !name() {
		return 0, false
	}
	for {
		if i >= len(b) {
			return 0, false
		}
		switch b[i] {
		case ']':
			return i + 1, true
		case ' ':
			i++
		default:
			return 0, false
		}
		if !name() || i+1 >= len(b) || b[i] != '=' || b[i+1] != '"' {
			return 0, false
		}
		for i += 2; ; i++ {
			if i >= len(b) {
				return 0, false
			}
			if b[i] == '\\' {
				i++
				continue
			}
			if b[i] == '"' {
				i++
				break
			}
		}
	}
}

// parse3164 reads the rest of a BSD syslog message after its PRI:
// [TIMESTAMP SP [HOSTNAME SP]] [TAG[PID]: ] MSG. Devices vary: the timestamp
// may be RFC 3164's "Mmm dd hh:mm:ss", with fractions or a year, or RFC
// 3339; the hostname is read only after a timestamp (as rsyslog does); the
// tag only when it ends with a colon, so a message without one loses no
// word. It reports whether a timestamp was found.
func parse3164(l *pb.Log, b []byte, received time.Time) bool {
	t, n, hasTime := parseBSDTime(b, received)
	if !hasTime {
		t, n, hasTime = parseRFC3339(b)
	}
	if hasTime && (n == len(b) || b[n] == ' ') {
		l.TimestampNs = t.UnixNano()
		b = b[min(n+1, len(b)):]
		if h, rest, ok := hostname(b); ok {
			l.Hostname, b = h, rest
		}
	} else {
		hasTime = false
	}
	if app, pid, rest, ok := tag(b); ok {
		l.AppName, l.Procid, b = app, pid, rest
	}
	l.Msg = trimSpaces(b)
	return hasTime
}

// hostname reads a word that can be a host name or address, followed by a
// space; a word ending in ':' is a tag, not a host.
func hostname(b []byte) (h, rest []byte, ok bool) {
	i := 0
	for i < len(b) && isHostChar(b[i]) {
		i++
	}
	if i == 0 || i >= len(b) || b[i] != ' ' || b[i-1] == ':' {
		return nil, nil, false
	}
	return b[:i], b[i+1:], true
}

func isHostChar(c byte) bool {
	return isDigit(c) || c|0x20 >= 'a' && c|0x20 <= 'z' || c == '.' || c == '-' || c == '_' || c == ':' || c == '%'
}

// tag reads "APP[PID]:" or "APP:" followed by a space or the end.
func tag(b []byte) (app, pid, rest []byte, ok bool) {
	i := 0
	for i < len(b) && i <= 48 && b[i] > ' ' && b[i] < 127 && b[i] != ':' && b[i] != '[' {
		i++
	}
	if i == 0 || i > 48 || i >= len(b) {
		return nil, nil, nil, false
	}
	app = b[:i]
	if b[i] == '[' {
		j := i + 1
		for j < len(b) && j-i <= 129 && b[j] > ' ' && b[j] < 127 && b[j] != ']' {
			j++
		}
		if j >= len(b) || b[j] != ']' || j == i+1 {
			return nil, nil, nil, false
		}
		pid = b[i+1 : j]
		i = j + 1
	}
	if i >= len(b) || b[i] != ':' || (i+1 < len(b) && b[i+1] != ' ') {
		return nil, nil, nil, false
	}
	return app, pid, b[min(i+2, len(b)):], true
}

var months = [12]string{"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"}

// parseBSDTime reads "Mmm dd hh:mm:ss", "Mmm  d hh:mm:ss" or
// "Mmm dd yyyy hh:mm:ss", with optional fractions; the year, when absent,
// is the one that puts the time nearest before received (allowing a
// sender's clock a month ahead), the zone received's. It returns the
// length read.
func parseBSDTime(b []byte, received time.Time) (time.Time, int, bool) {
	if len(b) < 15 || b[3] != ' ' {
		return time.Time{}, 0, false
	}
	month := 0
	for m, name := range months {
		if b[0] == name[0] && b[1] == name[1] && b[2] == name[2] {
			month = m + 1
			break
		}
	}
	if month == 0 {
		return time.Time{}, 0, false
	}
	i := 4
	if b[i] == ' ' {
		i++
	}
	day, i, ok := number(b, i, 1, 2)
	if !ok || day < 1 || day > 31 || i >= len(b) || b[i] != ' ' {
		return time.Time{}, 0, false
	}
	i++
	year := 0
	if i+4 < len(b) && b[i+4] == ' ' {
		if year, i, ok = number(b, i, 4, 4); !ok {
			return time.Time{}, 0, false
		}
		i++
	}
	hh, mm, ss, nsec, n, ok := clock(b, i)
	if !ok {
		return time.Time{}, 0, false
	}
	loc := received.Location()
	if year != 0 {
		return time.Date(year, time.Month(month), day, hh, mm, ss, nsec, loc), n, true
	}
	year = received.Year()
	t := time.Date(year, time.Month(month), day, hh, mm, ss, nsec, loc)
	if t.After(received.AddDate(0, 1, 0)) {
		t = time.Date(year-1, time.Month(month), day, hh, mm, ss, nsec, loc)
	}
	return t, n, true
}

// parseRFC3339 reads YYYY-MM-DDThh:mm:ss[.frac](Z|+hh:mm|-hh:mm) and
// returns the length read.
func parseRFC3339(b []byte) (time.Time, int, bool) {
	if len(b) < 20 || b[4] != '-' || b[7] != '-' || (b[10] != 'T' && b[10] != 't') {
		return time.Time{}, 0, false
	}
	year, _, ok1 := number(b, 0, 4, 4)
	month, _, ok2 := number(b, 5, 2, 2)
	day, _, ok3 := number(b, 8, 2, 2)
	if !ok1 || !ok2 || !ok3 || month < 1 || month > 12 || day < 1 || day > 31 {
		return time.Time{}, 0, false
	}
	hh, mm, ss, nsec, i, ok := clock(b, 11)
	if !ok || i >= len(b) {
		return time.Time{}, 0, false
	}
	var loc *time.Location
	switch b[i] {
	case 'Z', 'z':
		loc = time.UTC
		i++
	case '+', '-':
		oh, _, ok1 := number(b, i+1, 2, 2)
		om, _, ok2 := number(b, i+4, 2, 2)
		if !ok1 || !ok2 || i+3 >= len(b) || b[i+3] != ':' || oh > 23 || om > 59 {
			return time.Time{}, 0, false
		}
		off := (oh*60 + om) * 60
		if b[i] == '-' {
			off = -off
		}
		loc = time.FixedZone("", off)
		i += 6
	default:
		return time.Time{}, 0, false
	}
	return time.Date(year, time.Month(month), day, hh, mm, ss, nsec, loc), i, true
}

// clock reads hh:mm:ss[.frac] at i and returns the index after it.
func clock(b []byte, i int) (hh, mm, ss, nsec, end int, ok bool) {
	if i+8 > len(b) || b[i+2] != ':' || b[i+5] != ':' {
		return
	}
	var ok1, ok2, ok3 bool
	hh, _, ok1 = number(b, i, 2, 2)
	mm, _, ok2 = number(b, i+3, 2, 2)
	ss, _, ok3 = number(b, i+6, 2, 2)
	if !ok1 || !ok2 || !ok3 || hh > 23 || mm > 59 || ss > 60 {
		return
	}
	i += 8
	if i < len(b) && b[i] == '.' {
		j, scale := i+1, 100_000_000
		for j < len(b) && isDigit(b[j]) {
			if scale > 0 {
				nsec += int(b[j]-'0') * scale
				scale /= 10
			}
			j++
		}
		if j == i+1 {
			return 0, 0, 0, 0, 0, false
		}
		i = j
	}
	return hh, mm, ss, nsec, i, true
}

// number reads between minDigits and maxDigits decimal digits at i.
func number(b []byte, i, minDigits, maxDigits int) (int, int, bool) {
	n, start := 0, i
	for i < len(b) && i-start < maxDigits && isDigit(b[i]) {
		n = n*10 + int(b[i]-'0')
		i++
	}
	return n, i, i-start >= minDigits
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
