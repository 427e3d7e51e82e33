package flow

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"time"

	"github.com/netsampler/goflow2/v2/decoders/sflow"

	pb "github.com/flowgate/flowgate/proto"
)

// sFlow v5 structure numbers (sflow.org SFLOW-DATAGRAM5 and SFLOW-STRUCTS5),
// enterprise 0. goflow2 decodes the records but two: sampled Ethernet, which
// it reads without XDR's padding, and the sampled header, nearly every
// flow's record, which it copies and boxes. The datagram and sample framing
// is walked here so that one bad record or an unknown sample kind does not
// lose the rest of the datagram, and so that no count read from the wire
// sizes an allocation (goflow2's expanded flow sample does).
const (
	sflowVersion = 5

	sampleFlow            = 1
	sampleCounters        = 2
	sampleFlowExpanded    = 3
	sampleCountersExpand  = 4
	recordSampledHeader   = 1
	recordSampledEthernet = 2
	recordSampledIPv4     = 3
	recordSampledIPv6     = 4
	recordExtendedSwitch  = 1001
	recordExtendedRouter  = 1002
	recordExtendedGateway = 1003
	recordGenericCounters = 1

	// ifIndexNone is the interface value saying the packet did not enter
	// (or leave) through an interface: it came from, or went to, the agent.
	ifIndexNone = 0x3fffffff
	// sflowUnknownVLAN marks an extended switch field the agent does not know.
	sflowUnknownVLAN = 0xffffffff

	sflowHeaderBytes = 28 // with an IPv4 agent address
)

// DecodeSFlow appends to batch the flow records and interface counters of
// one sFlow v5 datagram sent from the address from. Each flow sample
// becomes one flow: octetDeltaCount is the sampled frame's length,
// packetDeltaCount 1, and the sample's rate is the sampling rate (enrich
// scales both). Counter samples with generic interface counters become
// InterfaceCounters. The exporter is the agent address of the datagram
// (from when the agent leaves it unspecified), the observation domain its
// sub-agent ID; sFlow carries no flow times, so a flow starts and ends when
// it was received.
//
// A datagram whose framing is broken appends nothing and returns an error
// wrapping ErrMalformed or ErrVersion. Samples of kinds flowgate does not
// read (drop notifications, enterprise-specific samples) and records goflow2
// cannot decode are skipped; the rest of the datagram still counts.
func (d *Decoder) DecodeSFlow(data []byte, from netip.Addr, received time.Time, batch *pb.Batch) (Result, error) {
	r := xdr{b: data}
	version := r.u32()
	if r.bad {
		return Result{}, fmt.Errorf("%w: %d bytes", ErrMalformed, len(data))
	}
	if version != sflowVersion {
		return Result{}, fmt.Errorf("%w %d (sFlow)", ErrVersion, version)
	}
	dg := sflowDatagram{received: received}
	var agent netip.Addr
	switch t := r.u32(); t {
	case 1:
		agent, _ = netip.AddrFromSlice(r.next(4))
	case 2:
		agent, _ = netip.AddrFromSlice(r.next(16))
	default:
		if !r.bad {
			return Result{}, fmt.Errorf("%w: sFlow agent address type %d unknown", ErrMalformed, t)
		}
	}
	dg.subAgent = r.u32()
	dg.sequence = r.u32()
	r.u32() // uptime: nothing in a sample is relative to it
	samples := r.u32()
	if r.bad {
		return Result{}, fmt.Errorf("%w: sFlow header needs at least %d bytes, got %d", ErrMalformed, sflowHeaderBytes, len(data))
	}
	agent = agent.Unmap()
	if agent.IsUnspecified() {
		agent = from.Unmap()
	}
	// The agent's address and a flow's two, at most 16 bytes each.
	dg.addrs = newArena(min(len(data), 16+32*int(samples)))
	dg.exporter = dg.addrs.clone(agent.AsSlice())

	flows, counters := len(batch.Flows), len(batch.Counters)
	var res Result
	var err error
	for i := range samples {
		format := r.u32()
		body := r.next(int(r.u32()))
		if r.bad {
			err = fmt.Errorf("%w: sFlow sample %d of %d runs past the datagram", ErrMalformed, i+1, samples)
			break
		}
		switch format {
		case sampleFlow, sampleFlowExpanded:
			var ok bool
			if ok, err = d.sflowFlowSample(body, format == sampleFlowExpanded, &dg, batch); ok {
				res.Flows++
			}
		case sampleCounters, sampleCountersExpand:
			var ok bool
			if ok, err = d.sflowCounterSample(body, format == sampleCountersExpand, &dg, batch); ok {
				res.Counters++
			}
		}
		if err != nil {
			err = fmt.Errorf("%w: sFlow sample %d of %d: %w", ErrMalformed, i+1, samples, err)
			break
		}
	}
	if err != nil {
		batch.Flows, batch.Counters = batch.Flows[:flows], batch.Counters[:counters]
		return Result{}, err
	}
	return res, nil
}

