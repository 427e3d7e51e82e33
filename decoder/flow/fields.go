package flow

import (
	pb "github.com/flowgate/flowgate/proto"
)

// IANA IPFIX Information Elements read from v9 and IPFIX records. NetFlow
// v9 field types 1-127 are the same numbers.
const (
	ieOctetDeltaCount             = 1
	iePacketDeltaCount            = 2
	ieProtocolIdentifier          = 4
	ieIPClassOfService            = 5
	ieTCPControlBits              = 6
	ieSourceTransportPort         = 7
	ieSourceIPv4Address           = 8
	ieSourceIPv4PrefixLength      = 9
	ieIngressInterface            = 10
	ieDestinationTransportPort    = 11
	ieDestinationIPv4Address      = 12
	ieDestinationIPv4PrefixLength = 13
	ieEgressInterface             = 14
	ieIPNextHopIPv4Address        = 15
	ieBGPSourceAsNumber           = 16
	ieBGPDestinationAsNumber      = 17
	ieBGPNextHopIPv4Address       = 18
	ieFlowEndSysUpTime            = 21
	ieFlowStartSysUpTime          = 22
	ieSourceIPv6Address           = 27
	ieDestinationIPv6Address      = 28
	ieSourceIPv6PrefixLength      = 29
	ieDestinationIPv6PrefixLength = 30
	ieICMPTypeCodeIPv4            = 32
	ieSamplingInterval            = 34
	ieSamplerID                   = 48
	ieSamplerRandomInterval       = 50
	ieSourceMacAddress            = 56
	ieVlanID                      = 58
	iePostVlanID                  = 59
	ieFlowLabelIPv6               = 31
	ieFragmentIdentification      = 54
	ieFragmentOffset              = 88
	ieIPTTL                       = 192
	ieFragmentFlags               = 197
	ieDot1qVlanID                 = 243
	ieEthernetType                = 256
	ieIPVersion                   = 60
	ieFlowDirection               = 61
	ieIPNextHopIPv6Address        = 62
	ieBGPNextHopIPv6Address       = 63
	ieDestinationMacAddress       = 80
	ieFlowEndReason               = 136
	ieICMPTypeCodeIPv6            = 139
	ieFlowStartSeconds            = 150
	ieFlowEndSeconds              = 151
	ieFlowStartMilliseconds       = 152
	ieFlowEndMilliseconds         = 153
	ieFlowStartMicroseconds       = 154
	ieFlowEndMicroseconds         = 155
	ieFlowStartNanoseconds        = 156
	ieFlowEndNanoseconds          = 157
	ieFlowStartDeltaMicroseconds  = 158
	ieFlowEndDeltaMicroseconds    = 159
	ieSystemInitTimeMilliseconds  = 160
	ieSelectorID                  = 302
	ieSamplingPacketInterval      = 305
	ieSamplingPacketSpace         = 306
	ieSamplingSize                = 309
	ieSamplingPopulation          = 310
	ntpEpochOffsetSeconds         = 2208988800
	uptimeWrapMs                  = 1 << 32
	microsecondsPerMillisecond    = 1000
)

// sampling is what one record says about sampling: its own rate, or the
// sampler whose rate option data gave.
type sampling struct {
	interval       uint64 // samplingInterval (34): 1 packet in N
	randomInterval uint64 // samplerRandomInterval (50): 1 in N at random
	packetInterval uint64 // samplingPacketInterval (305): packets taken in a row
	packetSpace    uint64 // samplingPacketSpace (306): packets skipped after them
	size           uint64 // samplingSize (309): packets taken out of a population
	population     uint64 // samplingPopulation (310)
	samplerID      uint64 // samplerId (48) or selectorId (302)
	hasSampler     bool
}

// read takes a sampling element; it reports whether typ was one.
func (s *sampling) read(typ uint16, b []byte) bool {
	if len(b) == 0 || len(b) > 8 {
		return false
	}
	switch typ {
	case ieSamplingInterval:
		s.interval = beUint(b)
	case ieSamplerRandomInterval:
		s.randomInterval = beUint(b)
	case ieSamplingPacketInterval:
		s.packetInterval = beUint(b)
	case ieSamplingPacketSpace:
		s.packetSpace = beUint(b)
	case ieSamplingSize:
		s.size = beUint(b)
	case ieSamplingPopulation:
		s.population = beUint(b)
	case ieSamplerID, ieSelectorID:
		s.samplerID, s.hasSampler = beUint(b), true
	default:
		return false
	}
	return true
}

