package pcap

import (
	"bytes"
	"encoding/binary"
	"errors"
	"flag"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flowgate/flowgate/internal/fuzzcorpus"
	"github.com/flowgate/flowgate/internal/peers"
	"github.com/flowgate/flowgate/internal/testtraffic"
)

var capture = flag.Bool("capture", false, "write the fuzz seed corpus (TestCaptureCorpus)")

var (
	routerA = netip.MustParseAddrPort("192.0.2.1:5000")
	routerB = netip.MustParseAddrPort("[2001:db8::2]:5001")
	sink    = netip.MustParseAddrPort("192.0.2.100:2055")
	sink6   = netip.MustParseAddrPort("[2001:db8::100]:2055")
	start   = time.Unix(1_700_000_000, 123_456_000)
)

// exports writes a classic capture of six datagrams to path, from two
// routers (one over IPv6), with a TCP packet between them.
func exports(t testing.TB, path string) [][]byte {
	t.Helper()
	var b bytes.Buffer
	pw, err := testtraffic.NewPcapWriter(&b)
	if err != nil {
		t.Fatal(err)
	}
	var payloads [][]byte
	for i := range 6 {
		p := []byte(strings.Repeat("export ", i+1))
		payloads = append(payloads, p)
		frame := testtraffic.UDPFrame(nil, routerA, sink, p)
		if i%2 == 1 {
			frame = udp6Frame(routerB, sink6, p)
		}
		if err := pw.Write(start.Add(time.Duration(i)*time.Millisecond), frame); err != nil {
			t.Fatal(err)
		}
		if i == 2 {
			// A packet that is not UDP: skipped.
			tcp := testtraffic.UDPFrame(nil, routerA, sink, []byte("tcp"))
			tcp[14+9] = 6
			if err := pw.Write(start, tcp); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := os.WriteFile(path, b.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return payloads
}

// udp6Frame is an Ethernet frame of an IPv6 UDP datagram (checksum left
// at zero: the reader does not check it).
func udp6Frame(src, dst netip.AddrPort, payload []byte) []byte {
	b := []byte{0, 0, 0x5e, 0, 0, 2, 0, 0, 0x5e, 0, 0, 1, 0x86, 0xdd}
	n := 8 + len(payload)
	b = append(b, 0x60, 0, 0, 0, byte(n>>8), byte(n), 17, 64)
	b = append(b, src.Addr().AsSlice()...)
	b = append(b, dst.Addr().AsSlice()...)
	b = binary.BigEndian.AppendUint16(b, src.Port())
	b = binary.BigEndian.AppendUint16(b, dst.Port())
	b = binary.BigEndian.AppendUint16(b, uint16(n))
	b = append(b, 0, 0)
	return append(b, payload...)
}

func readAll(t testing.TB, r io.Reader) ([]Datagram, error) {
	t.Helper()
	pr, err := NewReader(r)
	if err != nil {
		return nil, err
	}
	var out []Datagram
	for {
		d, err := pr.Next()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		d.Payload = bytes.Clone(d.Payload)
		out = append(out, d)
	}
}

// TestReadFormats: the same datagrams come out of the classic capture and
// of tshark's conversions of it to pcapng and to nanosecond pcap.
func TestReadFormats(t *testing.T) {
	peers.Require(t, "tshark")
	dir := t.TempDir()
	classic := filepath.Join(dir, "exports.pcap")
	payloads := exports(t, classic)
	files := map[string]string{"pcap": classic}
	for _, format := range []string{"pcapng", "nsecpcap"} {
		out := filepath.Join(dir, "exports."+format)
		if b, err := exec.Command("tshark", "-r", classic, "-F", format, "-w", out).CombinedOutput(); err != nil {
			t.Fatalf("tshark -F %s: %v %s", format, err, b)
		}
		files[format] = out
	}
	for format, path := range files {
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		dgs, err := readAll(t, f)
		f.Close()
		if err != nil {
			t.Fatalf("%s: %v", format, err)
		}
		if len(dgs) != len(payloads) {
			t.Fatalf("%s: %d datagrams, want %d", format, len(dgs), len(payloads))
		}
		for i, d := range dgs {
			from, to := routerA, sink
			if i%2 == 1 {
				from, to = routerB, sink6
			}
			at := start.Add(time.Duration(i) * time.Millisecond)
			if !bytes.Equal(d.Payload, payloads[i]) || d.From != from || d.To != to || !d.At.Equal(at) {
				t.Errorf("%s: datagram %d: %s → %s at %s %q; want %s → %s at %s %q", format, i, d.From, d.To, d.At, d.Payload, from, to, at, payloads[i])
			}
		}
	}
}

// TestRawIP: a capture of raw IP packets (link type 101), big-endian.
func TestRawIP(t *testing.T) {
	var b bytes.Buffer
	h := make([]byte, 24)
	binary.BigEndian.PutUint32(h, magicMicro)
	binary.BigEndian.PutUint32(h[20:], linkRaw)
	b.Write(h)
	frame := testtraffic.UDPFrame(nil, routerA, sink, []byte("raw"))[14:]
	rec := make([]byte, 16)
	binary.BigEndian.PutUint32(rec, 1_700_000_000)
	binary.BigEndian.PutUint32(rec[8:], uint32(len(frame)))
	binary.BigEndian.PutUint32(rec[12:], uint32(len(frame)))
	b.Write(rec)
	b.Write(frame)
	dgs, err := readAll(t, &b)
	if err != nil || len(dgs) != 1 || string(dgs[0].Payload) != "raw" || dgs[0].From != routerA {
		t.Fatalf("read %+v, %v", dgs, err)
	}
}

// TestRefusals: what is not a capture, or is cut, is refused by where it
// goes wrong.
func TestRefusals(t *testing.T) {
	dir := t.TempDir()
	classic := filepath.Join(dir, "exports.pcap")
	exports(t, classic)
	whole, err := os.ReadFile(classic)
	if err != nil {
		t.Fatal(err)
	}
	huge := bytes.Clone(whole[:24+16])
	binary.LittleEndian.PutUint32(huge[24+8:], 1<<30)
	ng := []byte{0x0a, 0x0d, 0x0d, 0x0a, 28, 0, 0, 0, 0x4d, 0x3c, 0x2b, 0x1a, 1, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 28, 0, 0, 0}
	badLen := append(bytes.Clone(ng), 6, 0, 0, 0, 7, 0, 0, 0)
	noIface := append(bytes.Clone(ng), 6, 0, 0, 0, 32, 0, 0, 0)
	noIface = append(append(noIface, make([]byte, 20)...), 32, 0, 0, 0)
	for _, c := range []struct {
		name string
		data []byte
		want string
	}{
		{"text", []byte("<14>1 2026-12-04T06:00:00Z host app - - - hello\n"), "not a pcap or pcapng capture"},
		{"short", []byte{0xd4, 0xc3}, "not a pcap or pcapng capture"},
		{"cut header", whole[:20], "capture cut short at byte 20"},
		{"cut record", whole[:len(whole)-3], "cut short at byte"},
		{"huge record", huge, "packet record at byte 24: 1073741824 bytes captured"},
		{"pcapng bad length", badLen, "block at byte 28: a length of 7 bytes"},
		{"pcapng no interface", noIface, "interface 0 was not described"},
	} {
		_, err := readAll(t, bytes.NewReader(c.data))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error saying %q", c.name, err, c.want)
		}
	}
}

// TestCaptureCorpus writes FuzzReader's seeds: a classic capture and
// tshark's pcapng of it.
//
//	go test ./decoder/pcap -run TestCaptureCorpus -capture
func TestCaptureCorpus(t *testing.T) {
	if !*capture {
		t.Skip("writes testdata: run with -capture")
	}
	dir := t.TempDir()
	classic := filepath.Join(dir, "exports.pcap")
	exports(t, classic)
	ng := filepath.Join(dir, "exports.pcapng")
	if b, err := exec.Command("tshark", "-r", classic, "-F", "pcapng", "-w", ng).CombinedOutput(); err != nil {
		t.Fatalf("tshark: %v %s", err, b)
	}
	for name, path := range map[string]string{"pcap": classic, "pcapng": ng} {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		fuzzcorpus.Write(t, "testdata/fuzz/FuzzReader", name, b)
	}
}

// FuzzReader: no input makes the reader panic, loop or return a payload
// outside what it read.
func FuzzReader(f *testing.F) {
	for _, seed := range fuzzcorpus.Read(f, "testdata/fuzz/FuzzReader") {
		f.Add(seed[0])
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := NewReader(bytes.NewReader(data))
		if err != nil {
			return
		}
		for range len(data) + 1 {
			d, err := r.Next()
			if err != nil {
				return
			}
			if len(d.Payload) > len(data) {
				t.Fatalf("a payload of %d bytes from %d", len(d.Payload), len(data))
			}
		}
		t.Fatal("more datagrams than bytes")
	})
}
