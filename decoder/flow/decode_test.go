package flow

import (
	"errors"
	"net/netip"
	"path/filepath"
	"testing"

	pb "github.com/flowgate/flowgate/proto"
)

// A small IPv4 flow template and records of it.
var v4Fields = []field{
	f(ieSourceIPv4Address, 4), f(ieDestinationIPv4Address, 4), f(ieSourceTransportPort, 2),
	f(ieDestinationTransportPort, 2), f(ieProtocolIdentifier, 1), f(ieOctetDeltaCount, 8), f(iePacketDeltaCount, 4),
}

func v4Record(src, dst string, sport, dport uint16, proto uint8, octets uint64, packets uint32) []byte {
	return cat(ip(src), ip(dst), u16(sport), u16(dport), u8(proto), u64(octets), u32(packets))
}

func TestDecodeIPFIXTemplateThenData(t *testing.T) {
	d := NewDecoder(NewTemplates())
	dg := msg{version: 10, domain: 7, export: 1_800_000_000, sets: [][]byte{
		set(setIPFIXTemplate, tmpl(300, v4Fields...)),
		set(300, cat(v4Record("10.0.0.1", "10.0.0.2", 1234, 443, 6, 1500, 3),
			v4Record("10.0.0.3", "10.0.0.4", 53, 5353, 17, 80, 1))),
	}}.bytes()
	flows, res := decodeAll(t, d, exporterA, dg)
	if res.Flows != 2 || res.MissingTemplate != 0 || res.BadSets != 0 {
		t.Fatalf("result %+v", res)
	}
	f0 := flows[0]
	if netip.AddrFrom4([4]byte(f0.SrcAddr)).String() != "10.0.0.1" || f0.DstPort != 443 || f0.Proto != 6 ||
		f0.Bytes != 1500 || f0.Packets != 3 || f0.Type != pb.FlowType_IPFIX || f0.ObservationDomainId != 7 || f0.IpVersion != 4 {
		t.Fatalf("first flow %v", f0)
	}
	if got := netip.AddrFrom4([4]byte(f0.Exporter)); got != exporterA {
		t.Fatalf("exporter %v", got)
	}
	if flows[1].SrcPort != 53 || flows[1].Bytes != 80 {
		t.Fatalf("second flow %v", flows[1])
	}
}

func TestDecodeTemplatesKeyedByExporterAndDomain(t *testing.T) {
	d := NewDecoder(NewTemplates())
	// Two exporters define template 256 differently; a third message of
	// the first exporter comes from another domain and has no template.
	a := msg{version: 9, domain: 1, sets: [][]byte{
		set(setV9Template, tmpl(256, f(ieSourceTransportPort, 2), f(ieOctetDeltaCount, 4))),
		set(256, cat(u16(1111), u32(100))),
	}}.bytes()
	b := msg{version: 9, domain: 1, sets: [][]byte{
		set(setV9Template, tmpl(256, f(ieOctetDeltaCount, 4), f(ieSourceTransportPort, 2), f(ieDestinationTransportPort, 2))),
		set(256, cat(u32(200), u16(2222), u16(80))),
	}}.bytes()
	aData := msg{version: 9, domain: 1, seq: 1, sets: [][]byte{set(256, cat(u16(3333), u32(300)))}}.bytes()
	otherDomain := msg{version: 9, domain: 2, sets: [][]byte{set(256, cat(u16(4444), u32(400)))}}.bytes()

	fa, _ := decodeAll(t, d, exporterA, a)
	fb, _ := decodeAll(t, d, exporterB, b)
	fa2, _ := decodeAll(t, d, exporterA, aData)
	_, miss := decodeAll(t, d, exporterA, otherDomain)
	if fa[0].SrcPort != 1111 || fa[0].Bytes != 100 || fb[0].SrcPort != 2222 || fb[0].Bytes != 200 || fb[0].DstPort != 80 {
		t.Fatalf("exporter A %v, B %v", fa[0], fb[0])
	}
	if fa2[0].SrcPort != 3333 || fa2[0].Bytes != 300 {
		t.Fatalf("exporter A after B redefined 256 for itself: %v", fa2[0])
	}
	if miss.MissingTemplate != 1 || miss.Flows != 0 {
		t.Fatalf("another domain of A: %+v", miss)
	}
	// The v4-mapped form of an address is the same exporter.
	mapped := netip.AddrFrom16(exporterA.As16())
	fm, _ := decodeAll(t, d, mapped, aData)
	if len(fm) != 1 || fm[0].SrcPort != 3333 {
		t.Fatalf("v4-mapped exporter: %v", fm)
	}
}