// rate is one packet in how many, 0 when the elements say nothing. A
// packet interval with a space takes interval packets of every
// interval+space; alone (as some exporters send it) it is the rate itself.
func (s *sampling) rate() uint64 {
	switch {
	case s.packetInterval > 0 && s.packetSpace > 0:
		return (s.packetInterval + s.packetSpace) / s.packetInterval
	case s.packetInterval > 0:
		return s.packetInterval
	case s.size > 0 && s.population > 0:
		return s.population / s.size
	case s.randomInterval > 0:
		return s.randomInterval
	}
	return s.interval
}

// record gathers what a record's fields say beyond the flow itself.
type record struct {
	// arena holds the copies of the datagram's addresses (arena.go).
	arena         *arena
	present       uint64
	startUp       bool
	endUp         bool
	sampling      sampling
	hasSampling   bool
	startDeltaUs  uint64
	endDeltaUs    uint64
	hasStartDelta bool
	hasEndDelta   bool
	// derive is the message's, cleared (derive.have = 0) by the record that
	// used it rather than zeroed whole with each record: most never use it.
	derive *derived
}

// setField sets f from one value of a v9 or IPFIX data record and reports
// whether the element is one of f's own fields; when it is not, the caller
// keeps it among the record's other elements. Values point into the
// datagram: addresses are copied. A value of a length the element cannot
// have is ignored: one odd field never spoils the record.
func setField(f *pb.Flow, r *record, typ uint16, b []byte) bool {
	n := len(b)
	num := n > 0 && n <= 8
	p := &r.present
	switch typ {
	case ieOctetDeltaCount:
		if num {
			f.Bytes, *p = beUint(b), *p|bit(pb.Field_BYTES)
		}
	case iePacketDeltaCount:
		if num {
			f.Packets, *p = beUint(b), *p|bit(pb.Field_PACKETS)
		}
	case ieProtocolIdentifier:
		if n == 1 {
			f.Proto, *p = uint32(b[0]), *p|bit(pb.Field_PROTO)
		}
	case ieIPClassOfService:
		if n == 1 {
			f.Tos, *p = uint32(b[0]), *p|bit(pb.Field_TOS)
		}
	case ieTCPControlBits:
		if n == 1 || n == 2 {
			f.TcpFlags, *p = uint32(beUint(b)), *p|bit(pb.Field_TCP_FLAGS)
		}
	case ieSourceTransportPort:
		if n == 2 {
			f.SrcPort, *p = uint32(beUint(b)), *p|bit(pb.Field_SRC_PORT)
		}
	case ieDestinationTransportPort:
		if n == 2 {
			f.DstPort, *p = uint32(beUint(b)), *p|bit(pb.Field_DST_PORT)
		}
	case ieSourceIPv4Address:
		if n == 4 {
			f.SrcAddr, *p = r.arena.clone(b), *p|bit(pb.Field_SRC_ADDR)
		}
	case ieSourceIPv6Address:
		if n == 16 {
			f.SrcAddr, *p = r.arena.clone(b), *p|bit(pb.Field_SRC_ADDR)
		}
	case ieDestinationIPv4Address:
		if n == 4 {
			f.DstAddr, *p = r.arena.clone(b), *p|bit(pb.Field_DST_ADDR)
		}
	case ieDestinationIPv6Address:
		if n == 16 {
			f.DstAddr, *p = r.arena.clone(b), *p|bit(pb.Field_DST_ADDR)
		}
	case ieSourceIPv4PrefixLength, ieSourceIPv6PrefixLength:
		if n == 1 {
			f.SrcMask, *p = uint32(b[0]), *p|bit(pb.Field_SRC_MASK)
		}
	case ieDestinationIPv4PrefixLength, ieDestinationIPv6PrefixLength:
		if n == 1 {
			f.DstMask, *p = uint32(b[0]), *p|bit(pb.Field_DST_MASK)
		}
	case ieIngressInterface:
		if num && n <= 4 {
			f.InIf, *p = uint32(beUint(b)), *p|bit(pb.Field_IN_IF)
		}
	case ieEgressInterface:
		if num && n <= 4 {
			f.OutIf, *p = uint32(beUint(b)), *p|bit(pb.Field_OUT_IF)
		}
	case ieIPNextHopIPv4Address:
		if n == 4 {
			f.NextHop, *p = r.arena.clone(b), *p|bit(pb.Field_NEXT_HOP)
		}
	case ieIPNextHopIPv6Address:
		if n == 16 {
			f.NextHop, *p = r.arena.clone(b), *p|bit(pb.Field_NEXT_HOP)
		}
	case ieBGPNextHopIPv4Address:
		if n == 4 {
			f.BgpNextHop, *p = r.arena.clone(b), *p|bit(pb.Field_BGP_NEXT_HOP)
		}
	case ieBGPNextHopIPv6Address:
		if n == 16 {
			f.BgpNextHop, *p = r.arena.clone(b), *p|bit(pb.Field_BGP_NEXT_HOP)
		}
	case ieBGPSourceAsNumber:
		if num && n <= 4 {
			f.SrcAs, *p = uint32(beUint(b)), *p|bit(pb.Field_SRC_AS)
		}
	case ieBGPDestinationAsNumber:
		if num && n <= 4 {
			f.DstAs, *p = uint32(beUint(b)), *p|bit(pb.Field_DST_AS)
		}
	case ieFlowStartSysUpTime:
		if n == 4 {
			f.StartUptimeMs, r.startUp = uint32(beUint(b)), true
		}
	case ieFlowEndSysUpTime:
		if n == 4 {
			f.EndUptimeMs, r.endUp = uint32(beUint(b)), true
		}
	case ieICMPTypeCodeIPv4, ieICMPTypeCodeIPv6:
		if n == 2 {
			f.IcmpTypeCode, *p = uint32(beUint(b)), *p|bit(pb.Field_ICMP_TYPE_CODE)
		}
	case ieSourceMacAddress:
		if n == 6 {
			f.SrcMac, *p = beUint(b), *p|bit(pb.Field_SRC_MAC)
		}
	case ieDestinationMacAddress:
		if n == 6 {
			f.DstMac, *p = beUint(b), *p|bit(pb.Field_DST_MAC)
		}
	case ieVlanID:
		if n == 2 {
			f.Vlan, *p = uint32(beUint(b)), *p|bit(pb.Field_VLAN)
		}
	case iePostVlanID:
		if n == 2 {
			f.PostVlan, *p = uint32(beUint(b)), *p|bit(pb.Field_POST_VLAN)
		}
	case ieFlowLabelIPv6:
		if num && n <= 4 {
			f.FlowLabel, *p = uint32(beUint(b)), *p|bit(pb.Field_FLOW_LABEL)
		}
	case ieFragmentIdentification:
		if num && n <= 4 {
			f.FragmentId, *p = uint32(beUint(b)), *p|bit(pb.Field_FRAGMENT_ID)
		}
	case ieFragmentOffset:
		if n == 2 {
			f.FragmentOffset, *p = uint32(beUint(b)), *p|bit(pb.Field_FRAGMENT_OFFSET)
		}
	case ieIPVersion:
		if n == 1 {
			f.IpVersion, *p = uint32(b[0]), *p|bit(pb.Field_IP_VERSION)
		}
	case ieFlowDirection:
		if n == 1 {
			f.Direction, *p = uint32(b[0]), *p|bit(pb.Field_DIRECTION)
		}
	case ieFlowEndReason:
		if n == 1 {
			f.FlowEndReason, *p = uint32(b[0]), *p|bit(pb.Field_FLOW_END_REASON)
		}
	// A time of 0 is one the exporter does not know (an ASA's creation
	// time on a denied flow): the event time can stand in for it.
	case ieFlowStartSeconds:
		if v := beUint(b); n == 4 && v != 0 {
			f.StartMs, *p = v*1000, *p|bit(pb.Field_START)
		}
	case ieFlowEndSeconds:
		if v := beUint(b); n == 4 && v != 0 {
			f.EndMs, *p = v*1000, *p|bit(pb.Field_END)
		}
	case ieFlowStartMilliseconds:
		if v := beUint(b); n == 8 && v != 0 {
			f.StartMs, *p = v, *p|bit(pb.Field_START)
		}
	case ieFlowEndMilliseconds:
		if v := beUint(b); n == 8 && v != 0 {
			f.EndMs, *p = v, *p|bit(pb.Field_END)
		}
	case ieFlowStartMicroseconds, ieFlowStartNanoseconds:
		if v := ntpToUnixMs(beUint(b)); n == 8 && v != 0 {
			f.StartMs, *p = v, *p|bit(pb.Field_START)
		}
	case ieFlowEndMicroseconds, ieFlowEndNanoseconds:
		if v := ntpToUnixMs(beUint(b)); n == 8 && v != 0 {
			f.EndMs, *p = v, *p|bit(pb.Field_END)
		}
	case ieFlowStartDeltaMicroseconds:
		if n == 4 {
			r.startDeltaUs, r.hasStartDelta = beUint(b), true
		}
	case ieFlowEndDeltaMicroseconds:
		if n == 4 {
			r.endDeltaUs, r.hasEndDelta = beUint(b), true
		}
	default:
		// Ids past the dense range above, apart: the switch above stays a
		// jump table.
		return setOther(f, r, typ, b)
	}
	return true
}

