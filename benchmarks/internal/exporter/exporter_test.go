package exporter

import (
	"bytes"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/flowgate/flowgate/benchmarks/internal/ident"
	"github.com/flowgate/flowgate/internal/peers"
	"github.com/flowgate/flowgate/internal/testtraffic"
)

const run = 3

// datagrams has an exporter of format f send three datagrams of n records
// from sequence number 1 on, the third after the template interval.
func datagrams(f Format, now time.Time, n int) [][]byte {
	e := New(Config{Format: f, Agent: netip.MustParseAddr("127.0.0.2"), Domain: 7, TemplateEvery: time.Minute}, now)
	var out [][]byte
	for i, at := range []time.Time{now, now.Add(time.Second), now.Add(2 * time.Minute)} {
		out = append(out, e.Append(nil, at, run, uint32(1+i*n), n))
	}
	return out
}

func TestNetFlowAndIPFIXAsTsharkDecodesThem(t *testing.T) {
	now := time.Unix(1_800_000_000, 250_000_000)
	for _, f := range []Format{V5, V9, IPFIX} {
		t.Run(string(f), func(t *testing.T) {
			n := DefaultRecords(f)
			dgs := datagrams(f, now, n)
			for _, d := range dgs {
				if len(d) > datagramBudget+100 {
					t.Errorf("a datagram of %d records is %d bytes", n, len(d))
				}
			}
			dec := peers.Tshark(t, dgs)
			if len(dec.Flows) != 3*n {
				t.Fatalf("tshark decoded %d records, want %d", len(dec.Flows), 3*n)
			}
			// tshark's records come in no set order: the source address says which is which.
			seen := map[uint32]bool{}
			first := map[int]peers.FlowRecord{}
			for _, r := range dec.Flows {
				_, seq, ok := ident.FromAddrs([]byte(r.Fields["cflow.srcaddr"]), []byte(r.Fields["cflow.dstaddr"]))
				if !ok || seq < 1 || seq > uint32(3*n) || seen[seq] {
					t.Fatalf("record %v: sequence %d out of place", r.Fields, seq)
				}
				seen[seq] = true
				at := now
				if r.Datagram == 1 {
					at = now.Add(time.Second)
				} else if r.Datagram == 2 {
					at = now.Add(2 * time.Minute)
				}
				if want := int(seq-1) / n; r.Datagram != want {
					t.Errorf("seq %d in datagram %d, want %d", seq, r.Datagram, want)
				}
				checkRecord(t, f, seq, r, MakeFlow(run, seq, uint64(at.UnixMilli())), at)
				first[r.Datagram] = r
			}
			// Header sequence numbers: v9 counts datagrams, v5 and IPFIX records.
			wantSeq := map[Format]int{V5: n, V9: 1, IPFIX: n}[f]
			if got := first[1].Header["cflow.sequence"]; got != strconv.Itoa(wantSeq) {
				t.Errorf("second datagram: sequence %s, want %d", got, wantSeq)
			}
			if f == V9 {
				// The count includes the template, sent in the first datagram and
				// again once the interval has passed.
				for i, want := range []int{n + 1, n, n + 1} {
					if got := first[i].Header["cflow.count"]; got != strconv.Itoa(want) {
						t.Errorf("datagram %d: count %s, want %d", i, got, want)
					}
				}
			}
		})
	}
}

func checkRecord(t *testing.T, f Format, seq uint32, r peers.FlowRecord, want Flow, at time.Time) {
	t.Helper()
	ip := func(a [4]byte) string { return netip.AddrFrom4(a).String() }
	expect := map[string]string{
		"cflow.srcaddr":   ip(want.Src),
		"cflow.dstaddr":   ip(want.Dst),
		"cflow.srcport":   strconv.Itoa(int(want.SrcPort)),
		"cflow.dstport":   strconv.Itoa(int(want.DstPort)),
		"cflow.protocol":  strconv.Itoa(int(want.Proto)),
		"cflow.octets":    strconv.FormatUint(want.Bytes, 10),
		"cflow.packets":   strconv.FormatUint(want.Packets, 10),
		"cflow.inputint":  strconv.Itoa(int(want.InIf)),
		"cflow.outputint": strconv.Itoa(int(want.OutIf)),
		"cflow.tcpflags":  fmt.Sprintf("0x%02x", want.TCPFlags),
	}
	for k, v := range expect {
		if got := r.Fields[k]; got != v {
			t.Errorf("seq %d: %s = %q, want %q", seq, k, got, v)
		}
	}
	// Times: absolute in IPFIX, uptimes in v5 and v9 (the exporter booted
	// an hour before the first datagram).
	if f == IPFIX {
		for k, ms := range map[string]uint64{"cflow.abstimestart": want.StartMs, "cflow.abstimeend": want.EndMs} {
			got, err := time.Parse("Jan 2, 2006 15:04:05.000000000 MST", r.Fields[k])
			if err != nil || uint64(got.UnixMilli()) != ms {
				t.Errorf("seq %d: %s = %q, want %s (%v)", seq, k, r.Fields[k], time.UnixMilli(int64(ms)).UTC(), err)
			}
		}
		return
	}
	bootMs := uint64(at.UnixMilli()) - uint64(at.Sub(time.Unix(1_800_000_000, 250_000_000).Add(-time.Hour)).Milliseconds())
	for k, ms := range map[string]uint64{"cflow.timestart": want.StartMs, "cflow.timeend": want.EndMs} {
		if got, want := r.Fields[k], fmt.Sprintf("%d.%03d000000", (ms-bootMs)/1000, (ms-bootMs)%1000); got != want {
			t.Errorf("seq %d: %s = %q, want %q", seq, k, got, want)
		}
	}
}

