// Package flow decodes NetFlow v5, v9, IPFIX and sFlow v5 datagrams into
// flow records (proto.Flow) and interface counters (sFlow). Templates and option-data state are kept per exporter
// address and observation domain (Templates), and can be persisted and
// shared through a Store. Decoding is a pure function of the datagram and
// that state: no I/O, no globals. Data sets are decoded by our own loop
// over goflow2's field descriptions, straight into the record: one odd
// field, a padding or a set cut short never spoils the rest of the
// datagram, and no value is boxed on the way.
package flow

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/flowgate/flowgate/decoder/flow/ie"
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
	// BadSets counts sets (or their ends) skipped as malformed; what came
	// before them in the datagram was kept.
	BadSets int
	// RefusedTemplates counts templates not kept: the exporter has too many.
	RefusedTemplates int
	// LostRecords (v5, IPFIX) and LostDatagrams (v9) are what the
	// exporter's sequence numbers say was sent and never arrived before
	// this datagram.
	LostRecords   uint64
	LostDatagrams uint64
}

// Decoder decodes datagrams of one worker. It is not safe for concurrent
// use; decoders share a Templates store. Each exporter's datagrams must
// reach one decoder, in order: it follows their sequence numbers.
type Decoder struct {
	templates *Templates
	streams   map[sessionKey]*stream
	// updates is reused for the option records of a set.
	updates []sessionUpdate
	// reader is reused to hand sFlow records to goflow2's record decoders.
	reader bytes.Buffer
}

// NewDecoder returns a decoder over a template store.
func NewDecoder(t *Templates) *Decoder {
	return &Decoder{templates: t, streams: map[sessionKey]*stream{}}
}

const (
	v5HeaderBytes  = 24
	v5RecordBytes  = 48
	v5MaxRecords   = 30
	v9HeaderBytes  = 20
	ipfixHdrBytes  = 16
	setHeaderBytes = 4
	minDatagramLen = 4
	// minV9Alias is the lowest NetFlow v9 type ie.V9Alias maps.
	minV9Alias = 40000
)

// Decode appends the flow records of one datagram from exporter to batch.
// A datagram whose header cannot be read appends nothing and returns an
// error wrapping ErrMalformed or ErrVersion.
func (d *Decoder) Decode(data []byte, exporter netip.Addr, received time.Time, batch *pb.Batch) (Result, error) {
	if len(data) < minDatagramLen {
		return Result{}, fmt.Errorf("%w: %d bytes", ErrMalformed, len(data))
	}
	exporter = exporter.Unmap()
	switch version := binary.BigEndian.Uint16(data); version {
	case 5:
		return d.decodeV5(data, exporter, received, batch)
	case 9, 10:
		return d.decodeTemplated(data, version, exporter, received, batch)
	default:
		return Result{}, fmt.Errorf("%w %d", ErrVersion, version)
	}
}