// setOther is setField for the elements with ids past flowEnd*: sampled
// packet fields, sampling, and what fields can be derived from.
func setOther(f *pb.Flow, r *record, typ uint16, b []byte) bool {
	n := len(b)
	p := &r.present
	switch typ {
	case ieIPTTL:
		if n == 1 {
			f.IpTtl, *p = uint32(b[0]), *p|bit(pb.Field_IP_TTL)
		}
	case ieFragmentFlags:
		if n == 1 {
			f.FragmentFlags, *p = uint32(b[0]), *p|bit(pb.Field_FRAGMENT_FLAGS)
		}
	case ieDot1qVlanID:
		if n == 2 {
			f.Dot1QVlan, *p = uint32(beUint(b)), *p|bit(pb.Field_DOT1Q_VLAN)
		}
	case ieEthernetType:
		if n == 2 {
			f.Etype, *p = uint32(beUint(b)), *p|bit(pb.Field_ETYPE)
		}
	case ieSamplingPacketInterval:
		// The event's samplingPacketInterval is the rate worked out from
		// every sampling element.
		if r.sampling.read(typ, b) {
			r.hasSampling = true
		}
	default:
		if r.sampling.read(typ, b) {
			r.hasSampling = true
		} else {
			r.derive.read(typ, b)
		}
		return false
	}
	return true
}

