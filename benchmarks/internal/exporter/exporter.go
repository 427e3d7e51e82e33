// Package exporter plays a router's flow exporter for the load generator:
// it encodes NetFlow v5, NetFlow v9, IPFIX and sFlow v5 datagrams whose
// records carry benchmark identities (package ident), keeping per exporter
// what a router keeps (sequence numbers, uptime, when the templates were
// last sent). Encoders append to a caller's buffer.
package exporter

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/flowgate/flowgate/benchmarks/internal/ident"
)

// Format is an export protocol.
type Format string

// The formats the generator speaks.
const (
	V5    Format = "v5"
	V9    Format = "v9"
	IPFIX Format = "ipfix"
	SFlow Format = "sflow"
)

// Formats lists them, for flags and messages.
var Formats = []Format{V5, V9, IPFIX, SFlow}

// ParseFormat reads a format name.
func ParseFormat(s string) (Format, error) {
	for _, f := range Formats {
		if string(f) == strings.ToLower(s) {
			return f, nil
		}
	}
	return "", fmt.Errorf("unknown format %q (v5, v9, ipfix or sflow)", s)
}

// Sizes of the parts of each format's datagrams.
const (
	v5HeaderBytes    = 24
	v5RecordBytes    = 48
	v5MaxRecords     = 30
	v9HeaderBytes    = 20
	v9RecordBytes    = 47
	ipfixHeaderBytes = 16
	ipfixRecordBytes = 56
	setHeaderBytes   = 4
	sflowHeaderBytes = 28
	// sflowSampleBytes is the largest flow sample (a TCP packet's headers).
	sflowSampleBytes = 120
	// datagramBudget is what a router on a 1500-byte MTU puts in one
	// datagram: the default number of records per datagram fills it.
	datagramBudget = 1400
	maxDatagram    = 65_000
	templateID     = 256
)

// DefaultRecords is how many records fill a datagram of format f.
func DefaultRecords(f Format) int {
	switch f {
	case V5:
		return v5MaxRecords
	case V9:
		return (datagramBudget - v9HeaderBytes - setHeaderBytes) / v9RecordBytes
	case IPFIX:
		return (datagramBudget - ipfixHeaderBytes - setHeaderBytes) / ipfixRecordBytes
	default:
		return (datagramBudget - sflowHeaderBytes) / sflowSampleBytes
	}
}

// MaxRecords is the most records a datagram of format f can hold.
func MaxRecords(f Format) int {
	switch f {
	case V5:
		return v5MaxRecords
	case V9:
		return (maxDatagram - 200) / v9RecordBytes
	case IPFIX:
		return (maxDatagram - 200) / ipfixRecordBytes
	default:
		return (maxDatagram - sflowHeaderBytes) / sflowSampleBytes
	}
}

// Flow is what one generated record says. Everything but the identity is
// derived from the sequence number, so a test can tell what to expect.
type Flow struct {
	Src, Dst         [4]byte
	SrcPort, DstPort uint16
	Proto, TCPFlags  uint8
	Tos              uint8
	Bytes, Packets   uint64
	InIf, OutIf      uint32
	StartMs, EndMs   uint64
}

var dstPorts = [...]uint16{443, 80, 53, 123, 22, 8080}

// MakeFlow returns the flow of run and seq, ending before nowMs.
func MakeFlow(run uint16, seq uint32, nowMs uint64) Flow {
	f := Flow{
		Src:     ident.SrcAddr(seq),
		Dst:     ident.DstAddr(run),
		SrcPort: uint16(1024 + seq%60_000),
		DstPort: dstPorts[seq%uint32(len(dstPorts))],
		Proto:   6,
		Packets: uint64(1 + seq%16),
		InIf:    1 + seq%8,
		OutIf:   9 + seq%8,
		EndMs:   nowMs - uint64(seq%1000),
	}
	f.Bytes = f.Packets * uint64(64+seq%1400)
	f.StartMs = f.EndMs - uint64(seq%30_000)
	if seq%3 == 0 {
		f.Proto = 17
	} else {
		f.TCPFlags = 0x1b // FIN PSH ACK SYN
	}
	return f
}

