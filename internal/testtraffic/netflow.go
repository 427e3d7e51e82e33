package testtraffic

import (
	"encoding/binary"
	"net/netip"
	"time"
)

// MaxV5Records is how many records a NetFlow v5 datagram carries at most.
const MaxV5Records = 30

// NetFlowV5 appends to dst a NetFlow v5 datagram with one record per id,
// sent at now with sequence number seq (records before this datagram).
// The record of id comes from V5Source(id), so that a collector's output
// says which record it is; it is a 1-packet UDP flow of 100 bytes to
// 192.0.2.1:53 that started and ended a second before now.
func NetFlowV5(dst []byte, ids []uint32, seq uint32, now time.Time) []byte {
	const uptimeMs = 3_600_000
	dst = binary.BigEndian.AppendUint16(dst, 5)
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(ids)))
	dst = binary.BigEndian.AppendUint32(dst, uptimeMs)
	dst = binary.BigEndian.AppendUint32(dst, uint32(now.Unix()))
	dst = binary.BigEndian.AppendUint32(dst, uint32(now.Nanosecond()))
	dst = binary.BigEndian.AppendUint32(dst, seq)
	dst = append(dst, 0, 0, 0, 0) // engine type and id, sampling
	for _, id := range ids {
		src := V5Source(id).As4()
		dst = append(dst, src[:]...)
		dst = append(dst, 192, 0, 2, 1) // destination
		dst = append(dst, 0, 0, 0, 0)   // next hop
		dst = binary.BigEndian.AppendUint16(dst, 1)
		dst = binary.BigEndian.AppendUint16(dst, 2)
		dst = binary.BigEndian.AppendUint32(dst, 1)   // packets
		dst = binary.BigEndian.AppendUint32(dst, 100) // bytes
		dst = binary.BigEndian.AppendUint32(dst, uptimeMs-1000)
		dst = binary.BigEndian.AppendUint32(dst, uptimeMs-1000)
		dst = binary.BigEndian.AppendUint16(dst, uint16(1024+id%60000))
		dst = binary.BigEndian.AppendUint16(dst, 53)
		dst = append(dst, 0, 0, 17, 0) // pad, TCP flags, protocol, ToS
		dst = append(dst, 0, 0, 0, 0)  // AS numbers
		dst = append(dst, 24, 24, 0, 0)
	}
	return dst
}

// V5Source is the source address of record id: 10.0.0.0 plus id.
func V5Source(id uint32) netip.Addr {
	return netip.AddrFrom4([4]byte{10, byte(id >> 16), byte(id >> 8), byte(id)})
}

// V5ID is the id of the record with source address a, false for an
// address V5Source does not make.
func V5ID(a netip.Addr) (uint32, bool) {
	if !a.Is4() {
		return 0, false
	}
	b := a.As4()
	if b[0] != 10 {
		return 0, false
	}
	return uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3]), true
}
