package load

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/flowgate/flowgate/benchmarks/internal/exporter"
	"github.com/flowgate/flowgate/benchmarks/internal/ident"
	"github.com/flowgate/flowgate/decoder/flow"
	"github.com/flowgate/flowgate/internal/testtraffic"
	pb "github.com/flowgate/flowgate/proto"
)

// listenUDP returns a loopback socket and a channel of what it receives,
// until the test ends.
func listenUDP(t *testing.T) (*net.UDPConn, <-chan Datagram) {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadBuffer(8 << 20)
	t.Cleanup(func() { c.Close() })
	ch := make(chan Datagram, 100_000)
	go func() {
		buf := make([]byte, 65536)
		for {
			n, from, err := c.ReadFromUDPAddrPort(buf)
			if err != nil {
				close(ch)
				return
			}
			ch <- Datagram{From: from, Payload: bytes.Clone(buf[:n])}
		}
	}()
	return c, ch
}

// receive gathers datagrams until n arrived or none came for a second.
func receive(t *testing.T, ch <-chan Datagram, n int) []Datagram {
	t.Helper()
	var got []Datagram
	for len(got) < n {
		select {
		case d := <-ch:
			got = append(got, d)
		case <-time.After(time.Second):
			t.Fatalf("%d datagrams of %d arrived", len(got), n)
		}
	}
	return got
}

func TestFlowsFromSeveralExportersCarryEveryIdentityOnce(t *testing.T) {
	for _, f := range []exporter.Format{exporter.V5, exporter.V9, exporter.IPFIX} {
		t.Run(string(f), func(t *testing.T) {
			c, ch := listenUDP(t)
			sum, err := Flows(context.Background(), FlowConfig{
				Target: c.LocalAddr().(*net.UDPAddr).AddrPort(), Format: f, Exporters: 3,
				Rate: 20_000, Duration: 150 * time.Millisecond, Run: 9, TemplateEvery: time.Second,
			})
			if err != nil {
				t.Fatal(err)
			}
			if sum.Events == 0 || sum.Events != sum.Datagrams*int64(sum.Records) || sum.Exporters != 3 || sum.Sources != "addresses 127.0.0.2-127.0.0.4" {
				t.Fatalf("summary %+v", sum)
			}
			// flowgate's decoder reads them back; templates come first from each exporter.
			dec := flow.NewDecoder(flow.NewTemplates())
			var batch pb.Batch
			from := map[netip.Addr]bool{}
			for _, d := range receive(t, ch, int(sum.Datagrams)) {
				from[d.From.Addr()] = true
				if _, err := dec.Decode(d.Payload, d.From.Addr(), time.Now(), &batch); err != nil {
					t.Fatal(err)
				}
			}
			if len(from) != 3 {
				t.Errorf("datagrams came from %v", from)
			}
			var count ident.Counter
			for _, fl := range batch.Flows {
				src, dst := netip.AddrFrom4([4]byte(fl.SrcAddr)), netip.AddrFrom4([4]byte(fl.DstAddr))
				run, seq, ok := ident.FromAddrs([]byte(src.String()), []byte(dst.String()))
				if !ok || run != 9 {
					t.Fatalf("flow %s -> %s is not of run 9", src, dst)
				}
				count.Add(seq)
			}
			if int64(count.Unique) != sum.Events || count.Duplicates != 0 {
				t.Fatalf("decoded %+v, sent %d", count, sum.Events)
			}
		})
	}
}