// Config is one exporter.
type Config struct {
	Format Format
	// Agent is the exporter's own address (sFlow's agent address).
	Agent netip.Addr
	// Domain is the v9 source id, IPFIX observation domain or sFlow sub-agent.
	Domain uint32
	// TemplateEvery is how often v9 and IPFIX templates are sent again;
	// the first datagram always carries them.
	TemplateEvery time.Duration
}

// Exporter encodes the datagrams of one exporter. It is not safe for
// concurrent use.
type Exporter struct {
	cfg          Config
	boot         time.Time
	datagrams    uint32
	records      uint32
	lastTemplate time.Time
}

// New returns an exporter that booted an hour before now.
func New(cfg Config, now time.Time) *Exporter {
	return &Exporter{cfg: cfg, boot: now.Add(-time.Hour)}
}

// Append appends one datagram holding the records of run with sequence
// numbers first to first+n-1.
func (e *Exporter) Append(dst []byte, now time.Time, run uint16, first uint32, n int) []byte {
	defer func() { e.datagrams++; e.records += uint32(n) }()
	switch e.cfg.Format {
	case V5:
		return e.appendV5(dst, now, run, first, n)
	case V9:
		return e.appendV9(dst, now, run, first, n)
	case IPFIX:
		return e.appendIPFIX(dst, now, run, first, n)
	default:
		return e.appendSFlow(dst, now, run, first, n)
	}
}

// templateDue says whether this datagram carries the templates.
func (e *Exporter) templateDue(now time.Time) bool {
	if e.datagrams == 0 || now.Sub(e.lastTemplate) >= e.cfg.TemplateEvery {
		e.lastTemplate = now
		return true
	}
	return false
}

func (e *Exporter) uptimeMs(nowMs uint64) uint32 {
	return uint32(nowMs - uint64(e.boot.UnixMilli()))
}

func (e *Exporter) appendV5(b []byte, now time.Time, run uint16, first uint32, n int) []byte {
	nowMs := uint64(now.UnixMilli())
	up := e.uptimeMs(nowMs)
	b = be16(b, 5)
	b = be16(b, uint16(n))
	b = be32(b, up)
	b = be32(b, uint32(now.Unix()))
	b = be32(b, uint32(now.Nanosecond()))
	b = be32(b, e.records)
	b = append(b, 0, 0, 0, 0) // engine type, engine id, sampling: none
	for i := range n {
		f := MakeFlow(run, first+uint32(i), nowMs)
		b = append(b, f.Src[:]...)
		b = append(b, f.Dst[:]...)
		b = append(b, 0, 0, 0, 0) // next hop
		b = be16(b, uint16(f.InIf))
		b = be16(b, uint16(f.OutIf))
		b = be32(b, uint32(f.Packets))
		b = be32(b, uint32(f.Bytes))
		b = be32(b, up-uint32(nowMs-f.StartMs))
		b = be32(b, up-uint32(nowMs-f.EndMs))
		b = be16(b, f.SrcPort)
		b = be16(b, f.DstPort)
		b = append(b, 0, f.TCPFlags, f.Proto, f.Tos)
		b = append(b, 0, 0, 0, 0, 24, 16, 0, 0) // AS numbers, masks, pad
	}
	return b
}

// field is a template field: type (v9) or information element (IPFIX), and length.
type field struct{ id, length uint16 }