func TestDecodeMissingTemplateThenTemplate(t *testing.T) {
	d := NewDecoder(NewTemplates())
	data := msg{version: 10, sets: [][]byte{set(400, v4Record("10.0.0.1", "10.0.0.2", 1, 2, 17, 10, 1))}}.bytes()
	_, res := decodeAll(t, d, exporterA, data)
	if res.MissingTemplate != 1 || res.Flows != 0 {
		t.Fatalf("before the template: %+v", res)
	}
	tm := msg{version: 10, sets: [][]byte{set(setIPFIXTemplate, tmpl(400, v4Fields...))}}.bytes()
	_, res = decodeAll(t, d, exporterA, tm, data)
	if res.MissingTemplate != 0 || res.Flows != 1 {
		t.Fatalf("after the template: %+v", res)
	}
}

func TestDecodeRedefinitionAndWithdrawal(t *testing.T) {
	templates := NewTemplates()
	d := NewDecoder(templates)
	def := func(fields ...field) []byte {
		return msg{version: 10, sets: [][]byte{set(setIPFIXTemplate, tmpl(500, fields...))}}.bytes()
	}
	data := func(body []byte) []byte { return msg{version: 10, sets: [][]byte{set(500, body)}}.bytes() }
	withdraw := func(id uint16) []byte {
		return msg{version: 10, sets: [][]byte{set(setIPFIXTemplate, cat(u16(id), u16(0)))}}.bytes()
	}

	flows, _ := decodeAll(t, d, exporterA, def(f(ieSourceTransportPort, 2)), data(u16(7)))
	if flows[0].SrcPort != 7 {
		t.Fatalf("first definition: %v", flows[0])
	}
	flows, _ = decodeAll(t, d, exporterA, def(f(ieDestinationTransportPort, 2), f(ieProtocolIdentifier, 1)), data(cat(u16(9), u8(6))))
	if flows[0].DstPort != 9 || flows[0].Proto != 6 || has(flows[0], pb.Field_SRC_PORT) {
		t.Fatalf("redefinition: %v", flows[0])
	}
	_, res := decodeAll(t, d, exporterA, withdraw(500), data(cat(u16(9), u8(6))))
	if res.MissingTemplate != 1 || templates.Len() != 0 {
		t.Fatalf("after withdrawal: %+v, %d templates", res, templates.Len())
	}
	// Withdrawing every data template (template id 2) leaves the options
	// templates.
	all := msg{version: 10, sets: [][]byte{
		set(setIPFIXTemplate, cat(tmpl(501, f(ieSourceTransportPort, 2)), tmpl(502, f(ieDestinationTransportPort, 2)))),
		set(setIPFIXOptionsTemplate, ipfixOptTmpl(503, []field{f(ieSelectorID, 4)}, f(ieSamplingInterval, 4))),
	}}.bytes()
	decodeAll(t, d, exporterA, all)
	decodeAll(t, d, exporterB, all)
	if templates.Len() != 6 {
		t.Fatalf("%d templates, want 6", templates.Len())
	}
	decodeAll(t, d, exporterA, withdraw(setIPFIXTemplate))
	if templates.Len() != 4 || templates.get(templateKey{exporterA, 10, 0, 503}) == nil {
		t.Fatalf("after withdrawing all data templates of A: %d templates", templates.Len())
	}
	withdrawOptions := msg{version: 10, sets: [][]byte{set(setIPFIXOptionsTemplate, cat(u16(setIPFIXOptionsTemplate), u16(0)))}}.bytes()
	decodeAll(t, d, exporterA, withdrawOptions)
	if templates.Len() != 3 {
		t.Fatalf("after withdrawing all options templates of A: %d templates", templates.Len())
	}
}

