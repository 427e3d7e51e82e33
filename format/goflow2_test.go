package format_test

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/netsampler/goflow2/v2/decoders/netflow"
	"github.com/netsampler/goflow2/v2/decoders/netflowlegacy"
	"github.com/netsampler/goflow2/v2/decoders/sflow"
	goflowformat "github.com/netsampler/goflow2/v2/format"
	_ "github.com/netsampler/goflow2/v2/format/json" // registers goflow2's "json" format
	"github.com/netsampler/goflow2/v2/producer"
	protoproducer "github.com/netsampler/goflow2/v2/producer/proto"

	"github.com/flowgate/flowgate/decoder/flow"
	"github.com/flowgate/flowgate/format"
	"github.com/flowgate/flowgate/internal/fuzzcorpus"
	pb "github.com/flowgate/flowgate/proto"
)

var (
	exporter = netip.MustParseAddr("127.0.0.1")
	received = time.Date(2026, 11, 23, 10, 0, 1, 234_567_891, time.UTC)
)

// goflow2Omitted are the keys of goflow2's output whose values flowgate
// does not keep (appendGoFlow2 says so).
var goflow2Omitted = []string{
	"forwarding_status", "next_hop_as", "bgp_communities", "as_path", "mpls_ttl", "mpls_label", "mpls_ip",
	"observation_point_id", "layer_stack", "layer_size", "ipv6_routing_header_addresses", "ipv6_routing_header_seg_left",
}

// TestAppendGoFlow2AgreesWithGoflow2 decodes real exports (softflowd's
// NetFlow v5, v9, IPFIX; pmacctd's sFlow) with flowgate and with goflow2,
// and compares flowgate's goflow2 format with goflow2's own JSON output,
// key by key, for every record.
func TestAppendGoFlow2AgreesWithGoflow2(t *testing.T) {
	cfg, err := (*protoproducer.ProducerConfig)(nil).Compile()
	if err != nil {
		t.Fatal(err)
	}
	prod, err := protoproducer.CreateProtoProducer(cfg, protoproducer.CreateSamplingSystem)
	if err != nil {
		t.Fatal(err)
	}
	driver, err := goflowformat.FindFormat("json")
	if err != nil {
		t.Fatal(err)
	}
	args := &producer.ProduceArgs{Src: netip.AddrPortFrom(exporter, 40000), SamplerAddress: exporter, TimeReceived: received}
	types := map[string]int{}
	for _, sfl := range []bool{false, true} {
		dir := "../decoder/flow/testdata/fuzz/FuzzDecode"
		if sfl {
			dir = "../decoder/flow/testdata/fuzz/FuzzDecodeSFlow"
		}
		for name, datagrams := range fuzzcorpus.Read(t, dir) {
			if !strings.HasPrefix(name, "softflowd-") && !strings.HasPrefix(name, "pmacctd-") {
				continue // inputs the fuzzers found, not exports
			}
			dec := flow.NewDecoder(flow.NewTemplates())
			templates := netflow.CreateTemplateSystem()
			var batch pb.Batch
			var theirs []goflow2Record
			for _, d := range datagrams {
				var err error
				var msg any
				if sfl {
					_, err = dec.DecodeSFlow(d, exporter, received, &batch)
					var p sflow.Packet
					if err := sflow.DecodeMessageVersion(bytes.NewBuffer(d), &p); err != nil {
						t.Fatalf("%s: goflow2: %v", name, err)
					}
					msg = &p
				} else {
					_, err = dec.Decode(d, exporter, received, &batch)
					msg = goflow2Decode(t, d, templates)
				}
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				msgs, err := prod.Produce(msg, args)
				if err != nil {
					t.Fatalf("%s: goflow2: %v", name, err)
				}
				for _, m := range msgs {
					_, out, err := driver.Format(m)
					if err != nil {
						t.Fatalf("%s: goflow2: %v", name, err)
					}
					r := goflow2Record{json: out}
					if !sfl && d[1] == 10 {
						r.exportNs = strconv.FormatUint(uint64(binary.BigEndian.Uint32(d[4:]))*1e9, 10)
					}
					theirs = append(theirs, r)
				}
				prod.Commit(msgs)
			}
			if len(theirs) != len(batch.Flows) || len(theirs) == 0 {
				t.Fatalf("%s: flowgate decoded %d flows, goflow2 %d", name, len(batch.Flows), len(theirs))
			}
			for i, f := range batch.Flows {
				compareGoFlow2(t, name, f, format.GoFlow2{}.AppendFlow(nil, f), theirs[i])
				types[f.Type.String()]++
			}
		}
	}
	for _, ft := range []string{"NETFLOW_V5", "NETFLOW_V9", "IPFIX", "SFLOW_5"} {
		if types[ft] == 0 {
			t.Errorf("no %s record in the corpora", ft)
		}
	}
}

