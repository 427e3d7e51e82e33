package format

import (
	pb "github.com/flowgate/flowgate/proto"
)

// IANA is the default event format (format: ipfix): flows named after IANA
// IPFIX elements, interface counters after the IF-MIB. These are the events
// of the HTTPS /jsons endpoint, where a log is its MSG: what the intake's
// parsers read as the event's message when it arrives over syslog (the
// header's fields cannot travel in /jsons).
type IANA struct {
	// AsString writes each event as a JSON string holding it, as /jsons
	// carries events, in one pass.
	AsString bool
}

// AppendFlow writes a flow event.
func (e IANA) AppendFlow(dst []byte, f *pb.Flow) []byte { return appendFlow(dst, f, e.AsString) }

// AppendCounters writes an interface counters event.
func (e IANA) AppendCounters(dst []byte, c *pb.InterfaceCounters) []byte {
	return appendCounters(dst, c, e.AsString)
}

// AppendLog writes the message's MSG: the whole frame when no header was
// recognised.
func (e IANA) AppendLog(dst []byte, l *pb.Log) []byte {
	if e.AsString {
		return AppendBytes(dst, l.Msg)
	}
	return append(dst, l.Msg...)
}

// GoFlow2 is the format for users coming from goflow2 (format: goflow2):
// flows as goflow2 writes them; goflow2 has no counters or logs, which keep
// their one shape.
type GoFlow2 struct{ IANA }

// AppendFlow writes a flow as goflow2 does.
func (e GoFlow2) AppendFlow(dst []byte, f *pb.Flow) []byte { return appendGoFlow2(dst, f, e.AsString) }
