package enrich

import (
	"net/netip"
	"testing"

	pb "github.com/flowgate/flowgate/proto"
)

const (
	samplingField = 1 << uint(pb.Field_SAMPLING)
	ifFields      = 1<<uint(pb.Field_IN_IF) | 1<<uint(pb.Field_OUT_IF)
)

func TestFlow(t *testing.T) {
	edge := netip.MustParseAddr("192.0.2.1")
	core := netip.MustParseAddr("2001:db8::1")
	exporters := map[netip.Addr]Exporter{
		edge: {Name: "edge-paris-1", SamplingRate: 1000, Interfaces: map[uint32]string{1: "ge-0/0/1", 2: "ge-0/0/2"}},
		core: {Name: "core", SamplingRate: 64, SamplingOverride: true},
	}
	type want struct {
		bytes, packets, rate uint64
		stated               bool
		name, in, out        string
	}
	for _, tc := range []struct {
		name string
		cfg  Config
		flow *pb.Flow
		want want
	}{
		{"unsampled, unknown exporter", Config{ScaleSampling: true, Exporters: exporters},
			&pb.Flow{Exporter: []byte{198, 51, 100, 1}, Bytes: 100, Packets: 2},
			want{bytes: 100, packets: 2}},
		{"the exporter's rate scales", Config{ScaleSampling: true},
			&pb.Flow{Exporter: []byte{198, 51, 100, 1}, Bytes: 100, Packets: 2, SamplingRate: 10, Present: samplingField},
			want{bytes: 1000, packets: 20, rate: 10, stated: true}},
		{"scaling off", Config{ScaleSampling: false},
			&pb.Flow{Bytes: 100, Packets: 2, SamplingRate: 10, Present: samplingField},
			want{bytes: 100, packets: 2, rate: 10, stated: true}},
		{"rate 1 is unsampled", Config{ScaleSampling: true},
			&pb.Flow{Bytes: 100, Packets: 2, SamplingRate: 1, Present: samplingField},
			want{bytes: 100, packets: 2, rate: 1, stated: true}},
		{"configured rate when the exporter states none; names", Config{ScaleSampling: true, Exporters: exporters},
			&pb.Flow{Exporter: edge.AsSlice(), Bytes: 100, Packets: 2, InIf: 1, OutIf: 3, Present: ifFields},
			want{bytes: 100_000, packets: 2000, rate: 1000, stated: true, name: "edge-paris-1", in: "ge-0/0/1"}},
		{"the exporter's rate wins over a default", Config{ScaleSampling: true, Exporters: exporters},
			&pb.Flow{Exporter: edge.AsSlice(), Bytes: 100, Packets: 2, SamplingRate: 10, Present: samplingField},
			want{bytes: 1000, packets: 20, rate: 10, stated: true, name: "edge-paris-1"}},
		{"an override wins over the exporter", Config{ScaleSampling: true, Exporters: exporters},
			&pb.Flow{Exporter: core.AsSlice(), Bytes: 100, Packets: 2, SamplingRate: 10, Present: samplingField},
			want{bytes: 6400, packets: 128, rate: 64, stated: true, name: "core"}},
		{"interface indexes not sent are not named", Config{Exporters: exporters},
			&pb.Flow{Exporter: edge.AsSlice(), Bytes: 1, Packets: 1, InIf: 0, OutIf: 2, Present: 1 << uint(pb.Field_OUT_IF)},
			want{bytes: 1, packets: 1, rate: 1000, stated: true, name: "edge-paris-1", out: "ge-0/0/2"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := tc.flow
			New(tc.cfg).Flow(f)
			got := want{f.Bytes, f.Packets, f.SamplingRate, f.Present&samplingField != 0, f.ExporterName, f.InIfName, f.OutIfName}
			if got != tc.want {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}
