package https

import (
	"encoding/binary"
	"testing"

	"github.com/flowgate/flowgate/format"
	pb "github.com/flowgate/flowgate/proto"
	"github.com/flowgate/flowgate/ship"
)

// benchFlows is a full batch of the flows the benchmark harness sends
// (benchmarks/internal/exporter: IPFIX, 14 elements), written as /jsons
// carries them, so that the compression ratio is the harness's.
func benchFlows(n int) *ship.Batch {
	var (
		buf  []byte
		ends [][]byte
	)
	nowMs := uint64(1_764_000_000_000)
	for seq := range uint32(n) {
		f := &pb.Flow{Type: pb.FlowType_IPFIX, Exporter: []byte{127, 0, 0, 2}, ObservationDomainId: 1,
			SrcAddr: binary.BigEndian.AppendUint32(nil, 10<<24+seq), DstAddr: []byte{198, 18, 0, 7},
			SrcPort: 1024 + seq%60_000, DstPort: []uint32{80, 443, 53, 22}[seq%4], Proto: 6, TcpFlags: 0x1b,
			Packets: uint64(1 + seq%16), InIf: 1 + seq%8, OutIf: 9 + seq%8, IpVersion: 4,
			EndMs: nowMs - uint64(seq%1000), TimeReceivedNs: (nowMs + uint64(seq/40)) * 1e6, FlowEndReason: 3}
		f.Bytes = f.Packets * uint64(64+seq%1400)
		f.StartMs = f.EndMs - uint64(seq%30_000)
		for _, fl := range []pb.Field{pb.Field_SRC_ADDR, pb.Field_DST_ADDR, pb.Field_SRC_PORT, pb.Field_DST_PORT,
			pb.Field_PROTO, pb.Field_IP_VERSION, pb.Field_TOS, pb.Field_TCP_FLAGS, pb.Field_BYTES, pb.Field_PACKETS,
			pb.Field_IN_IF, pb.Field_OUT_IF, pb.Field_START, pb.Field_END, pb.Field_FLOW_END_REASON} {
			f.Present |= 1 << uint(fl)
		}
		start := len(buf)
		buf = format.IANA{AsString: true}.AppendFlow(buf, f)
		ends = append(ends, buf[start:])
	}
	return ship.NewBatch(ends...)
}

// BenchmarkEncodeSekoia frames and gzips a full batch (10 000 flows) as
// the Sekoia output sends it.
func BenchmarkEncodeSekoia(b *testing.B) {
	batch := benchFlows(10_000)
	cfg := Sekoia("https://intake.example", key, "")
	bufs := (&Transport{bufs: make(chan *buffers, 1)}).getBuffers()
	b.SetBytes(int64(batch.Bytes()))
	b.ReportAllocs()
	var body []byte
	for b.Loop() {
		var err error
		if body, err = bufs.encode(&cfg, batch, false); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(body))/float64(batch.Len()), "gzB/event")
}
