// Package testtraffic writes capture files of synthetic traffic for tests and
// benchmarks: real exporters (softflowd, pmacctd) read them and export the
// flows they contain, so the flows a test expects are known in advance.
package testtraffic

import (
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// Flow is one conversation in the capture: Packets packets of Size bytes
// (IP header included), one every Gap, from Start.
type Flow struct {
	Src, Dst         netip.Addr
	SrcPort, DstPort uint16
	Proto            uint8 // 6 TCP, 17 UDP, 1 ICMP, 58 ICMPv6
	Packets          int
	Size             int
	Start            time.Time
	Gap              time.Duration
}

// Flows returns n distinct flows, a mix of TCP and UDP over IPv4 and (when
// ipv6 is set) IPv6, reproducible from seed.
func Flows(n int, seed uint64, start time.Time, ipv6 bool) []Flow {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	flows := make([]Flow, 0, n)
	for i := range n {
		f := Flow{
			SrcPort: uint16(1024 + r.IntN(60000)),
			DstPort: []uint16{53, 80, 443, 123, 22, 8080}[r.IntN(6)],
			Proto:   []uint8{6, 17}[r.IntN(2)],
			Packets: 1 + r.IntN(6),
			Size:    60 + r.IntN(1200),
			Start:   start.Add(time.Duration(i) * 3 * time.Millisecond),
			Gap:     time.Duration(1+r.IntN(50)) * time.Millisecond,
		}
		if ipv6 && i%4 == 3 {
			f.Src = netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 0, 1, 14: byte(i >> 8), 15: byte(i)})
			f.Dst = netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 0, 2, 14: byte(r.IntN(256)), 15: byte(1 + r.IntN(250))})
			f.Size = max(f.Size, 80)
		} else {
			f.Src = netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
			f.Dst = netip.AddrFrom4([4]byte{192, 0, 2, byte(1 + r.IntN(250))})
		}
		flows = append(flows, f)
	}
	return flows
}

// WriteFile writes the flows' packets, in time order, to a pcap file with
// Ethernet framing.
func WriteFile(path string, flows []Flow) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := Write(f, flows); err != nil {
		f.Close()
		return fmt.Errorf("pcap %s: %w", path, err)
	}
	return f.Close()
}

type packet struct {
	at   time.Time
	flow *Flow
}

// Write writes a pcap stream of the flows' packets in time order.
func Write(w io.Writer, flows []Flow) error {
	var pkts []packet
	for i := range flows {
		for p := range flows[i].Packets {
			pkts = append(pkts, packet{flows[i].Start.Add(time.Duration(p) * flows[i].Gap), &flows[i]})
		}
	}
	slices.SortStableFunc(pkts, func(a, b packet) int { return a.at.Compare(b.at) })
	pw, err := NewPcapWriter(w)
	if err != nil {
		return err
	}
	buf := make([]byte, 0, 2048)
	for _, p := range pkts {
		buf = frame(buf[:0], p.flow)
		if err := pw.Write(p.at, buf); err != nil {
			return err
		}
	}
	return nil
}

// PcapWriter writes Ethernet frames to a pcap stream.
type PcapWriter struct {
	w   io.Writer
	rec [16]byte
}

// NewPcapWriter writes the file header.
func NewPcapWriter(w io.Writer) (*PcapWriter, error) {
	hdr := make([]byte, 24)
	binary.LittleEndian.PutUint32(hdr[0:], 0xa1b2c3d4)
	binary.LittleEndian.PutUint16(hdr[4:], 2)
	binary.LittleEndian.PutUint16(hdr[6:], 4)
	binary.LittleEndian.PutUint32(hdr[16:], 65535)
	binary.LittleEndian.PutUint32(hdr[20:], 1) // LINKTYPE_ETHERNET
	if _, err := w.Write(hdr); err != nil {
		return nil, err
	}
	return &PcapWriter{w: w}, nil
}

// Write writes one frame captured at at.
func (p *PcapWriter) Write(at time.Time, frame []byte) error {
	binary.LittleEndian.PutUint32(p.rec[0:], uint32(at.Unix()))
	binary.LittleEndian.PutUint32(p.rec[4:], uint32(at.Nanosecond()/1000))
	binary.LittleEndian.PutUint32(p.rec[8:], uint32(len(frame)))
	binary.LittleEndian.PutUint32(p.rec[12:], uint32(len(frame)))
	if _, err := p.w.Write(p.rec[:]); err != nil {
		return err
	}
	_, err := p.w.Write(frame)
	return err
}

