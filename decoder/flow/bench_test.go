package flow

import (
	"bytes"
	"path/filepath"
	"testing"

	"github.com/netsampler/goflow2/v2/decoders/netflow"

	"github.com/flowgate/flowgate/format"
	pb "github.com/flowgate/flowgate/proto"
)

// ipfixBench is an IPFIX datagram of 20 records (the template sent once
// before), as a busy exporter sends them.
func ipfixBench(t testing.TB) (templates, data []byte) {
	fields := append([]field{f(ieFlowStartMilliseconds, 8), f(ieFlowEndMilliseconds, 8), f(iePacketDeltaCount, 8), f(ieIngressInterface, 4), f(ieEgressInterface, 4), f(ieTCPControlBits, 1), f(ieIPClassOfService, 1)}, v4Fields...)
	var recs []byte
	for i := range 20 {
		recs = append(recs, cat(u64(1_800_000_000_000), u64(1_800_000_001_000), u64(3), u32(1), u32(2), u8(0x18), u8(0),
			v4Record("10.0.0.1", "192.0.2.7", uint16(1000+i), 443, 6, 1500, 3))...)
	}
	templates = msg{version: 10, sets: [][]byte{set(setIPFIXTemplate, tmpl(300, fields...))}}.bytes()
	data = msg{version: 10, sets: [][]byte{set(300, recs)}}.bytes()
	return templates, data
}

// BenchmarkDecodeIPFIX is our decoder: 20 flows per op.
func BenchmarkDecodeIPFIX(b *testing.B) {
	tm, data := ipfixBench(b)
	d := NewDecoder(NewTemplates())
	var batch pb.Batch
	if _, err := d.Decode(tm, exporterA, received, &batch); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		batch.Flows = batch.Flows[:0]
		if _, err := d.Decode(data, exporterA, received, &batch); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*20)/b.Elapsed().Seconds(), "flows/s")
}

// BenchmarkGoflow2DecodeIPFIX is goflow2's decoder on the same datagram,
// without turning its values into records: the part ours replaces.
func BenchmarkGoflow2DecodeIPFIX(b *testing.B) {
	tm, data := ipfixBench(b)
	ts := netflow.CreateTemplateSystem()
	var p netflow.IPFIXPacket
	if err := netflow.DecodeMessageVersion(bytes.NewBuffer(tm), ts, nil, &p); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := netflow.DecodeMessageVersion(bytes.NewBuffer(data), ts, nil, &p); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*20)/b.Elapsed().Seconds(), "flows/s")
}

// BenchmarkDecodeCapture decodes softflowd's IPFIX export.
func BenchmarkDecodeCapture(b *testing.B) {
	datagrams := readPcap(b, filepath.Join("testdata", "softflowd-ipfix.pcap"))
	d := NewDecoder(NewTemplates())
	var batch pb.Batch
	b.ReportAllocs()
	flows := 0
	for b.Loop() {
		for _, dg := range datagrams {
			batch.Flows = batch.Flows[:0]
			res, _ := d.Decode(dg, exporterA, received, &batch)
			flows += res.Flows
		}
	}
	b.ReportMetric(float64(flows)/b.Elapsed().Seconds(), "flows/s")
}

// BenchmarkDecodeNameVendor decodes the vendor datagrams' records (IANA,
// Cisco, VMware, Juniper, ntop and unnamed enterprise elements, lists,
// strings) and writes each flow's event, naming every element: ns/op per
// flow.
func BenchmarkDecodeNameVendor(b *testing.B) {
	var tms, data [][]byte
	for _, dgs := range [][][]byte{ipfixVendorDatagrams(), enterpriseDatagrams()} {
		tms, data = append(tms, dgs[0]), append(data, dgs[1])
	}
	d := NewDecoder(NewTemplates())
	var batch pb.Batch
	for _, tm := range tms {
		if _, err := d.Decode(tm, exporterA, received, &batch); err != nil {
			b.Fatal(err)
		}
	}
	var out []byte
	flows := 0
	b.ReportAllocs()
	for b.Loop() {
		for _, dg := range data {
			batch.Flows = batch.Flows[:0]
			if _, err := d.Decode(dg, exporterA, received, &batch); err != nil {
				b.Fatal(err)
			}
			for _, fl := range batch.Flows {
				out = format.IANA{}.AppendFlow(out[:0], fl)
				flows++
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(flows), "ns/flow")
}

// BenchmarkDecodeSFlow is our decoder on an sFlow datagram of 11 flow
// samples, each one sampled TCP packet's headers, as the bench's generator
// and hsflowd send them: 11 flows per op.
func BenchmarkDecodeSFlow(b *testing.B) {
	var samples [][]byte
	for i := range 11 {
		h := eth(etherIPv4, ipv4(protoTCP, "10.0.0.1", "192.0.2.7", 0x4000, tcp(uint16(1000+i), 443, 0x18)))
		samples = append(samples, compactFlowSample(1, 3, 4, headerRecord(headerEthernet, 1518, h)))
	}
	data := sflowPacket(exporterA, 0, 1, samples...)
	d := NewDecoder(NewTemplates())
	var batch pb.Batch
	b.ReportAllocs()
	for b.Loop() {
		batch.Flows = batch.Flows[:0]
		if res, err := d.DecodeSFlow(data, exporterA, received, &batch); err != nil || res.Flows != 11 {
			b.Fatal(res, err)
		}
	}
	b.ReportMetric(float64(b.N*11)/b.Elapsed().Seconds(), "flows/s")
}
