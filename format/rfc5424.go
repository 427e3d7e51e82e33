package format

import (
	"net/netip"
	"time"

	pb "github.com/flowgate/flowgate/proto"
)

// RFC 5424 header field bounds.
const (
	maxHostnameBytes = 255
	maxAppNameBytes  = 48
	maxProcIDBytes   = 128
)

// sekoiaSDID names the structured-data element that carries the intake key.
const sekoiaSDID = "SEKOIA@53288"

// flowPRI and flowAppName head a flow shipped as syslog: user.info, from
// flowgate.
const (
	flowPRI     = 14
	flowAppName = "flowgate"
)

// Header is the RFC 5424 header of one shipped event.
type Header struct {
	PRI      uint32
	Time     time.Time
	Hostname []byte
	AppName  []byte
	ProcID   []byte
	// SD is more structured data, as sent, after the SEKOIA element.
	SD []byte
}

// appendRFC5424 appends the header of an event for the intake's syslog and
// RELP endpoints and the space before its MSG:
//
//	<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID LOG [SEKOIA@53288 intake_key="KEY"]SD SP
//
// TIMESTAMP is UTC with microseconds; fields are cut to their RFC 5424
// lengths, bytes outside printable ASCII become '_', empty fields '-'.
func appendRFC5424(dst []byte, h *Header, key string) []byte {
	dst = append(dst, '<')
	dst = appendUint(dst, uint64(min(h.PRI, 191)))
	dst = append(dst, '>', '1', ' ')
	dst = h.Time.UTC().AppendFormat(dst, "2006-01-02T15:04:05.000000Z")
	dst = append(dst, ' ')
	dst = appendHeaderField(dst, h.Hostname, maxHostnameBytes)
	dst = append(dst, ' ')
	dst = appendHeaderField(dst, h.AppName, maxAppNameBytes)
	dst = append(dst, ' ')
	dst = appendHeaderField(dst, h.ProcID, maxProcIDBytes)
	dst = append(dst, " LOG ["+sekoiaSDID+` intake_key="`...)
	dst = appendSDValue(dst, key)
	dst = append(dst, '"', ']')
	dst = append(dst, h.SD...)
	return append(dst, ' ')
}

// appendHeaderField writes a header field: '-' when empty, cut to max
// bytes, anything but printable ASCII as '_'.
func appendHeaderField(dst, f []byte, max int) []byte {
	if len(f) == 0 {
		return append(dst, '-')
	}
	if len(f) > max {
		f = f[:max]
	}
	for _, c := range f {
		if c <= ' ' || c >= 127 {
			c = '_'
		}
		dst = append(dst, c)
	}
	return dst
}

// appendSDValue appends s as the inside of an SD-PARAM value: '"', '\' and
// ']' are escaped with a backslash, as RFC 5424 requires.
func appendSDValue(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c == '"' || c == '\\' || c == ']' {
			dst = append(dst, '\\')
		}
		dst = append(dst, s[i])
	}
	return dst
}

// Syslog encodes records as the RFC 5424 lines of the intake's syslog and
// RELP endpoints, each carrying the intake key in its SEKOIA element.
type Syslog struct {
	Key string
	// Events writes the MSG of flows and counters: their JSON event
	// (IANA or GoFlow2).
	Events interface {
		AppendFlow(dst []byte, f *pb.Flow) []byte
		AppendCounters(dst []byte, c *pb.InterfaceCounters) []byte
	}
}

// AppendLog writes a syslog message with the sender's PRI, HOSTNAME (its
// address when it sent none), APP-NAME, PROCID and structured data, the
// reception time (as the old forwarder did: device clocks and RFC 3164's
// missing year and zone cannot be trusted), and its MSG. An event without
// a syslog header that came with a timestamp (the local HTTP intake's,
// given by its client for that purpose) keeps that timestamp instead.
func (s Syslog) AppendLog(dst []byte, l *pb.Log) []byte {
	var host [64]byte
	when := int64(l.TimeReceivedNs)
	if l.Format == pb.LogFormat_UNPARSED && l.TimestampNs != 0 {
		when = l.TimestampNs
	}
	h := Header{PRI: l.Pri, Time: time.Unix(0, when), Hostname: l.Hostname, AppName: l.AppName, ProcID: l.Procid, SD: l.StructuredData}
	if len(h.Hostname) == 0 {
		h.Hostname = appendAddr(host[:0], l.Sender)
	}
	dst = appendRFC5424(dst, &h, s.Key)
	return append(dst, l.Msg...)
}

// AppendFlow writes a flow as user.info from APP-NAME flowgate, HOSTNAME
// the exporter, with the flow's JSON event as MSG.
func (s Syslog) AppendFlow(dst []byte, f *pb.Flow) []byte {
	dst = s.appendFlowHeader(dst, f.TimeReceivedNs, f.Exporter)
	return s.Events.AppendFlow(dst, f)
}

// AppendCounters writes interface counters as a flow is written.
func (s Syslog) AppendCounters(dst []byte, c *pb.InterfaceCounters) []byte {
	dst = s.appendFlowHeader(dst, c.TimeReceivedNs, c.Exporter)
	return s.Events.AppendCounters(dst, c)
}

func (s Syslog) appendFlowHeader(dst []byte, receivedNs uint64, exporter []byte) []byte {
	var host [64]byte
	h := Header{PRI: flowPRI, Time: time.Unix(0, int64(receivedNs)), Hostname: appendAddr(host[:0], exporter), AppName: []byte(flowAppName)}
	return appendRFC5424(dst, &h, s.Key)
}

// appendAddr writes an address held as 4 or 16 bytes, nothing otherwise.
func appendAddr(dst, a []byte) []byte {
	switch len(a) {
	case 4:
		return netip.AddrFrom4([4]byte(a)).AppendTo(dst)
	case 16:
		return netip.AddrFrom16([16]byte(a)).Unmap().AppendTo(dst)
	}
	return dst
}