// sflowDatagram is what the datagram header says about all its samples,
// and the arena its flows' addresses are copied into, after the exporter's
// (the agent's address, or the sender's when the agent gives none).
type sflowDatagram struct {
	exporter []byte
	subAgent uint32
	sequence uint32
	received time.Time
	addrs    arena
}

// sflowFlowSample appends the flow of one flow sample; ok is false when the
// sample held no packet record (nothing to count).
func (d *Decoder) sflowFlowSample(body []byte, expanded bool, dg *sflowDatagram, batch *pb.Batch) (ok bool, err error) {
	r := xdr{b: body}
	r.u32() // sample sequence number
	r.u32() // source ID (type and index)
	if expanded {
		r.u32()
	}
	rate := r.u32()
	r.u32() // sample pool
	r.u32() // drops
	var inFormat, in, outFormat, out uint32
	if expanded {
		inFormat, in, outFormat, out = r.u32(), r.u32(), r.u32(), r.u32()
	} else {
		v := r.u32()
		inFormat, in = v>>30, v&ifIndexNone
		v = r.u32()
		outFormat, out = v>>30, v&ifIndexNone
	}
	records := r.u32()
	if r.bad {
		return false, fmt.Errorf("flow sample of %d bytes is too short", len(body))
	}

	f := appendFlow(batch)
	f.Type = pb.FlowType_SFLOW_5
	f.TimeReceivedNs = uint64(dg.received.UnixNano())
	f.Exporter = dg.exporter
	f.ObservationDomainId = dg.subAgent
	f.SequenceNum = dg.sequence
	ms := uint64(dg.received.UnixMilli())
	f.StartMs, f.EndMs = ms, ms
	f.Packets = 1
	p := bits(pb.Field_OBSERVATION_DOMAIN, pb.Field_START, pb.Field_END, pb.Field_PACKETS)
	if rate > 0 {
		f.SamplingRate, p = uint64(rate), p|bit(pb.Field_SAMPLING)
	}
	// Only format 0 is an ifIndex; 1 says the packet was dropped (the
	// value is a reason), 2 that it went out of several interfaces.
	if inFormat == 0 && in != ifIndexNone {
		f.InIf, p = in, p|bit(pb.Field_IN_IF)
	}
	if outFormat == 0 && out != ifIndexNone {
		f.OutIf, p = out, p|bit(pb.Field_OUT_IF)
	}
	// packet is set once a record described the sampled packet; frame
	// once one gave its frame length, which wins over a sampled IP record's
	// IP length whatever their order.
	packet, frame := false, false
	for i := range records {
		format := r.u32()
		rec := r.next(int(r.u32()))
		if r.bad { // DecodeSFlow drops what the datagram appended
			return false, fmt.Errorf("flow record %d of %d runs past the sample", i+1, records)
		}
		switch format {
		case recordSampledEthernet:
			// goflow2 reads the two MACs unpadded; XDR pads each to 8 bytes.
			if len(rec) >= 24 {
				packet, frame = true, true
				f.Bytes = uint64(binary.BigEndian.Uint32(rec))
				f.SrcMac, f.DstMac = beUint(rec[4:10]), beUint(rec[12:18])
				f.Etype = binary.BigEndian.Uint32(rec[20:])
				p |= bits(pb.Field_BYTES, pb.Field_SRC_MAC, pb.Field_DST_MAC, pb.Field_ETYPE)
			}
			continue
		case recordSampledHeader:
			// Read here, not by goflow2, whose decoder copies the record and
			// boxes it: with the addresses, 4 allocations a flow where the
			// arena makes 1 a datagram.
			rr := xdr{b: rec}
			protocol, frameLength := rr.u32(), rr.u32()
			rr.u32() // bytes stripped
			n := rr.u32()
			if rr.bad {
				continue
			}
			h := rr.b
			if uint64(n) < uint64(len(h)) {
				h = h[:n] // the rest is XDR's padding
			}
			packet, frame = true, true
			f.Bytes, p = uint64(frameLength), p|bit(pb.Field_BYTES)
			p = parseSampledHeader(f, p, protocol, h, &dg.addrs)
			continue
		case recordSampledIPv4, recordSampledIPv6,
			recordExtendedSwitch, recordExtendedRouter, recordExtendedGateway:
		default:
			continue
		}
		d.reader.Reset()
		d.reader.Write(rec)
		hdr := sflow.RecordHeader{DataFormat: format, Length: uint32(len(rec))}
		fr, err := sflow.DecodeFlowRecord(&hdr, &d.reader)
		if err != nil {
			continue
		}
		switch v := fr.Data.(type) {
		case sflow.SampledIPv4:
			packet = true
			p = sampledIP(f, p, &v.SampledIPBase, 4, frame)
			f.Tos, p = v.Tos, p|bit(pb.Field_TOS)
		case sflow.SampledIPv6:
			packet = true
			p = sampledIP(f, p, &v.SampledIPBase, 6, frame)
			f.Tos, p = v.Priority, p|bit(pb.Field_TOS)
		case sflow.ExtendedSwitch:
			if v.SrcVlan != sflowUnknownVLAN {
				f.Vlan, p = v.SrcVlan, p|bit(pb.Field_VLAN)
			}
			if v.DstVlan != sflowUnknownVLAN {
				f.PostVlan, p = v.DstVlan, p|bit(pb.Field_POST_VLAN)
			}
		case sflow.ExtendedRouter:
			if len(v.NextHop) == 4 || len(v.NextHop) == 16 {
				f.NextHop, p = v.NextHop, p|bit(pb.Field_NEXT_HOP)
			}
			f.SrcMask, f.DstMask = v.SrcMaskLen, v.DstMaskLen
			p |= bits(pb.Field_SRC_MASK, pb.Field_DST_MASK)
		case sflow.ExtendedGateway:
			if len(v.NextHop) == 4 || len(v.NextHop) == 16 {
				f.BgpNextHop, p = v.NextHop, p|bit(pb.Field_BGP_NEXT_HOP)
			}
			// The origin AS ends the path; with no path the router's own
			// AS is the destination's (as goflow2 reads it).
			f.SrcAs, f.DstAs = v.SrcAS, v.AS
			if f.SrcAs == 0 {
				f.SrcAs = v.AS
			}
			if n := len(v.ASPath); n > 0 {
				f.DstAs = v.ASPath[n-1]
			}
			p |= bits(pb.Field_SRC_AS, pb.Field_DST_AS)
		}
	}
	if !packet {
		batch.Flows = batch.Flows[:len(batch.Flows)-1]
		return false, nil
	}
	f.Present = p
	return true, nil
}

