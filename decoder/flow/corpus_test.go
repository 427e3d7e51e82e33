package flow

import (
	"flag"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/flowgate/flowgate/internal/fuzzcorpus"
	"github.com/flowgate/flowgate/internal/peers"
	"github.com/flowgate/flowgate/internal/testtraffic"
	pb "github.com/flowgate/flowgate/proto"
)

var capture = flag.Bool("capture", false, "capture the fuzz seed corpora from softflowd and pmacctd (TestCaptureCorpus)")

// TestCaptureCorpus writes the seed corpora of the fuzz targets from real
// exports: softflowd's NetFlow v5, v9 and IPFIX and pmacctd's sFlow of a
// generated capture for this package's targets, and the records decoded
// from them for format's. Run it when the decoders learn something new:
//
//	go test ./decoder/flow -run TestCaptureCorpus -capture
func TestCaptureCorpus(t *testing.T) {
	if !*capture {
		t.Skip("writes testdata: run with -capture")
	}
	dir := t.TempDir()
	pcap := filepath.Join(dir, "traffic.pcap")
	if err := testtraffic.WriteFile(pcap, testtraffic.Flows(40, 7, time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC), true)); err != nil {
		t.Fatal(err)
	}
	var batch pb.Batch
	dec := NewDecoder(NewTemplates())
	for _, v := range []int{5, 9, 10} {
		relay := peers.NewRelay(t, "127.0.0.1:9") // discard: only the copies count
		var extra []string
		if v != 5 {
			extra = append(extra, "-6")
		}
		exp := peers.Softflowd(t, pcap, relay.Addr, v, extra...)
		ds := relay.Wait(t, exp.Datagrams, 10*time.Second)
		if len(ds) < 2 {
			t.Fatalf("softflowd v%d sent %d datagrams, want 2 or more", v, len(ds))
		}
		fuzzcorpus.Write(t, "testdata/fuzz/FuzzDecode", fmt.Sprintf("softflowd-v%d", v), ds[0], ds[1])
		for _, d := range ds {
			if _, err := dec.Decode(d, testExporter, testReceived, &batch); err != nil {
				t.Fatal(err)
			}
		}
	}

	relay := peers.NewRelay(t, "127.0.0.1:9")
	peers.Sfprobe(t, pcap, relay.Addr, "192.0.2.200", 3, 2, 20)
	ds := relay.Flush(t)
	counters, short := 0, false
	for i, d := range ds {
		res, err := dec.DecodeSFlow(d, testExporter, testReceived, &batch)
		if err != nil {
			t.Fatal(err)
		}
		// A few datagrams of each shape: full, short, with counters.
		if res.Counters > 0 || i < 2 || res.Flows < 3 && !short {
			short = short || res.Flows < 3
			counters += res.Counters
			fuzzcorpus.Write(t, "testdata/fuzz/FuzzDecodeSFlow", fmt.Sprintf("pmacctd-sfprobe-%03d", i), d)
		}
	}
	if counters == 0 {
		t.Fatal("pmacctd sent no counter sample")
	}

	// One record of each export version and address family for format's targets.
	seen := map[string]bool{}
	for _, f := range batch.Flows {
		k := fmt.Sprintf("%s-ipv%d", strings.ToLower(f.Type.String()), f.IpVersion)
		if seen[k] {
			continue
		}
		seen[k] = true
		b, err := proto.Marshal(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, target := range []string{"FuzzAppendFlow", "FuzzAppendGoFlow2"} {
			fuzzcorpus.Write(t, "../../format/testdata/fuzz/"+target, k, b)
		}
	}
	for i, c := range batch.Counters[:1] {
		b, err := proto.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		fuzzcorpus.Write(t, "../../format/testdata/fuzz/FuzzAppendCounters", fmt.Sprintf("sflow-%d", i), b)
	}
}