func TestDecodeBadTemplatesAreRefused(t *testing.T) {
	for _, tc := range []struct {
		name string
		set  []byte
	}{
		// goflow2 loops forever on data of a template of zero-length fields.
		{"zero-size template", set(setIPFIXTemplate, tmpl(600, f(ieSourceTransportPort, 0)))},
		{"template id below 256", set(setIPFIXTemplate, tmpl(255, f(ieSourceTransportPort, 2)))},
		{"fields cut short", set(setIPFIXTemplate, cat(u16(600), u16(3), u16(7), u16(2)))},
		{"enterprise number cut short", set(setIPFIXTemplate, cat(u16(600), u16(1), u16(7|enterpriseBit), u16(2), u16(0)))},
		{"options template without scope", set(setIPFIXOptionsTemplate, ipfixOptTmpl(600, nil, f(ieSamplingInterval, 4)))},
		{"options template with more scopes than fields", set(setIPFIXOptionsTemplate, cat(u16(600), u16(1), u16(2), u16(302), u16(4)))},
		{"more fields than any exporter sends", set(setIPFIXTemplate, tmpl(600, make([]field, maxTemplateFields+1)...))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			templates := NewTemplates()
			d := NewDecoder(templates)
			data := set(600, make([]byte, 64))
			_, res := decodeAll(t, d, exporterA, msg{version: 10, sets: [][]byte{tc.set, data}}.bytes())
			if res.BadSets != 1 || res.MissingTemplate != 1 || res.Flows != 0 || templates.Len() != 0 {
				t.Fatalf("result %+v, %d templates", res, templates.Len())
			}
		})
	}
}

func TestDecodeOddFieldsNeverSpoilTheRecord(t *testing.T) {
	const pen = 9
	fields := []field{
		f(ieSourceTransportPort, 2),
		{typ: 1, length: variableLength, pen: pen}, // enterprise, variable length
		f(82, variableLength),                      // interfaceName, variable length
		f(ieProtocolIdentifier, 4),                 // wrong length for the element: ignored
		{typ: 12, length: 4, pen: pen},             // enterprise element numbered like an address
		f(ieDestinationTransportPort, 2),
		f(ieOctetDeltaCount, 3), // reduced-size encoding
	}
	rec := func(sport uint16, ent []byte, name string, dport uint16, octets uint32) []byte {
		return cat(u16(sport), varlen(ent), varlen([]byte(name)), u32(6), ip("10.9.9.9"), u16(dport), u32(octets)[1:])
	}
	long := make([]byte, 300) // a three-byte length prefix
	body := cat(rec(1, []byte("x"), "ge-0/0/1", 80, 1000), rec(2, long, "", 443, 70000),
		[]byte{0, 0, 0}) // padding after variable-length records
	d := NewDecoder(NewTemplates())
	flows, res := decodeAll(t, d, exporterA, msg{version: 10, sets: [][]byte{
		set(setIPFIXTemplate, tmpl(700, fields...)), set(700, body)}}.bytes())
	if res.Flows != 2 || res.BadSets != 0 {
		t.Fatalf("result %+v", res)
	}
	for i, want := range []struct {
		sport, dport uint32
		octets       uint64
	}{{1, 80, 1000}, {2, 443, 70000}} {
		fl := flows[i]
		if fl.SrcPort != want.sport || fl.DstPort != want.dport || fl.Bytes != want.octets {
			t.Errorf("record %d: %v", i, fl)
		}
		if has(fl, pb.Field_PROTO) || has(fl, pb.Field_DST_ADDR) || has(fl, pb.Field_BYTES) != true {
			t.Errorf("record %d: odd fields taken: %v", i, fl)
		}
	}
}

