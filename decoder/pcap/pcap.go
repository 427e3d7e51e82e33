// Package pcap reads the UDP datagrams of a packet capture, classic pcap
// or pcapng as tcpdump, tshark and dumpcap write them, one at a time: for
// the route dry run (`flowgate route` reading exports on its standard
// input) and the benchmark harness's replays. Frames may be Ethernet
// (VLAN tags skipped), Linux cooked (v1, v2), BSD loopback or raw IPv4 or
// IPv6; IP fragments and packets that are not UDP are skipped. Input that
// is not a capture, or is cut short, is an error naming the byte where it
// went wrong; no input makes it panic or hold more than one block.
package pcap

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"net/netip"
	"time"
)

// Datagram is the UDP payload of one captured packet, who sent it to whom,
// and when it was captured.
type Datagram struct {
	At       time.Time
	From, To netip.AddrPort
	Payload  []byte
}

// Link types a capture may use (www.tcpdump.org/linktypes.html).
const (
	linkNull     = 0
	linkEthernet = 1
	linkRaw      = 101
	linkSLL      = 113
	linkIPv4     = 228
	linkIPv6     = 229
	linkSLL2     = 276
)

// The first four bytes of the files: classic pcap (micro- or nanosecond
// timestamps), as written on a little-endian machine, and pcapng's section
// header block, the same either way.
const (
	magicMicro  = 0xa1b2c3d4
	magicNano   = 0xa1b23c4d
	magicPcapNG = 0x0a0d0d0a
)

// pcapng's block types and its byte-order magic.
const (
	blockSection   = 0x0a0d0d0a
	blockInterface = 1
	blockSimple    = 3
	blockEnhanced  = 6
	byteOrderMagic = 0x1a2b3c4d
)

// maxBlock bounds a packet record or a pcapng block: libpcap's largest
// snapshot length (256 KiB) and room for a block's options.
const maxBlock = 1 << 20

// Is says whether b (four bytes or more) begins like a capture file.
func Is(b []byte) bool {
	if len(b) < 4 {
		return false
	}
	switch binary.LittleEndian.Uint32(b) {
	case magicMicro, magicNano, magicPcapNG, bits.ReverseBytes32(magicMicro), bits.ReverseBytes32(magicNano):
		return true
	}
	return false
}

// Reader reads the UDP datagrams of a capture in order.
type Reader struct {
	r *bufio.Reader
	// off is the offset of the next byte to read, for messages.
	off   int64
	order binary.ByteOrder
	ng    bool
	// link and unit are a classic file's link type and timestamp unit
	// (nanoseconds per fraction).
	link uint32
	unit int64
	// ifaces are the interfaces of a pcapng section.
	ifaces []iface
	buf    []byte
}

// iface is a pcapng interface: its link type and how many timestamp
// units make a second.
type iface struct {
	link    uint32
	perSec  uint64
	badTime error
}

// NewReader reads the file header of the capture r.
func NewReader(r io.Reader) (*Reader, error) {
	pr := &Reader{r: bufio.NewReaderSize(r, 64<<10)}
	head, err := pr.r.Peek(4)
	if err != nil || !Is(head) {
		return nil, errors.New("not a pcap or pcapng capture (tcpdump -w, tshark -w)")
	}
	if binary.LittleEndian.Uint32(head) == magicPcapNG {
		pr.ng = true
		return pr, nil // The section header is read as a block.
	}
	h, err := pr.read(24)
	if err != nil {
		return nil, err
	}
	pr.order = binary.ByteOrder(binary.LittleEndian)
	magic := binary.LittleEndian.Uint32(h)
	if magic != magicMicro && magic != magicNano {
		pr.order, magic = binary.BigEndian, bits.ReverseBytes32(magic)
	}
	pr.unit = 1000
	if magic == magicNano {
		pr.unit = 1
	}
	pr.link = pr.order.Uint32(h[20:]) & 0x0fffffff
	return pr, nil
}

// read reads the next n bytes into the reader's buffer.
func (r *Reader) read(n int) ([]byte, error) {
	if cap(r.buf) < n {
		r.buf = make([]byte, n)
	}
	b := r.buf[:n]
	if k, err := io.ReadFull(r.r, b); err != nil {
		if err == io.EOF {
			return nil, err
		}
		return nil, fmt.Errorf("capture cut short at byte %d", r.off+int64(k))
	}
	r.off += int64(n)
	return b, nil
}

// Next returns the next UDP datagram, io.EOF at the end of the capture.
// Its payload is the reader's until the next call.
func (r *Reader) Next() (Datagram, error) {
	for {
		var d Datagram
		var ok bool
		var err error
		if r.ng {
			d, ok, err = r.nextBlock()
		} else {
			d, ok, err = r.nextRecord()
		}
		if err != nil || ok {
			return d, err
		}
	}
}

// nextRecord reads a classic record; ok is false when it holds no UDP
// datagram.
func (r *Reader) nextRecord() (d Datagram, ok bool, err error) {
	at := r.off
	h, err := r.read(16)
	if err != nil {
		return d, false, err
	}
	sec, frac, n := r.order.Uint32(h), r.order.Uint32(h[4:]), r.order.Uint32(h[8:])
	if n > maxBlock {
		return d, false, fmt.Errorf("packet record at byte %d: %d bytes captured, more than a capture holds", at, n)
	}
	b, err := r.read(int(n))
	if err == io.EOF {
		err = fmt.Errorf("capture cut short at byte %d", r.off)
	}
	if err != nil {
		return d, false, err
	}
	d, ok = udp(r.link, b)
	d.At = time.Unix(int64(sec), int64(frac)*r.unit)
	return d, ok, nil
}