// v9Fields and ipfixFields are the templates; the encoders below write
// the records in their order.
var (
	v9Fields = []field{
		{1, 8}, {2, 8}, // IN_BYTES, IN_PKTS
		{4, 1}, {5, 1}, {6, 1}, // PROTOCOL, SRC_TOS, TCP_FLAGS
		{7, 2}, {8, 4}, {10, 4}, // L4_SRC_PORT, IPV4_SRC_ADDR, INPUT_SNMP
		{11, 2}, {12, 4}, {14, 4}, // L4_DST_PORT, IPV4_DST_ADDR, OUTPUT_SNMP
		{21, 4}, {22, 4}, // LAST_SWITCHED, FIRST_SWITCHED
	}
	ipfixFields = []field{
		{1, 8}, {2, 8}, // octetDeltaCount, packetDeltaCount
		{4, 1}, {5, 1}, {6, 1}, // protocolIdentifier, ipClassOfService, tcpControlBits
		{7, 2}, {8, 4}, {10, 4}, // sourceTransportPort, sourceIPv4Address, ingressInterface
		{11, 2}, {12, 4}, {14, 4}, // destinationTransportPort, destinationIPv4Address, egressInterface
		{152, 8}, {153, 8}, {136, 1}, // flowStartMilliseconds, flowEndMilliseconds, flowEndReason
	}
)

// appendTemplateSet appends a template set (v9 flowset id 0, IPFIX set id 2).
func appendTemplateSet(b []byte, setID uint16, fields []field) []byte {
	b = be16(b, setID)
	b = be16(b, uint16(setHeaderBytes+4+4*len(fields)))
	b = be16(b, templateID)
	b = be16(b, uint16(len(fields)))
	for _, f := range fields {
		b = be16(b, f.id)
		b = be16(b, f.length)
	}
	return b
}

// appendCommon appends the fields v9 and IPFIX records share, up to the
// times, in template order.
func appendCommon(b []byte, f *Flow) []byte {
	b = be64(b, f.Bytes)
	b = be64(b, f.Packets)
	b = append(b, f.Proto, f.Tos, f.TCPFlags)
	b = be16(b, f.SrcPort)
	b = append(b, f.Src[:]...)
	b = be32(b, f.InIf)
	b = be16(b, f.DstPort)
	b = append(b, f.Dst[:]...)
	return be32(b, f.OutIf)
}

func (e *Exporter) appendV9(b []byte, now time.Time, run uint16, first uint32, n int) []byte {
	nowMs := uint64(now.UnixMilli())
	up := e.uptimeMs(nowMs)
	start := len(b)
	count := n
	b = be16(b, 9)
	b = be16(b, 0) // count, set below
	b = be32(b, up)
	b = be32(b, uint32(now.Unix()))
	b = be32(b, e.datagrams)
	b = be32(b, e.cfg.Domain)
	if e.templateDue(now) {
		b = appendTemplateSet(b, 0, v9Fields)
		count++
	}
	set := len(b)
	b = be16(b, templateID)
	b = be16(b, 0) // length, set below
	for i := range n {
		f := MakeFlow(run, first+uint32(i), nowMs)
		b = appendCommon(b, &f)
		b = be32(b, up-uint32(nowMs-f.EndMs))
		b = be32(b, up-uint32(nowMs-f.StartMs))
	}
	for (len(b)-set)%4 != 0 {
		b = append(b, 0)
	}
	binary.BigEndian.PutUint16(b[start+2:], uint16(count))
	binary.BigEndian.PutUint16(b[set+2:], uint16(len(b)-set))
	return b
}

func (e *Exporter) appendIPFIX(b []byte, now time.Time, run uint16, first uint32, n int) []byte {
	nowMs := uint64(now.UnixMilli())
	start := len(b)
	b = be16(b, 10)
	b = be16(b, 0) // length, set below
	b = be32(b, uint32(now.Unix()))
	b = be32(b, e.records)
	b = be32(b, e.cfg.Domain)
	if e.templateDue(now) {
		b = appendTemplateSet(b, 2, ipfixFields)
	}
	set := len(b)
	b = be16(b, templateID)
	b = be16(b, 0) // length, set below
	for i := range n {
		f := MakeFlow(run, first+uint32(i), nowMs)
		b = appendCommon(b, &f)
		b = be64(b, f.StartMs)
		b = be64(b, f.EndMs)
		b = append(b, 3) // flowEndReason: end of flow detected
	}
	binary.BigEndian.PutUint16(b[set+2:], uint16(len(b)-set))
	binary.BigEndian.PutUint16(b[start+2:], uint16(len(b)-start))
	return b
}

