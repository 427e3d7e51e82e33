package flow

import (
	pb "github.com/flowgate/flowgate/proto"
)

// Elements read to derive what Sekoia's parser needs (octetDeltaCount,
// packetDeltaCount, flowStartSeconds, flowEndSeconds, the addresses and
// ports) from exporters that send them in another form: firewalls (Cisco
// ASA NSEL) count both directions of a connection, NAT devices may send
// only translated addresses, event loggers only the event time.
const (
	ieOctetTotalCount                  = 85
	iePacketTotalCount                 = 86
	ieFlowDurationMilliseconds         = 161
	ieFlowDurationMicroseconds         = 162
	iePostNATSourceIPv4Address         = 225
	iePostNATDestinationIPv4Address    = 226
	iePostNAPTSourceTransportPort      = 227
	iePostNAPTDestinationTransportPort = 228
	ieInitiatorOctets                  = 231
	ieResponderOctets                  = 232
	iePostNATSourceIPv6Address         = 281
	iePostNATDestinationIPv6Address    = 282
	ieInitiatorPackets                 = 298
	ieResponderPackets                 = 299
	ieObservationTimeSeconds           = 322
	ieObservationTimeMilliseconds      = 323
	ieObservationTimeMicroseconds      = 324
	ieObservationTimeNanoseconds       = 325
)

// derived gathers the elements a record's missing fields can be derived
// from. have is a bit per kind of value read, 0 for most records: what
// they cost then is one test. A value counts only when its bit is set.
type derived struct {
	have                   uint16
	octets, packets        uint64 // initiator + responder
	totalOctets, totalPkts uint64
	eventMs, durationMs    uint64
	srcPort, dstPort       uint32
	// srcAddr and dstAddr point into the datagram until finish copies them.
	srcAddr, dstAddr []byte
}

const (
	hasOctets = 1 << iota
	hasPackets
	hasTotalOctets
	hasTotalPackets
	hasEvent
	hasDuration
	hasSrcAddr
	hasDstAddr
	hasSrcPort
	hasDstPort
)

// read notes one element a field can be derived from; others are ignored.
func (d *derived) read(typ uint16, b []byte) {
	n := len(b)
	if n == 0 || n > 16 {
		return
	}
	num := n <= 8
	switch typ {
	case ieInitiatorOctets, ieResponderOctets:
		if num {
			if d.have&hasOctets == 0 {
				d.octets = 0
			}
			d.octets, d.have = d.octets+beUint(b), d.have|hasOctets
		}
	case ieInitiatorPackets, ieResponderPackets:
		if num {
			if d.have&hasPackets == 0 {
				d.packets = 0
			}
			d.packets, d.have = d.packets+beUint(b), d.have|hasPackets
		}
	case ieOctetTotalCount:
		if num {
			d.totalOctets, d.have = beUint(b), d.have|hasTotalOctets
		}
	case iePacketTotalCount:
		if num {
			d.totalPkts, d.have = beUint(b), d.have|hasTotalPackets
		}
	case ieObservationTimeSeconds:
		if n == 4 {
			d.eventMs, d.have = beUint(b)*1000, d.have|hasEvent
		}
	case ieObservationTimeMilliseconds:
		if n == 8 {
			d.eventMs, d.have = beUint(b), d.have|hasEvent
		}
	case ieObservationTimeMicroseconds, ieObservationTimeNanoseconds:
		if n == 8 {
			d.eventMs, d.have = ntpToUnixMs(beUint(b)), d.have|hasEvent
		}
	case ieFlowDurationMilliseconds:
		if num {
			d.durationMs, d.have = beUint(b), d.have|hasDuration
		}
	case ieFlowDurationMicroseconds:
		if num {
			d.durationMs, d.have = beUint(b)/microsecondsPerMillisecond, d.have|hasDuration
		}
	case iePostNATSourceIPv4Address:
		if n == 4 {
			d.srcAddr, d.have = b, d.have|hasSrcAddr
		}
	case iePostNATSourceIPv6Address:
		if n == 16 {
			d.srcAddr, d.have = b, d.have|hasSrcAddr
		}
	case iePostNATDestinationIPv4Address:
		if n == 4 {
			d.dstAddr, d.have = b, d.have|hasDstAddr
		}
	case iePostNATDestinationIPv6Address:
		if n == 16 {
			d.dstAddr, d.have = b, d.have|hasDstAddr
		}
	case iePostNAPTSourceTransportPort:
		if n == 2 {
			d.srcPort, d.have = uint32(beUint(b)), d.have|hasSrcPort
		}
	case iePostNAPTDestinationTransportPort:
		if n == 2 {
			d.dstPort, d.have = uint32(beUint(b)), d.have|hasDstPort
		}
	}
}

// apply fills the fields the exporter did not send from what d read; what
// the exporter sent always wins. p is the record's presence bits so far;
// apply returns them updated.
func (d *derived) apply(f *pb.Flow, p uint64, a *arena) uint64 {
	has := func(fl pb.Field) bool { return p&bit(fl) != 0 }
	switch {
	case has(pb.Field_BYTES):
	case d.have&hasOctets != 0:
		f.Bytes, p = d.octets, p|bit(pb.Field_BYTES)
	case d.have&hasTotalOctets != 0:
		f.Bytes, p = d.totalOctets, p|bit(pb.Field_BYTES)
	}
	switch {
	case has(pb.Field_PACKETS):
	case d.have&hasPackets != 0:
		f.Packets, p = d.packets, p|bit(pb.Field_PACKETS)
	case d.have&hasTotalPackets != 0:
		f.Packets, p = d.totalPkts, p|bit(pb.Field_PACKETS)
	}
	// A duration gives the missing end of a flow from its other end.
	if d.have&hasDuration != 0 {
		switch {
		case has(pb.Field_START) && !has(pb.Field_END):
			f.EndMs, p = f.StartMs+d.durationMs, p|bit(pb.Field_END)
		case has(pb.Field_END) && !has(pb.Field_START) && f.EndMs >= d.durationMs:
			f.StartMs, p = f.EndMs-d.durationMs, p|bit(pb.Field_START)
		}
	}
	// An event (NSEL flow creation, denial, teardown) happened at its
	// observation time: a flow with no time of its own starts or ends there.
	if d.have&hasEvent != 0 {
		if !has(pb.Field_START) {
			f.StartMs, p = d.eventMs, p|bit(pb.Field_START)
		}
		if !has(pb.Field_END) {
			f.EndMs, p = d.eventMs, p|bit(pb.Field_END)
		}
	}
	// Translated addresses and ports stand in for the originals only when
	// the exporter sent none.
	if d.have&hasSrcAddr != 0 && !has(pb.Field_SRC_ADDR) {
		f.SrcAddr, p = a.clone(d.srcAddr), p|bit(pb.Field_SRC_ADDR)
	}
	if d.have&hasDstAddr != 0 && !has(pb.Field_DST_ADDR) {
		f.DstAddr, p = a.clone(d.dstAddr), p|bit(pb.Field_DST_ADDR)
	}
	if d.have&hasSrcPort != 0 && !has(pb.Field_SRC_PORT) {
		f.SrcPort, p = d.srcPort, p|bit(pb.Field_SRC_PORT)
	}
	if d.have&hasDstPort != 0 && !has(pb.Field_DST_PORT) {
		f.DstPort, p = d.dstPort, p|bit(pb.Field_DST_PORT)
	}
	return p
}
