package flow

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

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
		writeCorpus(t, "testdata/fuzz/FuzzDecode", fmt.Sprintf("softflowd-v%d", v), ds[0], ds[1])
		for _, d := range ds {
			if _, err := dec.Decode(d, testExporter, testReceived, &batch); err != nil {
				t.Fatal(err)
			}
		}
	}

	relay := peers.NewRelay(t, "127.0.0.1:9")
	peers.Sfprobe(t, pcap, relay.Addr, "192.0.2.200", 3, 2, 20)
	ds := relay.Drain(t, 5*time.Second)
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
			writeCorpus(t, "testdata/fuzz/FuzzDecodeSFlow", fmt.Sprintf("pmacctd-sfprobe-%03d", i), d)
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
			writeCorpus(t, "../../format/testdata/fuzz/"+target, k, b)
		}
	}
	for i, c := range batch.Counters[:1] {
		b, err := proto.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		writeCorpus(t, "../../format/testdata/fuzz/FuzzAppendCounters", fmt.Sprintf("sflow-%d", i), b)
	}
}

// writeCorpus writes one seed in the "go test fuzz v1" format.
func writeCorpus(t *testing.T, dir, name string, args ...[]byte) {
	t.Helper()
	var b strings.Builder
	b.WriteString("go test fuzz v1\n")
	for _, a := range args {
		fmt.Fprintf(&b, "[]byte(%s)\n", strconv.Quote(string(a)))
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

// readCorpus returns the seeds of a fuzz target's corpus by file name, each
// as its []byte arguments.
func readCorpus(t *testing.T, target string) map[string][][]byte {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata/fuzz", target, "*"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no seed corpus for %s: %v", target, err)
	}
	seeds := map[string][][]byte{}
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSpace(string(data)), "\n")
		if lines[0] != "go test fuzz v1" {
			t.Fatalf("%s: not a fuzz corpus file", file)
		}
		for _, l := range lines[1:] {
			q, ok := strings.CutPrefix(l, "[]byte(")
			q, ok2 := strings.CutSuffix(q, ")")
			s, err := strconv.Unquote(q)
			if !ok || !ok2 || err != nil {
				t.Fatalf("%s: cannot read %q", file, l)
			}
			seeds[filepath.Base(file)] = append(seeds[filepath.Base(file)], bytes.Clone([]byte(s)))
		}
	}
	return seeds
}