func TestDecodeZeroLengthFieldsSkipped(t *testing.T) {
	// Fields of length 0 hold nothing; a template of thousands of them
	// must not make each byte of data cost thousands of steps.
	fields := make([]field, 1000)
	for i := range fields {
		fields[i] = f(uint16(200+i), 0)
	}
	fields[500] = f(ieSourceTransportPort, 2)
	templates := NewTemplates()
	d := NewDecoder(templates)
	flows, res := decodeAll(t, d, exporterA, msg{version: 10, sets: [][]byte{
		set(setIPFIXTemplate, tmpl(256, fields...)), set(256, cat(u16(80), u16(443)))}}.bytes())
	if res.Flows != 2 || flows[0].SrcPort != 80 || flows[1].SrcPort != 443 {
		t.Fatalf("result %+v, flows %v", res, flows)
	}
	if tm := templates.get(templateKey{exporterA, 10, 0, 256}); len(tm.fields) != 1 {
		t.Fatalf("%d fields kept", len(tm.fields))
	}
}

func TestDecodeDamageKeepsWhatCameBefore(t *testing.T) {
	tm := set(setIPFIXTemplate, tmpl(800, f(ieSourceTransportPort, 2), f(82, variableLength)))
	good := set(800, cat(u16(1), varlen([]byte("a")), u16(2), varlen([]byte("b"))))
	for _, tc := range []struct {
		name      string
		version   uint16
		sets      [][]byte
		tail      []byte
		flows     int
		bad       int
		malformed bool
	}{
		{name: "set longer than the datagram", version: 10, sets: [][]byte{tm, good}, tail: cat(u16(800), u16(200), u16(3)), flows: 2, bad: 1},
		{name: "set length below its header", version: 10, sets: [][]byte{tm, good}, tail: cat(u16(800), u16(2)), flows: 2, bad: 1},
		{name: "variable length past the set", version: 10, sets: [][]byte{tm, good, set(800, cat(u16(3), varlen([]byte("c")), u16(4), []byte{40, 'x'}))}, flows: 3, bad: 1},
		{name: "reserved set id skipped", version: 10, sets: [][]byte{tm, set(5, []byte{1, 2, 3, 4}), good}, flows: 2},
		{name: "v9 padding at the end", version: 9, sets: [][]byte{set(setV9Template, tmpl(800, f(ieSourceTransportPort, 2))), set(800, cat(u16(1), u16(2)))}, tail: []byte{0, 0}, flows: 2},
		{name: "garbage after the sets", version: 9, sets: [][]byte{set(setV9Template, tmpl(800, f(ieSourceTransportPort, 2))), set(800, cat(u16(1), u16(2)))}, tail: []byte{7, 7}, flows: 2, bad: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := NewDecoder(NewTemplates())
			m := msg{version: tc.version, sets: append(tc.sets, tc.tail)}
			var batch pb.Batch
			res, err := d.Decode(m.bytes(), exporterA, received, &batch)
			if err != nil {
				t.Fatal(err)
			}
			if res.Flows != tc.flows || res.BadSets != tc.bad || len(batch.Flows) != tc.flows {
				t.Fatalf("result %+v, %d flows in the batch", res, len(batch.Flows))
			}
		})
	}
}

func TestDecodeRefusesBadHeaders(t *testing.T) {
	ipfix := msg{version: 10, sets: [][]byte{set(setIPFIXTemplate, tmpl(300, v4Fields...))}}.bytes()
	longer := append([]byte(nil), ipfix...)
	longer[3] += 10
	v5 := make([]byte, 24+48)
	v5[1], v5[3] = 5, 2 // says two records, holds one
	for _, tc := range []struct {
		name string
		data []byte
		want error
	}{
		{"empty", nil, ErrMalformed},
		{"unknown version", []byte{0, 7, 0, 0, 0, 0}, ErrVersion},
		{"v9 header cut short", []byte{0, 9, 0, 1, 0, 0, 0, 0}, ErrMalformed},
		{"IPFIX length past the datagram", longer, ErrMalformed},
		{"v5 records cut short", v5, ErrMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var batch pb.Batch
			_, err := NewDecoder(NewTemplates()).Decode(tc.data, exporterA, received, &batch)
			if !errors.Is(err, tc.want) || len(batch.Flows) != 0 {
				t.Fatalf("err %v, %d flows", err, len(batch.Flows))
			}
		})
	}
}