// finish completes f once every value of its record is read: absolute
// times from uptimes and deltas, the IP version from the addresses, and
// the sampling rate from the record, its sampler, or the domain.
func finish(f *pb.Flow, r *record, h *header, st *session) {
	p := r.present
	// Deltas count back from the export time.
	if ago := r.startDeltaUs / microsecondsPerMillisecond; r.hasStartDelta && ago <= h.exportMs && p&bit(pb.Field_START) == 0 {
		f.StartMs, p = h.exportMs-ago, p|bit(pb.Field_START)
	}
	if ago := r.endDeltaUs / microsecondsPerMillisecond; r.hasEndDelta && ago <= h.exportMs && p&bit(pb.Field_END) == 0 {
		f.EndMs, p = h.exportMs-ago, p|bit(pb.Field_END)
	}
	// Uptime-relative times: v9 counts from the header's uptime, IPFIX from
	// systemInitTimeMilliseconds sent in option data.
	if r.startUp {
		p |= bit(pb.Field_START_UPTIME)
		if ms, ok := h.uptimeToUnix(f.StartUptimeMs, st); ok && p&bit(pb.Field_START) == 0 {
			f.StartMs, p = ms, p|bit(pb.Field_START)
		}
	}
	if r.endUp {
		p |= bit(pb.Field_END_UPTIME)
		if ms, ok := h.uptimeToUnix(f.EndUptimeMs, st); ok && p&bit(pb.Field_END) == 0 {
			f.EndMs, p = ms, p|bit(pb.Field_END)
		}
	}
	if r.derive.have != 0 {
		p = r.derive.apply(f, p, r.arena)
		r.derive.have = 0
	}
	if p&bit(pb.Field_IP_VERSION) == 0 {
		switch {
		case len(f.SrcAddr) == 4 || len(f.DstAddr) == 4:
			f.IpVersion, p = 4, p|bit(pb.Field_IP_VERSION)
		case len(f.SrcAddr) == 16 || len(f.DstAddr) == 16:
			f.IpVersion, p = 6, p|bit(pb.Field_IP_VERSION)
		}
	}
	var rate uint64
	if r.hasSampling {
		rate = r.sampling.rate()
		if rate == 0 && r.sampling.hasSampler && st != nil {
			rate = st.samplers[r.sampling.samplerID]
		}
	}
	if rate == 0 && st != nil {
		rate = st.rate
	}
	if rate != 0 {
		f.SamplingRate, p = rate, p|bit(pb.Field_SAMPLING)
	}
	f.Present = p
}

// uptimeToUnix turns an uptime-relative time into Unix milliseconds; ok is
// false for IPFIX until the exporter has sent its system init time.
func (h *header) uptimeToUnix(t uint32, st *session) (uint64, bool) {
	if h.version == 9 {
		return uptimeToUnix(h.exportMs, h.uptimeMs, t), true
	}
	if st == nil || st.sysInitMs == 0 {
		return 0, false
	}
	// The uptime counter wraps every 49.7 days: take the wrap that puts the
	// flow nearest to the export time.
	ms := st.sysInitMs + uint64(t)
	export := h.exportMs
	if ms > export {
		ms -= (ms - export + uptimeWrapMs/2) / uptimeWrapMs * uptimeWrapMs
	} else {
		ms += (export - ms + uptimeWrapMs/2) / uptimeWrapMs * uptimeWrapMs
	}
	return ms, true
}

// ntpToUnixMs converts an NTP timestamp (seconds since 1900 in the high 32
// bits, a binary fraction in the low 32) to Unix milliseconds.
func ntpToUnixMs(ntp uint64) uint64 {
	sec := ntp >> 32
	if sec < ntpEpochOffsetSeconds {
		return 0
	}
	frac := (ntp & 0xffffffff) * 1000 >> 32
	return (sec-ntpEpochOffsetSeconds)*1000 + frac
}
