package flow

import (
	"bytes"
	"net/netip"
	"time"

	"github.com/netsampler/goflow2/v2/decoders/netflow"

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
	ieSourceMacAddress            = 56
	ieVlanID                      = 58
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
	ieSamplingPacketInterval      = 305
	ntpEpochOffsetSeconds         = 2208988800
	uptimeWrapMs                  = 1 << 32
	microsecondsPerMillisecond    = 1000
)

// fillTemplated sets f from the values of one v9 or IPFIX data record.
// Values point into the decoder's buffer: addresses are copied.
// Values of a length the element cannot have are ignored, as are
// enterprise-specific elements: one odd field never spoils the record.
func fillTemplated(f *pb.Flow, values []netflow.DataField, h *header, st *session, exporter netip.Addr, received time.Time) {
	if h.version == 9 {
		f.Type = pb.FlowType_NETFLOW_V9
	} else {
		f.Type = pb.FlowType_IPFIX
	}
	f.TimeReceivedNs = uint64(received.UnixNano())
	f.Exporter = exporter.AsSlice()
	f.ObservationDomainId = h.domain
	p := bit(pb.Field_OBSERVATION_DOMAIN)
	var startUp, endUp bool
	for i := range values {
		v := &values[i]
		b, _ := v.Value.([]byte)
		if v.PenProvided || len(b) == 0 {
			continue
		}
		num := len(b) <= 8
		switch {
		case v.Type == ieOctetDeltaCount && num:
			f.Bytes, p = beUint(b), p|bit(pb.Field_BYTES)
		case v.Type == iePacketDeltaCount && num:
			f.Packets, p = beUint(b), p|bit(pb.Field_PACKETS)
		case v.Type == ieProtocolIdentifier && len(b) == 1:
			f.Proto, p = uint32(b[0]), p|bit(pb.Field_PROTO)
		case v.Type == ieIPClassOfService && len(b) == 1:
			f.Tos, p = uint32(b[0]), p|bit(pb.Field_TOS)
		case v.Type == ieTCPControlBits && len(b) <= 2:
			f.TcpFlags, p = uint32(beUint(b)), p|bit(pb.Field_TCP_FLAGS)
		case v.Type == ieSourceTransportPort && len(b) == 2:
			f.SrcPort, p = uint32(beUint(b)), p|bit(pb.Field_SRC_PORT)
		case v.Type == ieDestinationTransportPort && len(b) == 2:
			f.DstPort, p = uint32(beUint(b)), p|bit(pb.Field_DST_PORT)
		case (v.Type == ieSourceIPv4Address && len(b) == 4) || (v.Type == ieSourceIPv6Address && len(b) == 16):
			f.SrcAddr, p = bytes.Clone(b), p|bit(pb.Field_SRC_ADDR)
		case (v.Type == ieDestinationIPv4Address && len(b) == 4) || (v.Type == ieDestinationIPv6Address && len(b) == 16):
			f.DstAddr, p = bytes.Clone(b), p|bit(pb.Field_DST_ADDR)
		case (v.Type == ieSourceIPv4PrefixLength || v.Type == ieSourceIPv6PrefixLength) && len(b) == 1:
			f.SrcMask, p = uint32(b[0]), p|bit(pb.Field_SRC_MASK)
		case (v.Type == ieDestinationIPv4PrefixLength || v.Type == ieDestinationIPv6PrefixLength) && len(b) == 1:
			f.DstMask, p = uint32(b[0]), p|bit(pb.Field_DST_MASK)
		case v.Type == ieIngressInterface && len(b) <= 4:
			f.InIf, p = uint32(beUint(b)), p|bit(pb.Field_IN_IF)
		case v.Type == ieEgressInterface && len(b) <= 4:
			f.OutIf, p = uint32(beUint(b)), p|bit(pb.Field_OUT_IF)
		case (v.Type == ieIPNextHopIPv4Address && len(b) == 4) || (v.Type == ieIPNextHopIPv6Address && len(b) == 16):
			f.NextHop, p = bytes.Clone(b), p|bit(pb.Field_NEXT_HOP)
		case (v.Type == ieBGPNextHopIPv4Address && len(b) == 4) || (v.Type == ieBGPNextHopIPv6Address && len(b) == 16):
			f.BgpNextHop, p = bytes.Clone(b), p|bit(pb.Field_BGP_NEXT_HOP)
		case v.Type == ieBGPSourceAsNumber && len(b) <= 4:
			f.SrcAs, p = uint32(beUint(b)), p|bit(pb.Field_SRC_AS)
		case v.Type == ieBGPDestinationAsNumber && len(b) <= 4:
			f.DstAs, p = uint32(beUint(b)), p|bit(pb.Field_DST_AS)
		case v.Type == ieFlowStartSysUpTime && len(b) == 4:
			f.StartUptimeMs, startUp = uint32(beUint(b)), true
		case v.Type == ieFlowEndSysUpTime && len(b) == 4:
			f.EndUptimeMs, endUp = uint32(beUint(b)), true
		case (v.Type == ieICMPTypeCodeIPv4 || v.Type == ieICMPTypeCodeIPv6) && len(b) == 2:
			f.IcmpTypeCode, p = uint32(beUint(b)), p|bit(pb.Field_ICMP_TYPE_CODE)
		case (v.Type == ieSamplingInterval || v.Type == ieSamplingPacketInterval) && num:
			f.SamplingRate, p = beUint(b), p|bit(pb.Field_SAMPLING)
		case v.Type == ieSourceMacAddress && len(b) == 6:
			f.SrcMac, p = beUint(b), p|bit(pb.Field_SRC_MAC)
		case v.Type == ieDestinationMacAddress && len(b) == 6:
			f.DstMac, p = beUint(b), p|bit(pb.Field_DST_MAC)
		case v.Type == ieVlanID && len(b) == 2:
			f.Vlan, p = uint32(beUint(b)), p|bit(pb.Field_VLAN)
		case v.Type == ieIPVersion && len(b) == 1:
			f.IpVersion, p = uint32(b[0]), p|bit(pb.Field_IP_VERSION)
		case v.Type == ieFlowDirection && len(b) == 1:
			f.Direction, p = uint32(b[0]), p|bit(pb.Field_DIRECTION)
		case v.Type == ieFlowEndReason && len(b) == 1:
			f.FlowEndReason, p = uint32(b[0]), p|bit(pb.Field_FLOW_END_REASON)
		case v.Type == ieFlowStartSeconds && len(b) == 4:
			f.StartMs, p = beUint(b)*1000, p|bit(pb.Field_START)
		case v.Type == ieFlowEndSeconds && len(b) == 4:
			f.EndMs, p = beUint(b)*1000, p|bit(pb.Field_END)
		case v.Type == ieFlowStartMilliseconds && len(b) == 8:
			f.StartMs, p = beUint(b), p|bit(pb.Field_START)
		case v.Type == ieFlowEndMilliseconds && len(b) == 8:
			f.EndMs, p = beUint(b), p|bit(pb.Field_END)
		case (v.Type == ieFlowStartMicroseconds || v.Type == ieFlowStartNanoseconds) && len(b) == 8:
			f.StartMs, p = ntpToUnixMs(beUint(b)), p|bit(pb.Field_START)
		case (v.Type == ieFlowEndMicroseconds || v.Type == ieFlowEndNanoseconds) && len(b) == 8:
			f.EndMs, p = ntpToUnixMs(beUint(b)), p|bit(pb.Field_END)
		case v.Type == ieFlowStartDeltaMicroseconds && len(b) == 4:
			f.StartMs, p = h.exportMs-beUint(b)/microsecondsPerMillisecond, p|bit(pb.Field_START)
		case v.Type == ieFlowEndDeltaMicroseconds && len(b) == 4:
			f.EndMs, p = h.exportMs-beUint(b)/microsecondsPerMillisecond, p|bit(pb.Field_END)
		}
	}
	// Uptime-relative times: v9 counts from the header's uptime, IPFIX from
	// systemInitTimeMilliseconds sent in option data.
	if startUp {
		p |= bit(pb.Field_START_UPTIME)
		if ms, ok := h.uptimeToUnix(f.StartUptimeMs, st); ok && p&bit(pb.Field_START) == 0 {
			f.StartMs, p = ms, p|bit(pb.Field_START)
		}
	}
	if endUp {
		p |= bit(pb.Field_END_UPTIME)
		if ms, ok := h.uptimeToUnix(f.EndUptimeMs, st); ok && p&bit(pb.Field_END) == 0 {
			f.EndMs, p = ms, p|bit(pb.Field_END)
		}
	}
	if p&bit(pb.Field_IP_VERSION) == 0 {
		switch {
		case len(f.SrcAddr) == 4 || len(f.DstAddr) == 4:
			f.IpVersion, p = 4, p|bit(pb.Field_IP_VERSION)
		case len(f.SrcAddr) == 16 || len(f.DstAddr) == 16:
			f.IpVersion, p = 6, p|bit(pb.Field_IP_VERSION)
		}
	}
	if p&bit(pb.Field_SAMPLING) == 0 && st.samplingRate != 0 {
		f.SamplingRate, p = st.samplingRate, p|bit(pb.Field_SAMPLING)
	}
	f.Present = p
}

// uptimeToUnix turns an uptime-relative time into Unix milliseconds; ok is
// false for IPFIX until the exporter has sent its system init time.
func (h *header) uptimeToUnix(t uint32, st *session) (uint64, bool) {
	if h.version == 9 {
		return uptimeToUnix(h.exportMs, h.uptimeMs, t), true
	}
	if st.sysInitMs == 0 {
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