func TestDecodeTimes(t *testing.T) {
	const exportSec = 1_800_000_000
	exportMs := uint64(exportSec) * 1000
	upFields := []field{f(ieSourceTransportPort, 2), f(ieFlowStartSysUpTime, 4), f(ieFlowEndSysUpTime, 4)}
	t.Run("v9 uptimes count from the header", func(t *testing.T) {
		d := NewDecoder(NewTemplates())
		flows, _ := decodeAll(t, d, exporterA, msg{version: 9, export: exportSec, uptime: 100_000, sets: [][]byte{
			set(setV9Template, tmpl(256, upFields...)), set(256, cat(u16(1), u32(40_000), u32(90_000)))}}.bytes())
		if flows[0].StartMs != exportMs-60_000 || flows[0].EndMs != exportMs-10_000 {
			t.Fatalf("start %d end %d", flows[0].StartMs, flows[0].EndMs)
		}
	})
	t.Run("IPFIX uptimes need the system init time", func(t *testing.T) {
		d := NewDecoder(NewTemplates())
		tm := set(setIPFIXTemplate, tmpl(256, upFields...))
		data := set(256, cat(u16(1), u32(40_000), u32(90_000)))
		flows, _ := decodeAll(t, d, exporterA, msg{version: 10, export: exportSec, sets: [][]byte{tm, data}}.bytes())
		if has(flows[0], pb.Field_START) || !has(flows[0], pb.Field_START_UPTIME) {
			t.Fatalf("absolute time without a system init time: %v", flows[0])
		}
		sysInit := exportMs - 100_000
		opts := [][]byte{
			set(setIPFIXOptionsTemplate, ipfixOptTmpl(257, []field{f(143, 4)}, f(ieSystemInitTimeMilliseconds, 8))),
			set(257, cat(u32(1), u64(sysInit))),
		}
		flows, _ = decodeAll(t, d, exporterA, msg{version: 10, export: exportSec, sets: append(opts, data)}.bytes())
		if flows[0].StartMs != sysInit+40_000 || flows[0].EndMs != sysInit+90_000 {
			t.Fatalf("start %d end %d, want %d %d", flows[0].StartMs, flows[0].EndMs, sysInit+40_000, sysInit+90_000)
		}
	})
	t.Run("IPFIX absolute and delta times", func(t *testing.T) {
		d := NewDecoder(NewTemplates())
		ntp := func(unixMs uint64) uint64 {
			return (unixMs/1000+ntpEpochOffsetSeconds)<<32 | (unixMs%1000)<<32/1000
		}
		flows, _ := decodeAll(t, d, exporterA, msg{version: 10, export: exportSec, sets: [][]byte{
			set(setIPFIXTemplate, cat(
				tmpl(256, f(ieFlowStartMilliseconds, 8), f(ieFlowEndSeconds, 4)),
				tmpl(257, f(ieFlowStartMicroseconds, 8), f(ieFlowEndDeltaMicroseconds, 4)))),
			set(256, cat(u64(exportMs-5000), u32(exportSec-1))),
			set(257, cat(u64(ntp(exportMs-7250)), u32(2_000_000))),
		}}.bytes())
		if flows[0].StartMs != exportMs-5000 || flows[0].EndMs != exportMs-1000 {
			t.Errorf("milliseconds and seconds: %d %d", flows[0].StartMs, flows[0].EndMs)
		}
		if flows[1].StartMs != exportMs-7250 || flows[1].EndMs != exportMs-2000 {
			t.Errorf("NTP and delta: %d %d", flows[1].StartMs, flows[1].EndMs)
		}
	})
}