// sampledIP sets what a sampled IPv4 or IPv6 record says; its length
// counts unless the frame's is known.
func sampledIP(f *pb.Flow, p uint64, v *sflow.SampledIPBase, version uint32, frame bool) uint64 {
	if !frame {
		f.Bytes = uint64(v.Length)
	}
	f.SrcAddr, f.DstAddr = v.SrcIP, v.DstIP
	f.Proto, f.SrcPort, f.DstPort, f.TcpFlags = v.Protocol, v.SrcPort, v.DstPort, v.TcpFlags
	f.IpVersion = version
	return p | bits(pb.Field_BYTES, pb.Field_SRC_ADDR, pb.Field_DST_ADDR, pb.Field_PROTO,
		pb.Field_SRC_PORT, pb.Field_DST_PORT, pb.Field_TCP_FLAGS, pb.Field_IP_VERSION)
}

// sflowCounterSample appends the interface counters of one counter sample;
// ok is false when it held no generic interface counters (host, CPU or
// other counter blocks flowgate does not ship).
func (d *Decoder) sflowCounterSample(body []byte, expanded bool, dg *sflowDatagram, batch *pb.Batch) (ok bool, err error) {
	r := xdr{b: body}
	r.u32() // sample sequence number
	r.u32() // source ID
	if expanded {
		r.u32()
	}
	records := r.u32()
	if r.bad {
		return false, fmt.Errorf("counter sample of %d bytes is too short", len(body))
	}
	for i := range records {
		format := r.u32()
		rec := r.next(int(r.u32()))
		if r.bad { // DecodeSFlow drops what the datagram appended
			return false, fmt.Errorf("counter record %d of %d runs past the sample", i+1, records)
		}
		if format != recordGenericCounters || ok {
			continue
		}
		d.reader.Reset()
		d.reader.Write(rec)
		hdr := sflow.RecordHeader{DataFormat: format, Length: uint32(len(rec))}
		cr, err := sflow.DecodeCounterRecord(&hdr, &d.reader)
		if err != nil {
			continue
		}
		v, isIf := cr.Data.(sflow.IfCounters)
		if !isIf {
			continue
		}
		ok = true
		c := appendCounters(batch)
		c.Type = pb.FlowType_SFLOW_5
		c.TimeReceivedNs = uint64(dg.received.UnixNano())
		c.Exporter = dg.exporter
		c.ObservationDomainId = dg.subAgent
		c.IfIndex, c.IfType, c.IfSpeed, c.IfDirection, c.IfStatus = v.IfIndex, v.IfType, v.IfSpeed, v.IfDirection, v.IfStatus
		c.InOctets, c.InUcastPkts, c.InMulticastPkts, c.InBroadcastPkts = v.IfInOctets, v.IfInUcastPkts, v.IfInMulticastPkts, v.IfInBroadcastPkts
		c.InDiscards, c.InErrors, c.InUnknownProtos = v.IfInDiscards, v.IfInErrors, v.IfInUnknownProtos
		c.OutOctets, c.OutUcastPkts, c.OutMulticastPkts, c.OutBroadcastPkts = v.IfOutOctets, v.IfOutUcastPkts, v.IfOutMulticastPkts, v.IfOutBroadcastPkts
		c.OutDiscards, c.OutErrors, c.PromiscuousMode = v.IfOutDiscards, v.IfOutErrors, v.IfPromiscuousMode
	}
	return ok, nil
}