// nextBlock reads a pcapng block; ok is false when it holds no UDP
// datagram.
func (r *Reader) nextBlock() (d Datagram, ok bool, err error) {
	at := r.off
	h, err := r.read(8)
	if err != nil {
		return d, false, err
	}
	if r.order == nil || binary.LittleEndian.Uint32(h) == blockSection {
		if binary.LittleEndian.Uint32(h) != blockSection {
			return d, false, fmt.Errorf("block at byte %d: a pcapng capture starts with a section header", at)
		}
		// A section says its byte order after its length.
		bom, err := r.r.Peek(4)
		if err != nil {
			return d, false, fmt.Errorf("capture cut short at byte %d", r.off)
		}
		switch uint32(byteOrderMagic) {
		case binary.LittleEndian.Uint32(bom):
			r.order = binary.LittleEndian
		case binary.BigEndian.Uint32(bom):
			r.order = binary.BigEndian
		default:
			return d, false, fmt.Errorf("section header at byte %d: no byte-order magic", at)
		}
		r.ifaces = r.ifaces[:0]
	}
	typ := r.order.Uint32(h)
	n := r.order.Uint32(h[4:])
	if n < 12 || n%4 != 0 || n > maxBlock {
		return d, false, fmt.Errorf("block at byte %d: a length of %d bytes", at, n)
	}
	body, err := r.read(int(n) - 8)
	if err == io.EOF {
		err = fmt.Errorf("capture cut short at byte %d", r.off)
	}
	if err != nil {
		return d, false, err
	}
	if r.order.Uint32(body[len(body)-4:]) != n {
		return d, false, fmt.Errorf("block at byte %d: its trailing length is not its length", at)
	}
	body = body[:len(body)-4]
	switch typ {
	case blockInterface:
		if len(body) < 8 {
			return d, false, fmt.Errorf("interface block at byte %d: too short", at)
		}
		r.ifaces = append(r.ifaces, newIface(uint32(r.order.Uint16(body)), r.options(body[8:])))
	case blockEnhanced:
		if len(body) < 20 {
			return d, false, fmt.Errorf("packet block at byte %d: too short", at)
		}
		id, capLen := r.order.Uint32(body), r.order.Uint32(body[12:])
		if int(id) >= len(r.ifaces) {
			return d, false, fmt.Errorf("packet block at byte %d: interface %d was not described", at, id)
		}
		if uint64(capLen) > uint64(len(body)-20) {
			return d, false, fmt.Errorf("packet block at byte %d: %d bytes captured in a block of %d", at, capLen, n)
		}
		ifc := r.ifaces[id]
		if ifc.badTime != nil {
			return d, false, fmt.Errorf("interface %d: %w", id, ifc.badTime)
		}
		d, ok = udp(ifc.link, body[20:20+capLen])
		d.At = ifc.time(uint64(r.order.Uint32(body[4:]))<<32 | uint64(r.order.Uint32(body[8:])))
		return d, ok, nil
	case blockSimple:
		if len(r.ifaces) == 0 {
			return d, false, fmt.Errorf("packet block at byte %d: no interface was described", at)
		}
		if len(body) < 4 {
			return d, false, fmt.Errorf("packet block at byte %d: too short", at)
		}
		data := body[4:]
		if orig := r.order.Uint32(body); uint64(orig) < uint64(len(data)) {
			data = data[:orig]
		}
		d, ok = udp(r.ifaces[0].link, data)
		return d, ok, nil
	}
	return d, false, nil
}

// options returns the value of an interface's if_tsresol option (code 9),
// 6 (microseconds) when it has none.
func (r *Reader) options(b []byte) byte {
	for len(b) >= 4 {
		code, n := r.order.Uint16(b), int(r.order.Uint16(b[2:]))
		b = b[4:]
		if code == 0 || n > len(b) {
			break
		}
		if code == 9 && n == 1 {
			return b[0]
		}
		b = b[min((n+3)&^3, len(b)):]
	}
	return 6
}

// newIface is an interface of link type with timestamps in units of
// 10^-res seconds, or 2^-(res&0x7f) when the high bit is set.
func newIface(link uint32, res byte) iface {
	ifc := iface{link: link & 0x0fffffff}
	switch {
	case res&0x80 != 0 && res&0x7f <= 63:
		ifc.perSec = 1 << (res & 0x7f)
	case res&0x80 == 0 && res <= 19:
		ifc.perSec = 1
		for range res {
			ifc.perSec *= 10
		}
	default:
		ifc.badTime = fmt.Errorf("timestamp resolution %#x is not one flowgate reads", res)
	}
	return ifc
}

// time is the moment ts units of the interface's resolution after 1970.
func (ifc iface) time(ts uint64) time.Time {
	sec, rem := ts/ifc.perSec, ts%ifc.perSec
	// rem·10⁹/perSec < 10⁹: the division cannot overflow.
	hi, lo := bits.Mul64(rem, 1e9)
	ns, _ := bits.Div64(hi, lo, ifc.perSec)
	if sec > 1<<62 {
		sec = 1 << 62
	}
	return time.Unix(int64(sec), int64(ns))
}

// udp finds the UDP datagram in a captured frame of link type link.
func udp(link uint32, b []byte) (Datagram, bool) {
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
		switch b[0] >> 4 {
		case 4:
			ethertype = 0x0800
		case 6:
			ethertype = 0x86dd
		}
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
		// Extension headers are not followed: exports do not carry them.
		if len(b) < 40 || b[0]>>4 != 6 || b[6] != 17 {
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