// appendSFlow appends an sFlow v5 datagram of n flow samples, each the
// headers of one sampled packet of the flow (sampling rate 1).
func (e *Exporter) appendSFlow(b []byte, now time.Time, run uint16, first uint32, n int) []byte {
	nowMs := uint64(now.UnixMilli())
	agent := e.cfg.Agent.As4()
	b = be32(b, 5)
	b = be32(b, 1) // agent address type: IPv4
	b = append(b, agent[:]...)
	b = be32(b, e.cfg.Domain)
	b = be32(b, e.datagrams)
	b = be32(b, e.uptimeMs(nowMs))
	b = be32(b, uint32(n))
	for i := range n {
		seq := first + uint32(i)
		f := MakeFlow(run, seq, nowMs)
		sample := len(b)
		b = be32(b, 1) // enterprise 0, format 1: flow sample
		b = be32(b, 0) // length, set below
		b = be32(b, e.records+uint32(i))
		b = be32(b, f.InIf) // source id: class 0, ifIndex
		b = be32(b, 1)      // sampling rate
		b = be32(b, e.records+uint32(i)+1)
		b = be32(b, 0) // drops
		b = be32(b, f.InIf)
		b = be32(b, f.OutIf)
		b = be32(b, 1) // one record
		rec := len(b)
		b = be32(b, 1) // enterprise 0, format 1: raw packet header
		b = be32(b, 0) // length, set below
		b = be32(b, 1) // header protocol: Ethernet
		frame := uint32(f.Bytes / f.Packets)
		b = be32(b, frame+4) // frame length on the wire, FCS included
		b = be32(b, 4)       // bytes stripped: the FCS
		hdr := len(b)
		b = be32(b, 0) // header length, set below
		h := len(b)
		b = appendHeaders(b, &f, frame)
		binary.BigEndian.PutUint32(b[hdr:], uint32(len(b)-h))
		for (len(b)-h)%4 != 0 {
			b = append(b, 0)
		}
		binary.BigEndian.PutUint32(b[rec+4:], uint32(len(b)-rec-8))
		binary.BigEndian.PutUint32(b[sample+4:], uint32(len(b)-sample-8))
	}
	return b
}

// appendHeaders appends the Ethernet, IPv4 and TCP or UDP headers of a
// packet of the flow whose frame is frame bytes long.
func appendHeaders(b []byte, f *Flow, frame uint32) []byte {
	b = append(b, 0, 0, 0x5e, 0, 0, 2, 0, 0, 0x5e, 0, 0, 1, 0x08, 0x00)
	ip := len(b)
	total := uint16(frame - 14)
	b = append(b, 0x45, f.Tos, byte(total>>8), byte(total), 0, 0, 0x40, 0, 64, f.Proto, 0, 0)
	b = append(b, f.Src[:]...)
	b = append(b, f.Dst[:]...)
	binary.BigEndian.PutUint16(b[ip+10:], checksum(b[ip:ip+20]))
	b = be16(b, f.SrcPort)
	b = be16(b, f.DstPort)
	if f.Proto == 17 {
		b = be16(b, total-20)
		return be16(b, 0) // no checksum
	}
	b = be32(b, 1) // sequence
	b = be32(b, 0) // acknowledgement
	b = append(b, 5<<4, f.TCPFlags)
	b = be16(b, 65535)           // window
	return append(b, 0, 0, 0, 0) // checksum, urgent pointer
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

func be16(b []byte, v uint16) []byte { return binary.BigEndian.AppendUint16(b, v) }
func be32(b []byte, v uint32) []byte { return binary.BigEndian.AppendUint32(b, v) }
func be64(b []byte, v uint64) []byte { return binary.BigEndian.AppendUint64(b, v) }