func TestDecodeSampling(t *testing.T) {
	flowFields := []field{f(ieSourceTransportPort, 2), f(ieOctetDeltaCount, 4)}
	for _, tc := range []struct {
		name string
		sets [][]byte
		want []uint64 // sampling rate of each record; 0: none stated
	}{
		{
			name: "no sampling information",
			sets: [][]byte{set(setIPFIXTemplate, tmpl(256, flowFields...)), set(256, cat(u16(1), u32(10)))},
			want: []uint64{0},
		},
		{
			name: "domain rate from option data (samplingInterval)",
			sets: [][]byte{
				set(setIPFIXTemplate, tmpl(256, flowFields...)),
				set(setIPFIXOptionsTemplate, ipfixOptTmpl(257, []field{f(149, 4)}, f(ieSamplingInterval, 4))),
				set(257, cat(u32(0), u32(100))),
				set(256, cat(u16(1), u32(10))),
			},
			want: []uint64{100},
		},
		{
			name: "packet interval and space (softflowd -s 5)",
			sets: [][]byte{
				set(setIPFIXTemplate, tmpl(256, flowFields...)),
				set(setIPFIXOptionsTemplate, ipfixOptTmpl(257, []field{f(143, 4)}, f(ieSamplingPacketInterval, 4), f(ieSamplingPacketSpace, 4))),
				set(257, cat(u32(0), u32(1), u32(4))),
				set(256, cat(u16(1), u32(10))),
			},
			want: []uint64{5},
		},
		{
			name: "sampling size and population",
			sets: [][]byte{
				set(setIPFIXTemplate, tmpl(256, flowFields...)),
				set(setIPFIXOptionsTemplate, ipfixOptTmpl(257, []field{f(143, 4)}, f(ieSamplingSize, 4), f(ieSamplingPopulation, 4))),
				set(257, cat(u32(0), u32(2), u32(2000))),
				set(256, cat(u16(1), u32(10))),
			},
			want: []uint64{1000},
		},
		{
			name: "records name their sampler (selectorId)",
			sets: [][]byte{
				set(setIPFIXTemplate, tmpl(256, f(ieSourceTransportPort, 2), f(ieSelectorID, 8))),
				set(setIPFIXOptionsTemplate, ipfixOptTmpl(257, []field{f(ieSelectorID, 8)}, f(ieSamplerRandomInterval, 4))),
				set(257, cat(u64(1), u32(10), u64(2), u32(512))),
				set(256, cat(u16(1), u64(2), u16(2), u64(1), u16(3), u64(3))),
			},
			want: []uint64{512, 10, 0}, // sampler 3 is unknown
		},
		{
			name: "the record's own rate wins",
			sets: [][]byte{
				set(setIPFIXTemplate, tmpl(256, f(ieSourceTransportPort, 2), f(ieSamplingPacketInterval, 4))),
				set(setIPFIXOptionsTemplate, ipfixOptTmpl(257, []field{f(149, 4)}, f(ieSamplingInterval, 4))),
				set(257, cat(u32(0), u32(100))),
				set(256, cat(u16(1), u32(64))),
			},
			want: []uint64{64},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := NewDecoder(NewTemplates())
			flows, _ := decodeAll(t, d, exporterA, msg{version: 10, sets: tc.sets}.bytes())
			if len(flows) != len(tc.want) {
				t.Fatalf("%d flows, want %d", len(flows), len(tc.want))
			}
			for i, w := range tc.want {
				if got := flows[i].SamplingRate; got != w || has(flows[i], pb.Field_SAMPLING) != (w != 0) {
					t.Errorf("flow %d: rate %d (stated %v), want %d", i, got, has(flows[i], pb.Field_SAMPLING), w)
				}
			}
		})
	}
	t.Run("v9 sampler options (pmacct, Cisco)", func(t *testing.T) {
		d := NewDecoder(NewTemplates())
		flows, _ := decodeAll(t, d, exporterA, msg{version: 9, sets: [][]byte{
			set(setV9Template, tmpl(256, f(ieSourceTransportPort, 2), f(ieSamplerID, 1))),
			// Scope type 2 (Interface) is not packetDeltaCount.
			set(setV9OptionsTemplate, v9OptTmpl(257, []field{f(2, 4)}, f(ieSamplerID, 1), f(49, 1), f(ieSamplerRandomInterval, 4))),
			set(257, cat(u32(3), u8(9), u8(2), u32(250), []byte{0, 0})),
			set(256, cat(u16(1), u8(9))),
		}}.bytes())
		if len(flows) != 1 || flows[0].SamplingRate != 250 {
			t.Fatalf("flows %v", flows)
		}
	})
	t.Run("v5 header", func(t *testing.T) {
		dg := make([]byte, 24+48)
		dg[1], dg[3] = 5, 1
		dg[22], dg[23] = 0x40|0x01, 0x00 // mode 1, interval 256
		flows, _ := decodeAll(t, NewDecoder(NewTemplates()), exporterA, dg)
		if flows[0].SamplingRate != 256 {
			t.Fatalf("v5 rate %d", flows[0].SamplingRate)
		}
	})
}

