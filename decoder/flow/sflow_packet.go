package flow

import (
	"encoding/binary"

	pb "github.com/flowgate/flowgate/proto"
)

// Header protocols of an sFlow sampled header record, and the layers read
// from it.
const (
	headerEthernet = 1
	headerIPv4     = 11
	headerIPv6     = 12

	etherIPv4   = 0x0800
	etherIPv6   = 0x86dd
	etherVLAN   = 0x8100
	etherQinQ   = 0x88a8
	etherQinQv1 = 0x9100
	etherMPLS   = 0x8847
	etherMPLSmc = 0x8848

	protoICMP    = 1
	protoTCP     = 6
	protoUDP     = 17
	protoIPv6Hop = 0
	protoRouting = 43
	protoFrag    = 44
	protoAH      = 51
	protoICMPv6  = 58
	protoDstOpts = 60
	protoSCTP    = 132

	// maxHeaderLayers bounds the tags, labels and IPv6 extension headers
	// walked: a sampled header is 128 bytes or so, and a loop over
	// attacker-chosen bytes stays short.
	maxHeaderLayers = 8
)

// parseSampledHeader sets what the headers of a sampled packet say (MACs,
// VLAN tag, addresses, ports, protocol, TOS, TTL, fragment, TCP flags,
// ICMP type) and returns the present bits with theirs added. The header is
// usually cut short (128 bytes): each layer is read only when all of it is
// there. Addresses are copied out of h, which the caller reuses, into a.
func parseSampledHeader(f *pb.Flow, p uint64, protocol uint32, h []byte, a *arena) uint64 {
	switch protocol {
	case headerEthernet:
		return parseEthernet(f, p, h, a)
	case headerIPv4:
		return parseIPv4(f, p, h, a)
	case headerIPv6:
		return parseIPv6(f, p, h, a)
	}
	return p
}

func parseEthernet(f *pb.Flow, p uint64, h []byte, a *arena) uint64 {
	if len(h) < 14 {
		return p
	}
	f.DstMac, f.SrcMac = beUint(h[0:6]), beUint(h[6:12])
	p |= bits(pb.Field_SRC_MAC, pb.Field_DST_MAC, pb.Field_ETYPE)
	etype := binary.BigEndian.Uint16(h[12:])
	h = h[14:]
layers:
	for range maxHeaderLayers {
		switch etype {
		case etherVLAN, etherQinQ, etherQinQv1:
			if len(h) < 4 {
				break layers
			}
			// The outer tag is the VLAN the frame travelled in.
			if p&bit(pb.Field_DOT1Q_VLAN) == 0 {
				f.Dot1QVlan, p = uint32(binary.BigEndian.Uint16(h)&0x0fff), p|bit(pb.Field_DOT1Q_VLAN)
			}
			etype = binary.BigEndian.Uint16(h[2:])
			h = h[4:]
		case etherMPLS, etherMPLSmc:
			// Skip the label stack; what follows has no type of its own,
			// its first nibble tells IPv4 from IPv6.
			for len(h) >= 4 {
				bottom := h[2]&1 == 1
				h = h[4:]
				if bottom {
					break
				}
			}
			if len(h) > 0 && h[0]>>4 == 4 {
				etype = etherIPv4
			} else if len(h) > 0 && h[0]>>4 == 6 {
				etype = etherIPv6
			}
			break layers
		default:
			break layers
		}
	}
	f.Etype = uint32(etype)
	switch etype {
	case etherIPv4:
		return parseIPv4(f, p, h, a)
	case etherIPv6:
		return parseIPv6(f, p, h, a)
	}
	return p
}