func (d *Decoder) decodeV5(data []byte, exporter netip.Addr, received time.Time, batch *pb.Batch) (Result, error) {
	if len(data) < v5HeaderBytes {
		return Result{}, fmt.Errorf("%w: NetFlow v5 header needs %d bytes, got %d", ErrMalformed, v5HeaderBytes, len(data))
	}
	be := binary.BigEndian
	count := int(be.Uint16(data[2:]))
	if count > v5MaxRecords || len(data) < v5HeaderBytes+count*v5RecordBytes {
		return Result{}, fmt.Errorf("%w: NetFlow v5 says %d records in %d bytes", ErrMalformed, count, len(data))
	}
	uptime := be.Uint32(data[4:])
	exportMs := uint64(be.Uint32(data[8:]))*1000 + uint64(be.Uint32(data[12:]))/1e6
	seq := be.Uint32(data[16:])
	engine := uint32(be.Uint16(data[20:]))
	// The top 2 bits of the sampling field are the mode.
	rate := uint64(be.Uint16(data[22:]) & 0x3fff)
	receivedNs := uint64(received.UnixNano())
	addrs := newArena(4 + count*12)
	exp := addrs.clone(exporter.AsSlice())
	for i := range count {
		r := data[v5HeaderBytes+i*v5RecordBytes:]
		f := appendFlow(batch)
		f.Type = pb.FlowType_NETFLOW_V5
		f.TimeReceivedNs = receivedNs
		f.Exporter = exp
		f.SequenceNum = seq
		f.SrcAddr = addrs.clone(r[0:4])
		f.DstAddr = addrs.clone(r[4:8])
		f.NextHop = addrs.clone(r[8:12])
		f.InIf, f.OutIf = uint32(be.Uint16(r[12:])), uint32(be.Uint16(r[14:]))
		f.Packets, f.Bytes = uint64(be.Uint32(r[16:])), uint64(be.Uint32(r[20:]))
		f.StartUptimeMs, f.EndUptimeMs = be.Uint32(r[24:]), be.Uint32(r[28:])
		f.StartMs = uptimeToUnix(exportMs, uptime, f.StartUptimeMs)
		f.EndMs = uptimeToUnix(exportMs, uptime, f.EndUptimeMs)
		f.SrcPort, f.DstPort = uint32(be.Uint16(r[32:])), uint32(be.Uint16(r[34:]))
		f.TcpFlags, f.Proto, f.Tos = uint32(r[37]), uint32(r[38]), uint32(r[39])
		f.SrcAs, f.DstAs = uint32(be.Uint16(r[40:])), uint32(be.Uint16(r[42:]))
		f.SrcMask, f.DstMask = uint32(r[44]), uint32(r[45])
		f.IpVersion = 4
		f.Present = v5Present
		if rate > 0 {
			f.SamplingRate = rate
			f.Present |= bit(pb.Field_SAMPLING)
		}
	}
	lost := d.stream(sessionKey{exporter, 5, engine}).records(seq, uint32(count), uint32(count))
	return Result{Flows: count, LostRecords: uint64(lost)}, nil
}

// v5Present is every field a NetFlow v5 record carries.
var v5Present = bits(pb.Field_SRC_ADDR, pb.Field_DST_ADDR, pb.Field_NEXT_HOP, pb.Field_IN_IF,
	pb.Field_OUT_IF, pb.Field_PACKETS, pb.Field_BYTES, pb.Field_START, pb.Field_END,
	pb.Field_START_UPTIME, pb.Field_END_UPTIME, pb.Field_SRC_PORT, pb.Field_DST_PORT,
	pb.Field_TCP_FLAGS, pb.Field_PROTO, pb.Field_TOS, pb.Field_SRC_AS, pb.Field_DST_AS,
	pb.Field_SRC_MASK, pb.Field_DST_MASK, pb.Field_IP_VERSION)

// header is what the export header of v9 or IPFIX says.
type header struct {
	version  uint16
	domain   uint32
	seq      uint32
	exportMs uint64
	// uptimeMs is the exporter's uptime at export (v9 only).
	uptimeMs uint32
}

// message is the state of one v9 or IPFIX datagram being decoded.
type message struct {
	h        header
	exporter netip.Addr
	exp      []byte // the exporter's address, shared by the datagram's records
	addrs    arena
	// elements holds the records' other elements (Flow.elements), one
	// record after the other; nil until a record has one.
	elements []byte
	// derive is the records' scratch for derived fields (derive.go).
	derive     derived
	receivedNs uint64
	sk         sessionKey
	st         *session
	batch      *pb.Batch
	res        Result
	// all and flows count the data records decoded, with and without
	// option records, for the sequence numbers; complete is false once a
	// data set could not be counted.
	all, flows uint32
	complete   bool
}

