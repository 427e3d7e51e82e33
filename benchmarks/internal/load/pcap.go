package load

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
)

// Datagram is the UDP payload of one captured packet and who sent it.
type Datagram struct {
	From    netip.AddrPort
	To      netip.AddrPort
	Payload []byte
}

// maxCaptureBytes bounds the capture a replay holds in memory.
const maxCaptureBytes = 1 << 30

// Link types a capture may use.
const (
	linkNull     = 0
	linkEthernet = 1
	linkRaw      = 101
	linkSLL      = 113
	linkIPv4     = 228
	linkIPv6     = 229
	linkSLL2     = 276
)

// ReadPcap reads the UDP payloads of a classic pcap file, in order; port,
// when not 0, keeps only datagrams sent to that port. Fragments and
// packets that are not UDP are skipped.
func ReadPcap(path string, port uint16) ([]Datagram, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.Size() > maxCaptureBytes {
		return nil, fmt.Errorf("%s: %d bytes, more than the %d a replay holds in memory", path, st.Size(), maxCaptureBytes)
	}
	data, err := io.ReadAll(f)
	if err != nil {
		return nil, err
	}
	dgs, err := parsePcap(data, port)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(dgs) == 0 {
		return nil, fmt.Errorf("%s: no UDP datagram to replay", path)
	}
	return dgs, nil
}

func parsePcap(data []byte, port uint16) ([]Datagram, error) {
	if len(data) < 24 {
		return nil, errors.New("not a pcap file: too short")
	}
	var order binary.ByteOrder
	switch binary.LittleEndian.Uint32(data) {
	case 0xa1b2c3d4, 0xa1b23c4d:
		order = binary.LittleEndian
	case 0xd4c3b2a1, 0x4d3cb2a1:
		order = binary.BigEndian
	case 0x0a0d0d0a:
		return nil, errors.New("pcapng is not read here: convert it with editcap -F pcap")
	default:
		return nil, errors.New("not a pcap file")
	}
	link := order.Uint32(data[20:]) & 0x0fffffff
	var out []Datagram
	for off := 24; off+16 <= len(data); {
		n := int(order.Uint32(data[off+8:]))
		off += 16
		if n > len(data)-off {
			return out, fmt.Errorf("packet at byte %d is cut short", off-16)
		}
		pkt := data[off : off+n]
		off += n
		if d, ok := udpPayload(link, pkt); ok && (port == 0 || d.To.Port() == port) {
			out = append(out, d)
		}
	}
	return out, nil
}

// udpPayload finds the UDP datagram in a captured frame.
func udpPayload(link uint32, b []byte) (Datagram, bool) {
	var ethertype uint16
	switch link {
	case linkEthernet:
		if len(b) < 14 {
			return Datagram{}, false
		}
		ethertype, b = binary.BigEndian.Uint16(b[12:]), b[14:]
		for (ethertype == 0x8100 || ethertype == 0x88a8) && len(b) >= 4 {
			ethertype, b = binary.BigEndian.Uint16(b[2:]), b[4:]
		}
	case linkSLL:
		if len(b) < 16 {
			return Datagram{}, false
		}
		ethertype, b = binary.BigEndian.Uint16(b[14:]), b[16:]
	case linkSLL2:
		if len(b) < 20 {
			return Datagram{}, false
		}
		ethertype, b = binary.BigEndian.Uint16(b[0:]), b[20:]
	case linkNull:
		if len(b) < 4 {
			return Datagram{}, false
		}
		b = b[4:]
	case linkRaw, linkIPv4, linkIPv6:
	default:
		return Datagram{}, false
	}
	if len(b) == 0 {
		return Datagram{}, false
	}
	if ethertype == 0 {
		// No link header says it: the IP version does.
		ethertype = map[byte]uint16{4: 0x0800, 6: 0x86dd}[b[0]>>4]
	}
	var src, dst netip.Addr
	switch ethertype {
	case 0x0800:
		if len(b) < 20 || b[0]>>4 != 4 {
			return Datagram{}, false
		}
		ihl := int(b[0]&0x0f) * 4
		total := int(binary.BigEndian.Uint16(b[2:]))
		fragment := binary.BigEndian.Uint16(b[6:])&0x3fff != 0
		if b[9] != 17 || fragment || ihl < 20 || total < ihl || total > len(b) {
			return Datagram{}, false
		}
		src, dst = netip.AddrFrom4([4]byte(b[12:16])), netip.AddrFrom4([4]byte(b[16:20]))
		b = b[ihl:total]
	case 0x86dd:
		if len(b) < 40 || b[6] != 17 {
			return Datagram{}, false
		}
		plen := int(binary.BigEndian.Uint16(b[4:]))
		if 40+plen > len(b) {
			return Datagram{}, false
		}
		src, dst = netip.AddrFrom16([16]byte(b[8:24])), netip.AddrFrom16([16]byte(b[24:40]))
		b = b[40 : 40+plen]
	default:
		return Datagram{}, false
	}
	if len(b) < 8 {
		return Datagram{}, false
	}
	ulen := int(binary.BigEndian.Uint16(b[4:]))
	if ulen < 8 || ulen > len(b) {
		return Datagram{}, false
	}
	return Datagram{
		From:    netip.AddrPortFrom(src, binary.BigEndian.Uint16(b[0:])),
		To:      netip.AddrPortFrom(dst, binary.BigEndian.Uint16(b[2:])),
		Payload: b[8:ulen],
	}, true
}
