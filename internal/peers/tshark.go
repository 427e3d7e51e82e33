package peers

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/flowgate/flowgate/internal/testtraffic"
)

// FlowRecord is one flow record as tshark decoded it: the cflow.* values of
// the record and of its datagram's header, as tshark prints them.
type FlowRecord struct {
	// Datagram is the index of the datagram the record came in.
	Datagram int
	Header   map[string]string
	Fields   map[string]string
}

// Options is the option data of a datagram, as tshark decoded it.
type Options struct {
	Datagram int
	Fields   map[string]string
}

// Decoded is what tshark found in a series of datagrams.
type Decoded struct {
	Flows   []FlowRecord
	Options []Options
}

// Tshark decodes NetFlow/IPFIX datagrams with tshark's cflow dissector, in
// the order given: templates must come before the data they describe.
func Tshark(t testing.TB, datagrams [][]byte) Decoded {
	t.Helper()
	const port = 2055
	out := tsharkJSON(t, datagrams, port, "cflow")
	var dec Decoded
	for i, p := range out {
		raw, ok := p.Source.Layers["cflow"]
		if !ok {
			t.Fatalf("tshark: datagram %d is not NetFlow/IPFIX", i)
		}
		var tree map[string]any
		if err := json.Unmarshal(raw, &tree); err != nil {
			t.Fatalf("tshark cflow layer: %v", err)
		}
		header := map[string]string{}
		leaves(tree, header, false)
		walkRecords(tree, func(rec map[string]any) {
			fields := map[string]string{}
			leaves(rec, fields, true)
			_, v4 := fields["cflow.srcaddr"]
			_, v6 := fields["cflow.srcaddrv6"]
			if v4 || v6 {
				dec.Flows = append(dec.Flows, FlowRecord{Datagram: i, Header: header, Fields: fields})
			} else {
				dec.Options = append(dec.Options, Options{Datagram: i, Fields: fields})
			}
		})
	}
	return dec
}

// tsharkPacket is one packet of tshark's JSON output.
type tsharkPacket struct {
	Source struct {
		Layers map[string]json.RawMessage `json:"layers"`
	} `json:"_source"`
}

// tsharkJSON has tshark decode datagrams, sent to port in a capture file
// in the order given, with the dissector named.
func tsharkJSON(t testing.TB, datagrams [][]byte, port uint16, dissector string) []tsharkPacket {
	t.Helper()
	Require(t, "tshark")
	path := filepath.Join(t.TempDir(), "export.pcap")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	pw, err := testtraffic.NewPcapWriter(f)
	if err != nil {
		t.Fatal(err)
	}
	src := netip.MustParseAddrPort("127.0.0.1:40000")
	dst := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), port)
	at := time.Unix(1_700_000_000, 0)
	for i, d := range datagrams {
		if err := pw.Write(at.Add(time.Duration(i)*time.Millisecond), testtraffic.UDPFrame(nil, src, dst, d)); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("tshark", "-r", path, "-d", fmt.Sprintf("udp.port==%d,%s", port, dissector), "-T", "json")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("tshark: %v %s", err, stderr.String())
	}
	var packets []tsharkPacket
	if err := json.Unmarshal(out, &packets); err != nil {
		t.Fatalf("tshark output: %v", err)
	}
	if len(packets) != len(datagrams) {
		t.Fatalf("tshark read %d packets of %d", len(packets), len(datagrams))
	}
	return packets
}

// isRecord says whether a subtree name is one data record: "pdu 3/29"
// (v5) or "Flow 3" (v9, IPFIX).
func isRecord(name string) bool {
	return strings.HasPrefix(name, "pdu ") || strings.HasPrefix(name, "Flow ")
}

// walkRecords calls fn for each record subtree.
func walkRecords(tree map[string]any, fn func(map[string]any)) {
	for k, v := range tree {
		sub, ok := v.(map[string]any)
		if !ok {
			continue
		}
		if isRecord(k) {
			fn(sub)
		} else {
			walkRecords(sub, fn)
		}
	}
}

// leaves copies the cflow.* values of tree into dst; deep also descends
// into subtrees (a record's), otherwise only header-level subtrees such as
// the timestamp are read.
func leaves(tree map[string]any, dst map[string]string, deep bool) {
	for k, v := range tree {
		switch v := v.(type) {
		case string:
			if strings.HasPrefix(k, "cflow.") {
				dst[k] = v
			}
		case map[string]any:
			if deep || strings.HasPrefix(k, "cflow.") {
				leaves(v, dst, deep)
			}
		}
	}
}

// Atoi reads one of tshark's decimal or 0x-hex numbers, failing t if it is
// not one.
func Atoi(t testing.TB, s string) int {
	t.Helper()
	n, err := strconv.ParseInt(strings.TrimSpace(s), 0, 64)
	if err != nil {
		t.Fatalf("tshark value %q: %v", s, err)
	}
	return int(n)
}