func TestDecodeCaptures(t *testing.T) {
	for _, tc := range []struct {
		file  string
		flows int
		ftype pb.FlowType
		rate  uint64 // every flow's sampling rate
	}{
		{"softflowd-v5.pcap", 38, pb.FlowType_NETFLOW_V5, 0},
		{"softflowd-v9.pcap", 50, pb.FlowType_NETFLOW_V9, 1},
		{"softflowd-v9-sampled5.pcap", 25, pb.FlowType_NETFLOW_V9, 5},
		{"softflowd-ipfix.pcap", 50, pb.FlowType_IPFIX, 1},
		{"softflowd-ipfix-sampled5.pcap", 25, pb.FlowType_IPFIX, 5},
		{"pmacct-v9.pcap", 50, pb.FlowType_NETFLOW_V9, 0},
		{"pmacct-ipfix-sampled4.pcap", 30, pb.FlowType_IPFIX, 4},
	} {
		t.Run(tc.file, func(t *testing.T) {
			d := NewDecoder(NewTemplates())
			flows, res := decodeAll(t, d, exporterA, readPcap(t, filepath.Join("testdata", tc.file))...)
			if res.Flows != tc.flows || res.MissingTemplate != 0 || res.BadSets != 0 || res.LostRecords != 0 || res.LostDatagrams != 0 {
				t.Fatalf("result %+v, want %d flows and nothing else", res, tc.flows)
			}
			for i, fl := range flows {
				if fl.Type != tc.ftype || fl.SamplingRate != tc.rate || !has(fl, pb.Field_START) || !has(fl, pb.Field_BYTES) ||
					!has(fl, pb.Field_SRC_ADDR) || !has(fl, pb.Field_DST_PORT) {
					t.Fatalf("flow %d: %v", i, fl)
				}
			}
		})
	}
}

func TestDecodeTemplateCaps(t *testing.T) {
	templates := NewTemplates()
	d := NewDecoder(templates)
	var records []byte
	for id := range maxTemplatesPerExporter + 10 {
		records = append(records, tmpl(uint16(minDataSetID+id), f(ieSourceTransportPort, 2))...)
		if len(records) > 60000 {
			decodeAll(t, d, exporterA, msg{version: 10, sets: [][]byte{set(setIPFIXTemplate, records)}}.bytes())
			records = nil
		}
	}
	_, res := decodeAll(t, d, exporterA, msg{version: 10, sets: [][]byte{set(setIPFIXTemplate, records)}}.bytes())
	if templates.Len() != maxTemplatesPerExporter || res.RefusedTemplates != 10 {
		t.Fatalf("%d templates, %d refused", templates.Len(), res.RefusedTemplates)
	}
	// Another exporter is not held back by the first.
	decodeAll(t, d, exporterB, msg{version: 10, sets: [][]byte{set(setIPFIXTemplate, tmpl(256, f(ieSourceTransportPort, 2)))}}.bytes())
	if templates.Len() != maxTemplatesPerExporter+1 {
		t.Fatalf("%d templates", templates.Len())
	}
}