// appendCounters returns the next counters record of batch, reusing one
// left from an earlier batch when there is one.
func appendCounters(batch *pb.Batch) *pb.InterfaceCounters {
	n := len(batch.Counters)
	if n < cap(batch.Counters) {
		batch.Counters = batch.Counters[:n+1]
		if c := batch.Counters[n]; c != nil {
			c.Reset()
			return c
		}
	} else {
		batch.Counters = append(batch.Counters, nil)
	}
	c := &pb.InterfaceCounters{}
	batch.Counters[n] = c
	return c
}

// xdr reads the big-endian 32-bit words and opaque runs sFlow is made of.
// Reading past the end sets bad and returns zeros, so that a run of reads
// is checked once.
type xdr struct {
	b   []byte
	bad bool
}

func (r *xdr) u32() uint32 {
	if len(r.b) < 4 {
		r.bad, r.b = true, nil
		return 0
	}
	v := binary.BigEndian.Uint32(r.b)
	r.b = r.b[4:]
	return v
}

// next returns the next n bytes (nil past the end); XDR pads opaque data
// to 4 bytes, and sFlow lengths already include the padding.
func (r *xdr) next(n int) []byte {
	if len(r.b) < n {
		r.bad, r.b = true, nil
		return nil
	}
	v := r.b[:n:n]
	r.b = r.b[n:]
	return v
}