func (d *Decoder) decodeTemplated(data []byte, version uint16, exporter netip.Addr, received time.Time, batch *pb.Batch) (Result, error) {
	be := binary.BigEndian
	m := message{exporter: exporter, receivedNs: uint64(received.UnixNano()), batch: batch, complete: true}
	var body []byte
	if version == 9 {
		if len(data) < v9HeaderBytes {
			return Result{}, fmt.Errorf("%w: NetFlow v9 header needs %d bytes, got %d", ErrMalformed, v9HeaderBytes, len(data))
		}
		m.h = header{version: 9, uptimeMs: be.Uint32(data[4:]), exportMs: uint64(be.Uint32(data[8:])) * 1000,
			seq: be.Uint32(data[12:]), domain: be.Uint32(data[16:])}
		body = data[v9HeaderBytes:]
	} else {
		if len(data) < ipfixHdrBytes {
			return Result{}, fmt.Errorf("%w: IPFIX header needs %d bytes, got %d", ErrMalformed, ipfixHdrBytes, len(data))
		}
		n := int(be.Uint16(data[2:]))
		if n < ipfixHdrBytes || n > len(data) {
			return Result{}, fmt.Errorf("%w: IPFIX length says %d bytes, datagram has %d", ErrMalformed, n, len(data))
		}
		m.h = header{version: 10, exportMs: uint64(be.Uint32(data[4:])) * 1000,
			seq: be.Uint32(data[8:]), domain: be.Uint32(data[12:])}
		body = data[ipfixHdrBytes:n]
	}
	m.addrs = newArena(len(data))
	m.exp = m.addrs.clone(exporter.AsSlice())
	m.sk = sessionKey{exporter, version, m.h.domain}
	m.st = d.templates.session(m.sk)
	for len(body) > 0 {
		if len(body) < setHeaderBytes {
			// v9 pads the datagram's end.
			if !allZero(body) {
				m.res.BadSets++
			}
			break
		}
		id, n := be.Uint16(body), int(be.Uint16(body[2:]))
		if n < setHeaderBytes || n > len(body) {
			m.res.BadSets++
			m.complete = false
			break
		}
		set := body[setHeaderBytes:n]
		body = body[n:]
		switch {
		case id >= minDataSetID:
			d.dataSet(&m, id, set)
		case version == 9 && (id == setV9Template || id == setV9OptionsTemplate),
			version == 10 && (id == setIPFIXTemplate || id == setIPFIXOptionsTemplate):
			d.templateSet(&m, id, set)
		}
		// Other set ids are reserved: skipped.
	}
	s := d.stream(m.sk)
	switch {
	case version == 9:
		m.res.LostDatagrams = uint64(s.packet(m.h.seq))
	case m.complete:
		m.res.LostRecords = uint64(s.records(m.h.seq, m.all, m.flows))
	default:
		// Records went uncounted: start again from the next datagram.
		s.valid = false
	}
	return m.res, nil
}

// templateSet stores the templates of a set and applies its withdrawals.
func (d *Decoder) templateSet(m *message, setID uint16, set []byte) {
	for len(set) >= setHeaderBytes {
		k := templateKey{m.exporter, m.h.version, m.h.domain, binary.BigEndian.Uint16(set)}
		// Exporters resend their templates every few packets: one that is
		// unchanged is skipped without being parsed again.
		if old := d.templates.get(k); old != nil && old.setID == setID && len(set) >= len(old.raw) && string(set[:len(old.raw)]) == string(old.raw) {
			set = set[len(old.raw):]
			continue
		}
		p, err := parseTemplate(m.h.version, setID, set)
		if err != nil {
			// Sets end with padding; anything else is a bad record, and
			// what follows it cannot be found.
			if !allZero(set) {
				m.res.BadSets++
			}
			return
		}
		set = set[p.n:]
		if p.tm == nil {
			d.templates.withdraw(k, setID, p.all)
			continue
		}
		if err := d.templates.add(k, p.tm); err != nil {
			m.res.RefusedTemplates++
		}
	}
}

// dataSet decodes the records of a data set: flows, or option data.
func (d *Decoder) dataSet(m *message, id uint16, set []byte) {
	tm := d.templates.get(templateKey{m.exporter, m.h.version, m.h.domain, id})
	if tm == nil {
		m.res.MissingTemplate++
		m.complete = false
		return
	}
	// What option records say applies once the set is read, under one lock.
	updates := d.updates[:0]
	defer func() {
		if len(updates) > 0 {
			if st := d.templates.updateSession(m.sk, updates); st != nil {
				m.st = st
			}
		}
		d.updates = updates[:0]
	}()
	// Padding is shorter than any record (RFC 7011 section 3.3.1).
	for len(set) >= tm.minBytes {
		var n int
		var ok bool
		if tm.options() {
			var u sessionUpdate
			if n, u, ok = m.optionsRecord(tm, set); ok && (u.sysInitMs != 0 || u.rate != 0) {
				updates = append(updates, u)
			}
		} else {
			n, ok = m.flowRecord(tm, set)
		}
		if !ok {
			if !allZero(set) {
				m.res.BadSets++
			}
			return
		}
		set = set[n:]
		m.all++
		if !tm.options() {
			m.flows++
		}
	}
}