func TestSFlowAsTsharkDecodesIt(t *testing.T) {
	peers.Require(t, "tshark")
	now := time.Unix(1_800_000_000, 0)
	n := DefaultRecords(SFlow)
	dgs := datagrams(SFlow, now, n)
	path := filepath.Join(t.TempDir(), "sflow.pcap")
	file, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	pw, err := testtraffic.NewPcapWriter(file)
	if err != nil {
		t.Fatal(err)
	}
	src, dst := netip.MustParseAddrPort("127.0.0.2:40000"), netip.MustParseAddrPort("127.0.0.1:6343")
	for i, d := range dgs {
		if len(d) > datagramBudget {
			t.Errorf("a datagram of %d samples is %d bytes", n, len(d))
		}
		if err := pw.Write(now.Add(time.Duration(i)*time.Millisecond), testtraffic.UDPFrame(nil, src, dst, d)); err != nil {
			t.Fatal(err)
		}
	}
	if err := file.Close(); err != nil {
		t.Fatal(err)
	}
	// One line per datagram; inside it the sampled packets' headers follow
	// the outer one (127.0.0.2 -> 127.0.0.1) in order.
	cmd := exec.Command("tshark", "-r", path, "-T", "fields", "-E", "occurrence=a", "-E", "aggregator=;",
		"-e", "sflow_245.sequence_number", "-e", "sflow_245.numsamples", "-e", "ip.src", "-e", "ip.dst",
		"-e", "tcp.srcport", "-e", "udp.srcport", "-e", "sflow_245.header.frame_length", "-e", "ip.proto")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("tshark: %v %s", err, stderr.String())
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != len(dgs) {
		t.Fatalf("tshark printed %d lines for %d datagrams:\n%s", len(lines), len(dgs), out)
	}
	for i, line := range lines {
		cols := strings.Split(line, "\t")
		if cols[0] != strconv.Itoa(i) || cols[1] != strconv.Itoa(n) {
			t.Errorf("datagram %d: sequence %s, %s samples; want %d, %d", i, cols[0], cols[1], i, n)
		}
		srcs, dsts, protos := strings.Split(cols[2], ";"), strings.Split(cols[3], ";"), strings.Split(cols[7], ";")
		frames := strings.Split(cols[6], ";")
		tcpPorts, udpPorts := strings.Split(cols[4], ";"), strings.Split(cols[5], ";")[1:] // the first is the outer datagram's
		if len(srcs) != n+1 || len(frames) != n {
			t.Fatalf("datagram %d: %d addresses, %d frames, want %d, %d", i, len(srcs), len(frames), n+1, n)
		}
		var tcp, udp int
		for j := range n {
			seq := uint32(1 + i*n + j)
			want := MakeFlow(run, seq, uint64(now.UnixMilli()))
			port := ""
			if want.Proto == 6 {
				port, tcp = tcpPorts[tcp], tcp+1
			} else {
				port, udp = udpPorts[udp], udp+1
			}
			got := []string{srcs[j+1], dsts[j+1], protos[j+1], port, frames[j]}
			exp := []string{netip.AddrFrom4(want.Src).String(), netip.AddrFrom4(want.Dst).String(),
				strconv.Itoa(int(want.Proto)), strconv.Itoa(int(want.SrcPort)), strconv.FormatUint(want.Bytes/want.Packets+4, 10)}
			if strings.Join(got, " ") != strings.Join(exp, " ") {
				t.Errorf("seq %d: tshark read %v, want %v", seq, got, exp)
			}
		}
	}
}

func TestRecordsPerDatagram(t *testing.T) {
	for _, f := range Formats {
		if d, m := DefaultRecords(f), MaxRecords(f); d < 1 || d > m {
			t.Errorf("%s: default %d records, max %d", f, d, m)
		}
		if _, err := ParseFormat(strings.ToUpper(string(f))); err != nil {
			t.Error(err)
		}
	}
	if _, err := ParseFormat("v7"); err == nil {
		t.Error("v7 parsed")
	}
	// The largest datagram fits UDP.
	for _, f := range Formats {
		e := New(Config{Format: f, Agent: netip.MustParseAddr("127.0.0.2"), TemplateEvery: time.Minute}, time.Now())
		if d := e.Append(nil, time.Now(), 1, 1, MaxRecords(f)); len(d) > maxDatagram {
			t.Errorf("%s: %d records make %d bytes", f, MaxRecords(f), len(d))
		}
	}
}
