package format

import (
	pb "github.com/flowgate/flowgate/proto"
)

// IANA is the default event format (format: ipfix): flows named after IANA
// IPFIX elements, interface counters after the IF-MIB. These are the events
// of the HTTPS /jsons endpoint, where a log is its MSG: what the intake's
// parsers read as the event's message when it arrives over syslog (the
// header's fields cannot travel in /jsons).
type IANA struct{}

// AppendLog writes the message's MSG: the whole frame when no header was
// recognised.
func (IANA) AppendLog(dst []byte, l *pb.Log) []byte { return append(dst, l.Msg...) }

// AppendFlow calls AppendFlow.
func (IANA) AppendFlow(dst []byte, f *pb.Flow) []byte { return AppendFlow(dst, f) }

// AppendCounters calls AppendCounters.
func (IANA) AppendCounters(dst []byte, c *pb.InterfaceCounters) []byte {
	return AppendCounters(dst, c)
}

// GoFlow2 is the format for users coming from goflow2 (format: goflow2):
// flows as goflow2 writes them; goflow2 has no counters or logs, which keep
// their one shape.
type GoFlow2 struct{ IANA }

// AppendFlow calls AppendGoFlow2.
func (GoFlow2) AppendFlow(dst []byte, f *pb.Flow) []byte { return AppendGoFlow2(dst, f) }
