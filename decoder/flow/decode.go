// Package flow decodes NetFlow v5, v9, IPFIX and sFlow v5 datagrams into
// flow records (proto.Flow) and interface counters, with goflow2's decoders
// and templates kept per exporter address and observation domain. Decoding is a pure function of the
// datagram and the template store: no I/O, no globals.
package flow

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/netsampler/goflow2/v2/decoders/netflow"
	"github.com/netsampler/goflow2/v2/decoders/netflowlegacy"

	pb "github.com/flowgate/flowgate/proto"
)

// Errors a datagram can be refused with; Decode wraps them with details.
var (
	ErrMalformed = errors.New("malformed datagram")
	ErrVersion   = errors.New("unknown export version")
)

// Result says what one datagram held.
type Result struct {
	// Flows is the number of flow records appended.
	Flows int
	// MissingTemplate counts data sets skipped because their template has
	// not arrived (yet) from this exporter and domain.
	MissingTemplate int
	// Counters is the number of interface counter records appended (sFlow).
	Counters int
}

// Decoder decodes datagrams of one worker. It is not safe for concurrent
// use; decoders share a Templates store.
type Decoder struct {
	templates *Templates
	view      exporterTemplates
	v5        netflowlegacy.PacketNetFlowV5
	v9        netflow.NFv9Packet
	ipfix     netflow.IPFIXPacket
	reader    bytes.Buffer
}

// NewDecoder returns a decoder over a template store.
func NewDecoder(t *Templates) *Decoder {
	return &Decoder{templates: t, view: exporterTemplates{store: t}}
}

const (
	v5HeaderBytes  = 24
	v5RecordBytes  = 48
	v5MaxRecords   = 30
	v9HeaderBytes  = 20
	ipfixHdrBytes  = 16
	minDatagramLen = 4
)

// Decode appends the flow records of one datagram from exporter to batch.
// A datagram that cannot be decoded appends nothing and returns an error
// wrapping ErrMalformed or ErrVersion.
func (d *Decoder) Decode(data []byte, exporter netip.Addr, received time.Time, batch *pb.Batch) (Result, error) {
	if len(data) < minDatagramLen {
		return Result{}, fmt.Errorf("%w: %d bytes", ErrMalformed, len(data))
	}
	exporter = exporter.Unmap()
	start := len(batch.Flows)
	var res Result
	var err error
	switch version := binary.BigEndian.Uint16(data); version {
	case 5:
		res, err = d.decodeV5(data, exporter, received, batch)
	case 9, 10:
		res, err = d.decodeTemplated(data, version, exporter, received, batch)
	default:
		return Result{}, fmt.Errorf("%w %d", ErrVersion, version)
	}
	if err != nil {
		batch.Flows = batch.Flows[:start]
		return Result{}, err
	}
	return res, nil
}