func parseIPv4(f *pb.Flow, p uint64, h []byte, a *arena) uint64 {
	if len(h) < 20 || h[0]>>4 != 4 {
		return p
	}
	ihl := int(h[0]&0x0f) * 4
	f.IpVersion = 4
	f.Tos = uint32(h[1])
	f.FragmentId = uint32(binary.BigEndian.Uint16(h[4:]))
	frag := binary.BigEndian.Uint16(h[6:])
	f.FragmentFlags, f.FragmentOffset = uint32(frag>>13), uint32(frag&0x1fff)
	f.IpTtl = uint32(h[8])
	f.Proto = uint32(h[9])
	f.SrcAddr, f.DstAddr = a.clone(h[12:16]), a.clone(h[16:20])
	p |= bits(pb.Field_IP_VERSION, pb.Field_TOS, pb.Field_FRAGMENT_ID, pb.Field_FRAGMENT_FLAGS,
		pb.Field_FRAGMENT_OFFSET, pb.Field_IP_TTL, pb.Field_PROTO, pb.Field_SRC_ADDR, pb.Field_DST_ADDR)
	// Only the first fragment carries the transport header.
	if f.FragmentOffset != 0 || ihl < 20 || len(h) < ihl {
		return p
	}
	return parseTransport(f, p, h[ihl:])
}

func parseIPv6(f *pb.Flow, p uint64, h []byte, a *arena) uint64 {
	if len(h) < 40 || h[0]>>4 != 6 {
		return p
	}
	first := binary.BigEndian.Uint32(h)
	f.IpVersion = 6
	f.Tos = first >> 20 & 0xff
	f.FlowLabel = first & 0xfffff
	f.IpTtl = uint32(h[7])
	f.SrcAddr, f.DstAddr = a.clone(h[8:24]), a.clone(h[24:40])
	p |= bits(pb.Field_IP_VERSION, pb.Field_TOS, pb.Field_FLOW_LABEL, pb.Field_IP_TTL,
		pb.Field_PROTO, pb.Field_SRC_ADDR, pb.Field_DST_ADDR)
	next := h[6]
	h = h[40:]
	// Walk the extension headers to the transport protocol.
	for range maxHeaderLayers {
		var size int
		switch next {
		case protoIPv6Hop, protoRouting, protoDstOpts:
			if len(h) < 2 {
				f.Proto = uint32(next)
				return p
			}
			size = (int(h[1]) + 1) * 8
		case protoAH:
			if len(h) < 2 {
				f.Proto = uint32(next)
				return p
			}
			size = (int(h[1]) + 2) * 4
		case protoFrag:
			if len(h) < 8 {
				f.Proto = uint32(next)
				return p
			}
			frag := binary.BigEndian.Uint16(h[2:])
			f.FragmentOffset, f.FragmentFlags = uint32(frag>>3), uint32(frag&1)
			f.FragmentId = binary.BigEndian.Uint32(h[4:])
			p |= bits(pb.Field_FRAGMENT_ID, pb.Field_FRAGMENT_FLAGS, pb.Field_FRAGMENT_OFFSET)
			size = 8
		default:
			f.Proto = uint32(next)
			if f.FragmentOffset != 0 {
				return p
			}
			return parseTransport(f, p, h)
		}
		if len(h) < size {
			f.Proto = uint32(next)
			return p
		}
		next = h[0]
		h = h[size:]
	}
	f.Proto = uint32(next)
	return p
}

// parseTransport reads ports, TCP flags or the ICMP type and code.
func parseTransport(f *pb.Flow, p uint64, h []byte) uint64 {
	switch f.Proto {
	case protoTCP, protoUDP, protoSCTP:
		if len(h) < 4 {
			return p
		}
		f.SrcPort, f.DstPort = uint32(binary.BigEndian.Uint16(h)), uint32(binary.BigEndian.Uint16(h[2:]))
		p |= bits(pb.Field_SRC_PORT, pb.Field_DST_PORT)
		if f.Proto == protoTCP && len(h) >= 14 {
			f.TcpFlags, p = uint32(h[13]), p|bit(pb.Field_TCP_FLAGS)
		}
	case protoICMP, protoICMPv6:
		if len(h) < 2 {
			return p
		}
		f.IcmpTypeCode, p = uint32(h[0])<<8|uint32(h[1]), p|bit(pb.Field_ICMP_TYPE_CODE)
	}
	return p
}