// UDPFrame appends an Ethernet frame carrying payload in an IPv4 UDP
// datagram from src to dst (UDP checksum left out, as IPv4 allows).
func UDPFrame(b []byte, src, dst netip.AddrPort, payload []byte) []byte {
	b = append(b, 0, 0, 0x5e, 0, 0, 2, 0, 0, 0x5e, 0, 0, 1, 0x08, 0x00)
	ip := len(b)
	total := 28 + len(payload)
	b = append(b, 0x45, 0, byte(total>>8), byte(total), 0, 0, 0x40, 0, 64, 17, 0, 0)
	s4, d4 := src.Addr().As4(), dst.Addr().As4()
	b = append(b, s4[:]...)
	b = append(b, d4[:]...)
	binary.BigEndian.PutUint16(b[ip+10:], checksum(b[ip:ip+20]))
	ulen := 8 + len(payload)
	b = append(b, byte(src.Port()>>8), byte(src.Port()), byte(dst.Port()>>8), byte(dst.Port()), byte(ulen>>8), byte(ulen), 0, 0)
	return append(b, payload...)
}

// frame appends an Ethernet frame carrying one packet of f, Size bytes of IP.
func frame(b []byte, f *Flow) []byte {
	b = append(b, 0, 0, 0x5e, 0, 0, 2, 0, 0, 0x5e, 0, 0, 1)
	if f.Src.Is4() {
		b = append(b, 0x08, 0x00)
		ip := len(b)
		total := max(f.Size, 40)
		l4 := l4Header(f, total-20)
		b = append(b, 0x45, 0, byte(total>>8), byte(total), 0, 0, 0x40, 0, 64, f.Proto, 0, 0)
		b = append(b, f.Src.AsSlice()...)
		b = append(b, f.Dst.AsSlice()...)
		binary.BigEndian.PutUint16(b[ip+10:], checksum(b[ip:ip+20]))
		b = append(b, l4...)
		return append(b, make([]byte, total-20-len(l4))...)
	}
	b = append(b, 0x86, 0xdd)
	total := max(f.Size, 60)
	plen := total - 40
	l4 := l4Header(f, plen)
	b = append(b, 0x60, 0, 0, 0, byte(plen>>8), byte(plen), f.Proto, 64)
	b = append(b, f.Src.AsSlice()...)
	b = append(b, f.Dst.AsSlice()...)
	b = append(b, l4...)
	return append(b, make([]byte, plen-len(l4))...)
}

// l4Header returns the transport header of a packet whose IP payload is n bytes.
func l4Header(f *Flow, n int) []byte {
	switch f.Proto {
	case 6:
		h := make([]byte, 20)
		binary.BigEndian.PutUint16(h[0:], f.SrcPort)
		binary.BigEndian.PutUint16(h[2:], f.DstPort)
		h[12] = 5 << 4
		h[13] = 0x18 // PSH ACK
		binary.BigEndian.PutUint16(h[14:], 65535)
		return h
	case 17:
		h := make([]byte, 8)
		binary.BigEndian.PutUint16(h[0:], f.SrcPort)
		binary.BigEndian.PutUint16(h[2:], f.DstPort)
		binary.BigEndian.PutUint16(h[4:], uint16(n))
		return h
	}
	return []byte{8, 0, 0, 0, 0, 0, 0, 0} // ICMP echo request
}

func checksum(b []byte) uint16 {
	var sum uint32
	for i := 0; i+1 < len(b); i += 2 {
		sum += uint32(b[i])<<8 | uint32(b[i+1])
	}
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}

// WriteCapture writes a capture file of n flows (IPv4 and IPv6), different
// for each seed, in a folder of t's, and returns its path and the flows.
func WriteCapture(t testing.TB, n int, seed uint64) (string, []Flow) {
	t.Helper()
	start := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC).Add(time.Duration(seed) * time.Minute)
	flows := Flows(n, seed, start, true)
	path := filepath.Join(t.TempDir(), fmt.Sprintf("traffic-%d.pcap", seed))
	if err := WriteFile(path, flows); err != nil {
		t.Fatal(err)
	}
	return path, flows
}

// FlowKey identifies a flow across an exporter's view (tshark's fields)
// and the events of an intake.
func FlowKey(src, dst string, sport, dport, proto int) string {
	return fmt.Sprintf("%s %d > %s %d / %d", src, sport, dst, dport, proto)
}
