package format

import (
	pb "github.com/flowgate/flowgate/proto"
)

// IANA is the default event format (format: ipfix): flows named after IANA
// IPFIX elements, interface counters after the IF-MIB.
type IANA struct{}

// AppendFlow calls AppendFlow.
func (IANA) AppendFlow(dst []byte, f *pb.Flow) []byte { return AppendFlow(dst, f) }

// AppendCounters calls AppendCounters.
func (IANA) AppendCounters(dst []byte, c *pb.InterfaceCounters) []byte {
	return AppendCounters(dst, c)
}

// GoFlow2 is the format for users coming from goflow2 (format: goflow2):
// flows as goflow2 writes them; goflow2 has no counters, which keep their
// one shape.
type GoFlow2 struct{}

// AppendFlow calls AppendGoFlow2.
func (GoFlow2) AppendFlow(dst []byte, f *pb.Flow) []byte { return AppendGoFlow2(dst, f) }

// AppendCounters calls AppendCounters.
func (GoFlow2) AppendCounters(dst []byte, c *pb.InterfaceCounters) []byte {
	return AppendCounters(dst, c)
}