// goflow2Record is goflow2's JSON for one record and, for IPFIX, the export
// time of its datagram in nanoseconds.
type goflow2Record struct {
	json     []byte
	exportNs string
}

func goflow2Decode(t *testing.T, d []byte, templates netflow.NetFlowTemplateSystem) any {
	t.Helper()
	buf := bytes.NewBuffer(d)
	if d[1] == 5 {
		var p netflowlegacy.PacketNetFlowV5
		if err := netflowlegacy.DecodeMessageVersion(buf, &p); err != nil {
			t.Fatalf("goflow2: %v", err)
		}
		return &p
	}
	var v9 netflow.NFv9Packet
	var ipfix netflow.IPFIXPacket
	if err := netflow.DecodeMessageVersion(buf, templates, &v9, &ipfix); err != nil {
		t.Fatalf("goflow2: %v", err)
	}
	if d[1] == 9 {
		return &v9
	}
	return &ipfix
}

// compareGoFlow2 checks that ours has goflow2's keys in goflow2's order,
// less the omitted ones, with goflow2's values but where appendGoFlow2 says
// it differs.
func compareGoFlow2(t *testing.T, name string, f *pb.Flow, ours []byte, theirs goflow2Record) {
	t.Helper()
	ok, ov := orderedObject(t, ours)
	tk, tv := orderedObject(t, theirs.json)
	want := slices.DeleteFunc(slices.Clone(tk), func(k string) bool { return slices.Contains(goflow2Omitted, k) })
	if !slices.Equal(ok, want) {
		t.Fatalf("%s: keys\n ours %v\nwant %v", name, ok, want)
	}
	for _, k := range ok {
		o, w := ov[k], tv[k]
		switch {
		case (k == "in_if" || k == "out_if") && f.Type == pb.FlowType_SFLOW_5:
			// sFlow's words for "no interface", "dropped", "several".
			if n := mustInt(t, w); n >= 0x3fffffff {
				w = "0"
			}
		case (k == "time_flow_start_ns" || k == "time_flow_end_ns") && f.Type == pb.FlowType_NETFLOW_V5:
			// goflow2 adds the export header's nanoseconds; flowgate keeps milliseconds.
			w = w[:len(w)-6] + "000000"
		case (k == "time_flow_start_ns" || k == "time_flow_end_ns") && f.Type == pb.FlowType_IPFIX:
			// goflow2 ignores systemInitTimeMilliseconds and gives
			// uptime-relative flows the export time; flowgate knows better.
			if w == theirs.exportNs && f.StartUptimeMs != 0 {
				w = o
			}
		case (k == "time_flow_start_ns" || k == "time_flow_end_ns") && f.Type == pb.FlowType_NETFLOW_V9:
			// goflow2 subtracts uptimes unsigned: a flow from before the
			// exporter's uptime wrapped lands 2^32 ms (49.7 days) late.
			if mustInt(t, w)-mustInt(t, o) == 1<<32*1e6 {
				w = o
			}
		case k == "observation_domain_id" && f.Type == pb.FlowType_SFLOW_5:
			// goflow2 leaves sFlow's sub-agent ID out.
			if w == "0" {
				w = o
			}
		}
		if o != w {
			t.Errorf("%s: %s record: %s = %s, goflow2 %s", name, f.Type, k, o, w)
		}
	}
}

// orderedObject reads a flat JSON object into its keys in order and the
// raw text of each value.
func orderedObject(t *testing.T, b []byte) ([]string, map[string]string) {
	t.Helper()
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		t.Fatalf("not a JSON object: %v: %s", err, b)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if _, err := dec.Token(); err != nil {
		t.Fatal(err)
	}
	var keys []string
	vals := map[string]string{}
	for dec.More() {
		k, err := dec.Token()
		if err != nil {
			t.Fatal(err)
		}
		key := k.(string)
		if _, dup := vals[key]; dup {
			t.Fatalf("key %q twice in %s", key, b)
		}
		keys = append(keys, key)
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			t.Fatal(err)
		}
		vals[key] = strings.TrimSpace(string(v))
	}
	return keys, vals
}

func mustInt(t *testing.T, s string) int64 {
	t.Helper()
	var n int64
	if err := json.Unmarshal([]byte(s), &n); err != nil {
		t.Fatalf("%s is not a number", s)
	}
	return n
}
