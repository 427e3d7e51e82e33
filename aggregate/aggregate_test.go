package aggregate

import (
	"encoding/binary"
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"

	pb "github.com/flowgate/flowgate/proto"
)

func ip(s string) []byte { return netip.MustParseAddr(s).AsSlice() }

// flowCount reads an aggregated record's deltaFlowCount.
func flowCount(t *testing.T, f *pb.Flow) uint64 {
	t.Helper()
	_, id, v, _, ok := pb.NextElement(f.Elements)
	if !ok || id != deltaFlowCountID || len(v) != 8 {
		t.Fatalf("no deltaFlowCount in %x", f.Elements)
	}
	return binary.BigEndian.Uint64(v)
}

// TestTotalsConserved: random flows summed by two keys; per key, the
// bytes, packets and flows of the window's records are those of the
// flows, start and end are the extremes, other fields are gone.
func TestTotalsConserved(t *testing.T) {
	a, err := New(time.Minute, []string{"destinationIPv4Address", "protocolIdentifier"})
	if err != nil {
		t.Fatal(err)
	}
	type sums struct{ bytes, packets, flows, start, end uint64 }
	want := map[string]*sums{}
	r := rand.New(rand.NewPCG(1, 2))
	now := time.Now()
	exporter := ip("172.16.0.1")
	for i := range 5000 {
		dst := netip.AddrFrom4([4]byte{192, 0, 2, byte(r.IntN(8))})
		f := &pb.Flow{Exporter: exporter, SrcAddr: ip("10.0.0.1"), DstAddr: dst.AsSlice(), Proto: []uint32{6, 17}[r.IntN(2)],
			SrcPort: uint32(i), Bytes: uint64(r.IntN(1500)), Packets: uint64(1 + r.IntN(10)),
			StartMs: uint64(1000 + r.IntN(100)), EndMs: uint64(2000 + r.IntN(100)), Present: 1<<uint(pb.Field_SRC_PORT) | 1<<uint(pb.Field_TCP_FLAGS)}
		k := dst.String() + "/" + string(rune('0'+f.Proto))
		s := want[k]
		if s == nil {
			s = &sums{start: f.StartMs, end: f.EndMs}
			want[k] = s
		}
		s.bytes, s.packets, s.flows = s.bytes+f.Bytes, s.packets+f.Packets, s.flows+1
		s.start, s.end = min(s.start, f.StartMs), max(s.end, f.EndMs)
		a.Add(f, now)
		// The record is reused at once, as the decoder does.
		f.DstAddr[3], f.Bytes = 99, 1<<40
	}
	if a.Due(now.Add(59*time.Second)) || !a.Due(now.Add(time.Minute)) {
		t.Error("the window is not due at its end exactly")
	}
	out := a.Flush(nil)
	if len(out) != len(want) || a.Len() != 0 {
		t.Fatalf("%d records for %d keys (%d left)", len(out), len(want), a.Len())
	}
	for _, f := range out {
		dst, _ := netip.AddrFromSlice(f.DstAddr)
		k := dst.String() + "/" + string(rune('0'+f.Proto))
		s := want[k]
		if s == nil {
			t.Fatalf("record for %s: no flows had that key", k)
		}
		got := sums{f.Bytes, f.Packets, flowCount(t, f), f.StartMs, f.EndMs}
		if got != *s {
			t.Errorf("%s: %+v, want %+v", k, got, *s)
		}
		if f.SrcAddr != nil || f.SrcPort != 0 || f.Present&(1<<uint(pb.Field_SRC_PORT)|1<<uint(pb.Field_TCP_FLAGS)) != 0 {
			t.Errorf("%s: fields outside the keys kept: %v", k, f)
		}
		if string(f.Exporter) != string(exporter) {
			t.Errorf("%s: exporter %v", k, f.Exporter)
		}
	}
}

func TestUnknownKey(t *testing.T) {
	if _, err := New(time.Minute, []string{"sourceIPv4Adress"}); err == nil {
		t.Error("a misspelt key was taken")
	}
	if err := Check(nil); err == nil {
		t.Error("no keys was taken")
	}
}

// BenchmarkAdd is the cost of folding one flow into a window of 4096
// keys (the cost per flow that aggregation adds, before it saves the
// encoding, storing and shipping of all but one flow per key).
func BenchmarkAdd(b *testing.B) {
	a, err := New(time.Hour, []string{"sourceIPv4Address", "destinationIPv4Address", "destinationTransportPort", "protocolIdentifier"})
	if err != nil {
		b.Fatal(err)
	}
	flows := make([]*pb.Flow, 4096)
	for i := range flows {
		flows[i] = &pb.Flow{Exporter: ip("172.16.0.1"), SrcAddr: ip("10.0.0.1"), DstAddr: netip.AddrFrom4([4]byte{192, 0, byte(i >> 8), byte(i)}).AsSlice(),
			DstPort: 443, Proto: 6, Bytes: 1500, Packets: 3}
	}
	now := time.Now()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		a.Add(flows[i%len(flows)], now)
	}
}