func (d *Decoder) decodeV5(data []byte, exporter netip.Addr, received time.Time, batch *pb.Batch) (Result, error) {
	if len(data) < v5HeaderBytes {
		return Result{}, fmt.Errorf("%w: NetFlow v5 header needs %d bytes, got %d", ErrMalformed, v5HeaderBytes, len(data))
	}
	count := int(binary.BigEndian.Uint16(data[2:]))
	if count > v5MaxRecords || len(data) < v5HeaderBytes+count*v5RecordBytes {
		return Result{}, fmt.Errorf("%w: NetFlow v5 says %d records in %d bytes", ErrMalformed, count, len(data))
	}
	d.reader.Reset()
	d.reader.Write(data)
	p := &d.v5
	if err := netflowlegacy.DecodeMessageVersion(&d.reader, p); err != nil {
		return Result{}, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	exportMs := uint64(p.UnixSecs)*1000 + uint64(p.UnixNSecs)/1e6
	// The v5 header packs the sampling mode in the top 2 bits.
	rate := uint64(p.SamplingInterval & 0x3fff)
	receivedNs := uint64(received.UnixNano())
	for i := range p.Records {
		r := &p.Records[i]
		f := appendFlow(batch)
		f.Type = pb.FlowType_NETFLOW_V5
		f.TimeReceivedNs = receivedNs
		f.Exporter = exporter.AsSlice()
		f.SrcAddr = be32(uint32(r.SrcAddr))
		f.DstAddr = be32(uint32(r.DstAddr))
		f.NextHop = be32(uint32(r.NextHop))
		f.InIf, f.OutIf = uint32(r.Input), uint32(r.Output)
		f.Packets, f.Bytes = uint64(r.DPkts), uint64(r.DOctets)
		f.StartUptimeMs, f.EndUptimeMs = r.First, r.Last
		f.StartMs = uptimeToUnix(exportMs, p.SysUptime, r.First)
		f.EndMs = uptimeToUnix(exportMs, p.SysUptime, r.Last)
		f.SrcPort, f.DstPort = uint32(r.SrcPort), uint32(r.DstPort)
		f.TcpFlags, f.Proto, f.Tos = uint32(r.TCPFlags), uint32(r.Proto), uint32(r.Tos)
		f.SrcAs, f.DstAs = uint32(r.SrcAS), uint32(r.DstAS)
		f.SequenceNum = p.FlowSequence
		f.SrcMask, f.DstMask = uint32(r.SrcMask), uint32(r.DstMask)
		f.IpVersion = 4
		f.Present = v5Present
		if rate > 0 {
			f.SamplingRate = rate
			f.Present |= bit(pb.Field_SAMPLING)
		}
	}
	return Result{Flows: len(p.Records)}, nil
}

// v5Present is every field a NetFlow v5 record carries.
var v5Present = bits(pb.Field_SRC_ADDR, pb.Field_DST_ADDR, pb.Field_NEXT_HOP, pb.Field_IN_IF,
	pb.Field_OUT_IF, pb.Field_PACKETS, pb.Field_BYTES, pb.Field_START, pb.Field_END,
	pb.Field_START_UPTIME, pb.Field_END_UPTIME, pb.Field_SRC_PORT, pb.Field_DST_PORT,
	pb.Field_TCP_FLAGS, pb.Field_PROTO, pb.Field_TOS, pb.Field_SRC_AS, pb.Field_DST_AS,
	pb.Field_SRC_MASK, pb.Field_DST_MASK, pb.Field_IP_VERSION)

// header is what the export header of v9 or IPFIX tells about times.
type header struct {
	version  uint16
	domain   uint32
	sequence uint32
	exportMs uint64
	// uptimeMs is the exporter's uptime at export (v9 only).
	uptimeMs uint32
}

func (d *Decoder) decodeTemplated(data []byte, version uint16, exporter netip.Addr, received time.Time, batch *pb.Batch) (Result, error) {
	var h header
	var sets []any
	d.view.exporter = exporter
	d.reader.Reset()
	d.reader.Write(data)
	var derr error
	if version == 9 {
		if len(data) < v9HeaderBytes {
			return Result{}, fmt.Errorf("%w: NetFlow v9 header needs %d bytes, got %d", ErrMalformed, v9HeaderBytes, len(data))
		}
		if err := checkTemplateSets(data, version); err != nil {
			return Result{}, err
		}
		p := &d.v9
		derr = netflow.DecodeMessageVersion(&d.reader, &d.view, p, nil)
		h = header{version: 9, domain: p.SourceId, sequence: p.SequenceNumber, exportMs: uint64(p.UnixSeconds) * 1000, uptimeMs: p.SystemUptime}
		sets = p.FlowSets
	} else {
		if len(data) < ipfixHdrBytes {
			return Result{}, fmt.Errorf("%w: IPFIX header needs %d bytes, got %d", ErrMalformed, ipfixHdrBytes, len(data))
		}
		if n := int(binary.BigEndian.Uint16(data[2:])); n != len(data) {
			return Result{}, fmt.Errorf("%w: IPFIX length says %d bytes, datagram has %d", ErrMalformed, n, len(data))
		}
		if err := checkTemplateSets(data, version); err != nil {
			return Result{}, err
		}
		p := &d.ipfix
		derr = netflow.DecodeMessageVersion(&d.reader, &d.view, nil, p)
		h = header{version: 10, domain: p.ObservationDomainId, sequence: p.SequenceNumber, exportMs: uint64(p.ExportTime) * 1000}
		sets = p.FlowSets
	}
	if derr != nil && !errors.Is(derr, netflow.ErrorTemplateNotFound) {
		return Result{}, fmt.Errorf("%w: %w", ErrMalformed, derr)
	}
	sk := sessionKey{exporter, h.version, h.domain}
	var res Result
	// Option data comes first in the datagram when the exporter sends it
	// with the flows; apply it before the data sets that follow.
	for _, set := range sets {
		switch s := set.(type) {
		case netflow.OptionsDataFlowSet:
			d.applyOptions(sk, s.Records)
		case netflow.DataFlowSet:
			st := d.templates.session(sk)
			for _, rec := range s.Records {
				f := appendFlow(batch)
				fillTemplated(f, rec.Values, &h, &st, exporter, received)
				f.SequenceNum = h.sequence
				res.Flows++
			}
		case netflow.RawFlowSet:
			if s.Id >= 256 {
				res.MissingTemplate++
			}
		}
	}
	return res, nil
}

// applyOptions keeps what option data says about the exporter's domain:
// the system init time and the sampling interval.
func (d *Decoder) applyOptions(sk sessionKey, records []netflow.OptionsDataRecord) {
	for _, rec := range records {
		var sysInit, rate uint64
		for _, v := range rec.OptionsValues {
			b, _ := v.Value.([]byte)
			if v.PenProvided || len(b) == 0 || len(b) > 8 {
				continue
			}
			switch v.Type {
			case ieSystemInitTimeMilliseconds:
				sysInit = beUint(b)
			case ieSamplingInterval, ieSamplingPacketInterval:
				rate = beUint(b)
			}
		}
		if sysInit == 0 && rate == 0 {
			continue
		}
		d.templates.updateSession(sk, func(s *session) {
			if sysInit != 0 {
				s.sysInitMs = sysInit
			}
			if rate != 0 {
				s.samplingRate = rate
			}
		})
	}
}

// appendFlow returns the next flow of batch, reusing one left from an
// earlier batch when there is one.
func appendFlow(batch *pb.Batch) *pb.Flow {
	n := len(batch.Flows)
	if n < cap(batch.Flows) {
		batch.Flows = batch.Flows[:n+1]
		if f := batch.Flows[n]; f != nil {
			f.Reset()
			return f
		}
	} else {
		batch.Flows = append(batch.Flows, nil)
	}
	f := &pb.Flow{}
	batch.Flows[n] = f
	return f
}

// uptimeToUnix turns an uptime-relative time into Unix milliseconds, given
// the export time and the uptime at export. The difference is taken as a
// signed 32-bit number so that a flow that started before the uptime counter
// wrapped still lands just before the export.
func uptimeToUnix(exportMs uint64, uptimeAtExport, t uint32) uint64 {
	ago := int64(int32(uptimeAtExport - t))
	return uint64(int64(exportMs) - ago)
}

func bit(f pb.Field) uint64 { return 1 << uint(f) }

func bits(fs ...pb.Field) uint64 {
	var b uint64
	for _, f := range fs {
		b |= bit(f)
	}
	return b
}

func be32(v uint32) []byte {
	return []byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}
}

// beUint reads a big-endian unsigned number of 1 to 8 bytes (reduced-size
// encoding sends counters in fewer bytes than their type).
func beUint(b []byte) uint64 {
	var v uint64
	for _, c := range b {
		v = v<<8 | uint64(c)
	}
	return v
}