// flowRecord decodes one flow record at the start of b and returns its
// length; ok is false (and nothing appended) when b cuts it short.
func (m *message) flowRecord(tm *template, b []byte) (int, bool) {
	start := len(m.batch.Flows)
	f := appendFlow(m.batch)
	r := record{arena: &m.addrs, derive: &m.derive}
	elemStart := len(m.elements)
	rest := b
	for i := range tm.fields {
		fd := &tm.fields[i]
		v, next, ok := nextValue(fd, rest)
		if !ok {
			m.batch.Flows = m.batch.Flows[:start]
			m.elements = m.elements[:elemStart]
			m.derive.have = 0
			return 0, false
		}
		rest = next
		if fd.PenProvided {
			m.elements = pb.AppendElement(m.elements, fd.Pen, fd.Type, v)
			continue
		}
		typ := fd.Type
		if typ >= minV9Alias && m.h.version == 9 {
			typ = ie.V9Alias(typ)
		}
		// Elements with no field of their own travel with the record, to
		// be named when the event is written.
		if !setField(f, &r, typ, v) {
			m.elements = pb.AppendElement(m.elements, 0, typ, v)
		}
	}
	if len(m.elements) > elemStart {
		f.Elements = m.elements[elemStart:len(m.elements):len(m.elements)]
	}
	if m.h.version == 9 {
		f.Type = pb.FlowType_NETFLOW_V9
	} else {
		f.Type = pb.FlowType_IPFIX
	}
	f.TimeReceivedNs = m.receivedNs
	f.Exporter = m.exp
	f.SequenceNum = m.h.seq
	f.ObservationDomainId = m.h.domain
	r.present |= bit(pb.Field_OBSERVATION_DOMAIN)
	finish(f, &r, &m.h, m.st)
	m.res.Flows++
	return len(b) - len(rest), true
}

// optionsRecord reads one option data record at the start of b for what
// it says of the domain: the system init time, and sampling rates, of the
// whole domain or of one sampler.
func (m *message) optionsRecord(tm *template, b []byte) (int, sessionUpdate, bool) {
	var u sessionUpdate
	var s sampling
	rest := b
	for i := range tm.fields {
		fd := &tm.fields[i]
		v, next, ok := nextValue(fd, rest)
		if !ok {
			return 0, u, false
		}
		rest = next
		// v9 scope fields are typed System, Interface, ... (RFC 3954
		// section 6.1), not elements.
		if fd.PenProvided || (m.h.version == 9 && i < tm.scopes) {
			continue
		}
		if fd.Type == ieSystemInitTimeMilliseconds {
			if len(v) > 0 && len(v) <= 8 {
				u.sysInitMs = beUint(v)
			}
			continue
		}
		s.read(fd.Type, v)
	}
	u.rate, u.samplerID, u.hasSampler = s.rate(), s.samplerID, s.hasSampler
	return len(b) - len(rest), u, true
}

// stream returns the sequence state of an exporter domain.
func (d *Decoder) stream(k sessionKey) *stream {
	s := d.streams[k]
	if s == nil {
		if len(d.streams) >= maxStreams {
			clear(d.streams)
		}
		s = &stream{}
		d.streams[k] = s
	}
	return s
}

// appendFlow returns the next flow of batch, reusing one left from an
// earlier batch when there is one.
func appendFlow(batch *pb.Batch) *pb.Flow {
	n := len(batch.Flows)
	if n < cap(batch.Flows) {
		batch.Flows = batch.Flows[:n+1]
		if f := batch.Flows[n]; f != nil {
			// A zero Flow, as new(pb.Flow) gives: Reset would also store
			// its reflection state, which is set when first needed anyway.
			*f = pb.Flow{}
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

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
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
