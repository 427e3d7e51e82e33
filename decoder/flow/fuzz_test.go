package flow

import (
	"runtime"
	"testing"

	pb "github.com/flowgate/flowgate/proto"
)

// allocBudget is what decoding a datagram of n bytes may allocate: a fixed
// part (goflow2's packet structures, errors) and a part proportional to
// the datagram (records, their fields, copies of addresses). A count read
// from the wire that sized an allocation by itself would blow it.
func allocBudget(n int) uint64 { return 64<<10 + 96*uint64(n) }

// decodeFunc is one of the decoder's entry points.
type decodeFunc func(d *Decoder, data []byte, batch *pb.Batch) (Result, error)

func netflowEntry(d *Decoder, data []byte, batch *pb.Batch) (Result, error) {
	return d.Decode(data, testExporter, testReceived, batch)
}

func sflowEntry(d *Decoder, data []byte, batch *pb.Batch) (Result, error) {
	return d.DecodeSFlow(data, testExporter, testReceived, batch)
}

// FuzzDecode feeds two datagrams in a row to the NetFlow v5/v9/IPFIX
// decoder with a fresh template store, so that templates from the first
// meet data in the second. Seeds: softflowd's exports (testdata/fuzz).
func FuzzDecode(f *testing.F) {
	f.Fuzz(func(t *testing.T, first, second []byte) {
		d := NewDecoder(NewTemplates())
		var batch pb.Batch
		checkDecode(t, d, netflowEntry, first, &batch)
		checkDecode(t, d, netflowEntry, second, &batch)
	})
}

// FuzzDecodeSFlow feeds one datagram to the sFlow decoder. Seeds:
// pmacctd's sfprobe exports (testdata/fuzz) and the shapes of the unit
// tests (expanded samples, VLANs, IPv6 extension headers, counters).
func FuzzDecodeSFlow(f *testing.F) {
	agent := testExporter
	f.Add(sflowPacket(agent, 1, 1,
		expandedFlowSample(10, 0, 3, 2, 2,
			headerRecord(headerEthernet, 1500, eth(etherVLAN, vlanTag(5, etherIPv6),
				ipv6(protoDstOpts, "2001:db8::1", "2001:db8::2", append([]byte{protoTCP, 0, 0, 0, 0, 0, 0, 0}, tcp(1, 2, 0x10)...)))),
			tlv(recordExtendedGateway, u32s(2), make([]byte, 16), u32s(1, 2, 3, 1, 2, 1, 4, 1, 5, 6))),
		ifCounters(true, 3, 1, 2)))
	f.Fuzz(func(t *testing.T, datagram []byte) {
		var batch pb.Batch
		checkDecode(t, NewDecoder(NewTemplates()), sflowEntry, datagram, &batch)
	})
}

// checkDecode decodes one datagram and checks what any input must give:
// no panic, allocations within budget, nothing appended on an error, and
// as many records appended as the result says.
func checkDecode(t *testing.T, d *Decoder, decode decodeFunc, data []byte, batch *pb.Batch) {
	t.Helper()
	flows, counters := len(batch.Flows), len(batch.Counters)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	res, err := decode(d, data, batch)
	runtime.ReadMemStats(&after)
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > allocBudget(len(data)) {
		t.Fatalf("decoding %d bytes allocated %d bytes, budget %d", len(data), alloc, allocBudget(len(data)))
	}
	if err != nil {
		if res != (Result{}) || len(batch.Flows) != flows || len(batch.Counters) != counters {
			t.Fatalf("error %v, yet result %+v and %d flows, %d counters appended", err, res, len(batch.Flows)-flows, len(batch.Counters)-counters)
		}
		return
	}
	if len(batch.Flows)-flows != res.Flows || len(batch.Counters)-counters != res.Counters {
		t.Fatalf("result %+v, appended %d flows and %d counters", res, len(batch.Flows)-flows, len(batch.Counters)-counters)
	}
	for _, f := range batch.Flows[flows:] {
		for _, a := range [][]byte{f.Exporter, f.SrcAddr, f.DstAddr, f.NextHop, f.BgpNextHop} {
			if len(a) != 0 && len(a) != 4 && len(a) != 16 {
				t.Fatalf("address of %d bytes in %v", len(a), f)
			}
		}
	}
}