func TestReplayKeepsEachSendersOrder(t *testing.T) {
	path := filepath.Join(t.TempDir(), "export.pcap")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	pw, err := testtraffic.NewPcapWriter(f)
	if err != nil {
		t.Fatal(err)
	}
	routers := []netip.AddrPort{netip.MustParseAddrPort("192.0.2.1:5000"), netip.MustParseAddrPort("192.0.2.2:5000")}
	at := time.Unix(1_700_000_000, 0)
	for i := range 10 {
		to := netip.MustParseAddrPort("192.0.2.100:2055")
		if i == 5 {
			to = netip.MustParseAddrPort("192.0.2.100:9999") // another port: filtered out
		}
		payload := []byte("datagram " + strconv.Itoa(i))
		if err := pw.Write(at, testtraffic.UDPFrame(nil, routers[i%2], to, payload)); err != nil {
			t.Fatal(err)
		}
	}
	f.Close()
	dgs, err := ReadPcap(path, 2055)
	if err != nil {
		t.Fatal(err)
	}
	if len(dgs) != 9 || string(dgs[0].Payload) != "datagram 0" || dgs[1].From != routers[1] {
		t.Fatalf("read %d datagrams: %+v", len(dgs), dgs[:2])
	}
	c, ch := listenUDP(t)
	sum, err := Replay(context.Background(), ReplayConfig{Target: c.LocalAddr().(*net.UDPAddr).AddrPort(), Datagrams: dgs,
		Exporters: 4, Rate: 1000, Duration: 27 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Datagrams != 27 || sum.Exporters != 2 {
		t.Fatalf("summary %+v", sum)
	}
	// Three passes over the capture; each sender's datagrams in its order.
	last := map[netip.Addr]int{}
	for _, d := range receive(t, ch, 27) {
		n, _ := strconv.Atoi(string(bytes.TrimPrefix(d.Payload, []byte("datagram "))))
		prev, seen := last[d.From.Addr()]
		if seen && n <= prev && !(prev >= 8 && n <= 1) {
			t.Errorf("%s sent %d after %d", d.From.Addr(), n, prev)
		}
		if seen && (n%2) != (prev%2) {
			t.Errorf("%s sent datagrams of two routers", d.From.Addr())
		}
		last[d.From.Addr()] = n
	}
}

func TestReadPcapRefusals(t *testing.T) {
	dir := t.TempDir()
	for name, data := range map[string][]byte{
		"bad pcapng": {0x0a, 0x0d, 0x0d, 0x0a, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0},
		"short":      {1, 2, 3},
		"text":       []byte("this is not a capture file at all"),
		"no udp":     pcapHeaderOnly(),
		"cut short":  append(pcapHeaderOnly(), 0, 0, 0, 0, 0, 0, 0, 0, 100, 0, 0, 0, 100, 0, 0, 0, 1, 2),
	} {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := ReadPcap(path, 0); err == nil {
			t.Errorf("%s: read without error", name)
		}
	}
}

func pcapHeaderOnly() []byte {
	var b bytes.Buffer
	if _, err := testtraffic.NewPcapWriter(&b); err != nil {
		panic(err)
	}
	return b.Bytes()
}

func TestSyslogOctetCountedOverSeveralConnections(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	msgs := make(chan []byte, 100_000)
	conns := make(chan int, 10)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns <- 1
			go readOctetCounted(c, msgs)
		}
	}()
	sum, err := Syslog(context.Background(), SyslogConfig{Target: ln.Addr().String(), Conns: 3, Rate: 5_000,
		Duration: 100 * time.Millisecond, Run: 4, Size: 300, Framing: OctetCounting})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Events == 0 || sum.Exporters != 3 || len(conns) != 3 {
		t.Fatalf("summary %+v, %d connections", sum, len(conns))
	}
	var count ident.Counter
	for range sum.Events {
		select {
		case m := <-msgs:
			run, seq, _, ok := ident.FromToken(m)
			if !ok || run != 4 || !bytes.HasPrefix(m, []byte("<134>1 ")) || len(m) != 300 {
				t.Fatalf("message %q (%d bytes)", m, len(m))
			}
			count.Add(seq)
		case <-time.After(2 * time.Second):
			t.Fatalf("%d of %d messages arrived", count.Events, sum.Events)
		}
	}
	if int64(count.Unique) != sum.Events {
		t.Fatalf("%+v of %d", count, sum.Events)
	}
}

func readOctetCounted(c net.Conn, out chan<- []byte) {
	defer c.Close()
	r := bufio.NewReader(c)
	for {
		n, err := r.ReadString(' ')
		if err != nil {
			return
		}
		size, err := strconv.Atoi(n[:len(n)-1])
		if err != nil {
			return
		}
		m := make([]byte, size)
		if _, err := io.ReadFull(r, m); err != nil {
			return
		}
		out <- m
	}
}
