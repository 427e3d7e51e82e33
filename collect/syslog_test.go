package collect

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"google.golang.org/protobuf/proto"

	"github.com/flowgate/flowgate/buffer"
	"github.com/flowgate/flowgate/internal/apptest"
	"github.com/flowgate/flowgate/internal/peers"
	pb "github.com/flowgate/flowgate/proto"
	"github.com/flowgate/flowgate/tlsfiles"
)

// syslogSetup is a running syslog intake on a buffer of its own.
type syslogSetup struct {
	si   *SyslogIntake
	buf  *buffer.Buffer
	m    *Metrics
	port int
	cons *buffer.Consumer
	stop func()
	// log is what the intake (and the buffer) logged, at info and above.
	log *apptest.SyncBuffer
}

func newSyslogSetup(t *testing.T, protocol string, bufBytes int64, change func(*SyslogConfig)) *syslogSetup {
	t.Helper()
	logged := &apptest.SyncBuffer{}
	log := slog.New(slog.NewTextHandler(logged, nil))
	ctx := context.Background()
	buf, err := buffer.Open(ctx, buffer.Config{Dir: t.TempDir(), MaxBytes: bufBytes}, log)
	if err != nil {
		t.Fatal(err)
	}
	network := "tcp"
	if protocol == "udp" {
		network = "udp"
	}
	s := &syslogSetup{buf: buf, m: NewMetrics(prometheus.NewRegistry(), log), port: apptest.FreePort(t, network), log: logged}
	cfg := DefaultSyslogConfig("test intake", protocol, s.port)
	cfg.Addr = "127.0.0.1:" + strconv.Itoa(s.port)
	if change != nil {
		change(&cfg)
	}
	s.si, err = NewSyslogIntake(cfg, buf, s.m, log)
	if err != nil {
		t.Fatal(err)
	}
	if s.cons, err = buf.Consume(ctx, cfg.Subject, 1000); err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := s.si.Run(runCtx); err != nil {
			t.Error(err)
		}
	}()
	var once sync.Once
	s.stop = func() {
		once.Do(func() {
			cancel()
			<-done
		})
	}
	t.Cleanup(func() {
		s.stop()
		s.cons.Stop()
		buf.Close()
	})
	return s
}

// logs reads n records from the buffer, acknowledging them, or fails
// after timeout.
func (s *syslogSetup) logs(t *testing.T, n int, timeout time.Duration) []*pb.Log {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var out []*pb.Log
	for len(out) < n {
		msg, err := s.cons.Next(ctx)
		if err != nil {
			t.Fatalf("%d records in the buffer after %s, want %d: %v", len(out), timeout, n, err)
		}
		var b pb.Batch
		if err := proto.Unmarshal(msg.Data(), &b); err != nil {
			t.Fatal(err)
		}
		out = append(out, b.Logs...)
		if err := msg.Ack(); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

func value(t *testing.T, c prometheus.Collector) float64 {
	t.Helper()
	return sumOf(t, c, func(*dto.Metric) bool { return true })
}

// sumOf sums the counters and gauges of c's series that keep says to.
func sumOf(t *testing.T, c prometheus.Collector, keep func(*dto.Metric) bool) float64 {
	t.Helper()
	ch := make(chan prometheus.Metric, 16)
	c.Collect(ch)
	close(ch)
	var sum float64
	for m := range ch {
		var d dto.Metric
		if err := m.Write(&d); err != nil {
			t.Fatal(err)
		}
		if !keep(&d) {
			continue
		}
		switch {
		case d.Counter != nil:
			sum += d.Counter.GetValue()
		case d.Gauge != nil:
			sum += d.Gauge.GetValue()
		}
	}
	return sum
}

// TestSyslogFromLogger has util-linux logger send over every framing and
// format it has, and checks each message is in the buffer once with the
// header fields it was sent with.
func TestSyslogFromLogger(t *testing.T) {
	for _, tc := range []struct {
		name string
		opt  peers.LoggerOptions
	}{
		{"tcp rfc5424 lf", peers.LoggerOptions{Format: "rfc5424", TCP: true}},
		{"tcp rfc5424 octet counting", peers.LoggerOptions{Format: "rfc5424", TCP: true, OctetCount: true}},
		{"tcp rfc3164 lf", peers.LoggerOptions{Format: "rfc3164", TCP: true}},
		{"tcp rfc3164 octet counting", peers.LoggerOptions{Format: "rfc3164", TCP: true, OctetCount: true}},
		{"udp rfc5424", peers.LoggerOptions{Format: "rfc5424"}},
		{"udp rfc3164", peers.LoggerOptions{Format: "rfc3164"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			protocol := "udp"
			if tc.opt.TCP {
				protocol = "tcp"
			}
			s := newSyslogSetup(t, protocol, 256<<20, nil)
			tc.opt.Tag = "app-" + strings.ReplaceAll(tc.name, " ", "-")
			const n = 500
			msgs := make([]string, n)
			for i := range msgs {
				msgs[i] = fmt.Sprintf("message %d from logger: key=value \"quoted\"", i)
			}
			peers.Logger(t, s.port, tc.opt, msgs...)
			got := s.logs(t, n, 20*time.Second)
			want := pb.LogFormat_RFC5424
			if tc.opt.Format == "rfc3164" {
				want = pb.LogFormat_RFC3164
			}
			host, _ := os.Hostname()
			seen := map[string]int{}
			for _, l := range got {
				if l.Format != want || string(l.AppName) != tc.opt.Tag || string(l.Hostname) != host || l.Pri != 13 || l.TimestampNs == 0 ||
					!bytes.Equal(l.Sender, []byte{127, 0, 0, 1}) || l.TimeReceivedNs == 0 {
					t.Fatalf("record %+v (want format %s, app %s, host %s)", l, want, tc.opt.Tag, host)
				}
				seen[string(l.Msg)]++
			}
			for _, m := range msgs {
				if seen[m] != 1 {
					t.Errorf("%q stored %d times", m, seen[m])
				}
			}
			if d := value(t, s.m.droppedEvents); d != 0 {
				t.Errorf("%v events dropped", d)
			}
		})
	}
}

// TestSyslogBackpressure fills the buffer from a TCP sender: the intake
// stops reading (the sender's writes block) instead of dropping, and once
// the buffer is drained every frame is there, once.
func TestSyslogBackpressure(t *testing.T) {
	s := newSyslogSetup(t, "tcp", 1<<20, nil)
	conn, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", s.port))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	const n, pad = 20_000, 2000 // 40 MB: more than the buffer and the sockets hold
	sent := make(chan error, 1)
	go func() {
		filler := strings.Repeat("x", pad)
		var w bytes.Buffer
		for i := range n {
			fmt.Fprintf(&w, "<13>1 - h app - - - seq=%d %s\n", i, filler)
			if w.Len() > 64<<10 || i == n-1 {
				if _, err := conn.Write(w.Bytes()); err != nil {
					sent <- err
					return
				}
				w.Reset()
			}
		}
		sent <- conn.(*net.TCPConn).CloseWrite()
	}()
	if !apptest.Eventually(30*time.Second, func() bool { return value(t, s.m.paused) == 1 }) {
		t.Fatalf("the connection was not paused; buffered %v", value(t, s.m.buffered))
	}
	select {
	case err := <-sent:
		t.Fatalf("the sender wrote everything while the buffer was full (%v)", err)
	default:
	}
	got := s.logs(t, n, 120*time.Second)
	if err := <-sent; err != nil {
		t.Fatal(err)
	}
	seen := make([]int, n)
	for _, l := range got {
		f := strings.Fields(string(l.Msg))
		i, err := strconv.Atoi(strings.TrimPrefix(f[0], "seq="))
		if err != nil {
			t.Fatalf("record %q", l.Msg)
		}
		seen[i]++
	}
	for i, c := range seen {
		if c != 1 {
			t.Errorf("frame %d stored %d times", i, c)
		}
	}
	if d := value(t, s.m.droppedEvents); d != 0 {
		t.Errorf("%v events dropped", d)
	}
	if p := value(t, s.m.paused); p != 0 {
		t.Errorf("%v connections still paused", p)
	}
}

// TestSyslogUDPDropsWhenFull: UDP senders cannot be slowed down, so a full
// buffer drops, and counts every drop.
func TestSyslogUDPDropsWhenFull(t *testing.T) {
	s := newSyslogSetup(t, "udp", 1<<20, nil)
	conn, err := net.Dial("udp", fmt.Sprintf("127.0.0.1:%d", s.port))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	msg := []byte("<13>1 - h app - - - " + strings.Repeat("x", 1000))
	for range 5000 { // 5 MB into a 1 MiB buffer
		if _, err := conn.Write(msg); err != nil {
			t.Fatal(err)
		}
	}
	dropped := func() float64 { return value(t, s.m.droppedEvents) }
	if !apptest.Eventually(20*time.Second, func() bool {
		return dropped() > 0 && value(t, s.m.decoded) == value(t, s.m.buffered)+dropped()
	}) {
		t.Fatalf("decoded %v, buffered %v, dropped %v", value(t, s.m.decoded), value(t, s.m.buffered), dropped())
	}
}

func TestSyslogOversizeAndConnectionCap(t *testing.T) {
	s := newSyslogSetup(t, "tcp", 256<<20, func(c *SyslogConfig) { c.MaxConnections = 1 })
	conn, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", s.port))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := fmt.Fprintf(conn, "<13>1 - h a - - - before\n<13>1 - h a - - - %s\n<13>1 - h a - - - after\n", strings.Repeat("y", 300<<10)); err != nil {
		t.Fatal(err)
	}
	got := s.logs(t, 2, 10*time.Second)
	if string(got[0].Msg) != "before" || string(got[1].Msg) != "after" {
		t.Fatalf("stored %q, %q", got[0].Msg, got[1].Msg)
	}
	if d := value(t, s.m.droppedEvents); d != 1 {
		t.Fatalf("%v events dropped, want the oversize one", d)
	}
	// A second connection is over the cap: closed at once.
	second, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", s.port))
	if err != nil {
		t.Fatal(err)
	}
	defer second.Close()
	_ = second.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := second.Read(make([]byte, 1)); err == nil {
		t.Fatal("a connection over max_connections was kept")
	}
	if r := value(t, s.m.refused); r != 1 {
		t.Fatalf("%v refused connections counted", r)
	}
}

// TestSyslogTLSClientAuth: with require, only senders whose certificate
// the CA signed get in.
func TestSyslogTLSClientAuth(t *testing.T) {
	certs := peers.NewCerts(t)
	tc, err := tlsfiles.NewServer(certs.ServerCert, certs.ServerKey, certs.CA, true)
	if err != nil {
		t.Fatal(err)
	}
	var debug []string
	var mu sync.Mutex
	s := newSyslogSetup(t, "tls", 256<<20, func(c *SyslogConfig) {
		c.TLS = tc.Config()
		c.Debug = func(frame []byte) { mu.Lock(); defer mu.Unlock(); debug = append(debug, string(frame)) }
	})
	pem, _ := os.ReadFile(certs.CA)
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pem)
	send := func(certFile, keyFile, msg string) error {
		cfg := &tls.Config{RootCAs: roots, ServerName: "localhost"}
		if certFile != "" {
			cert, err := tls.LoadX509KeyPair(certFile, keyFile)
			if err != nil {
				t.Fatal(err)
			}
			cfg.Certificates = []tls.Certificate{cert}
		}
		c, err := tls.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", s.port), cfg)
		if err != nil {
			return err
		}
		defer c.Close()
		if _, err := fmt.Fprintf(c, "%d %s", len(msg), msg); err != nil {
			return err
		}
		// TLS 1.3 reports a refused certificate on the first read.
		_ = c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		_, err = c.Read(make([]byte, 1))
		if isTimeout(err) {
			return nil
		}
		return err
	}
	if err := send(certs.ClientCert, certs.ClientKey, "<13>1 - h a - - - signed\nsecond line"); err != nil {
		t.Fatalf("sender with a certificate signed by the CA: %v", err)
	}
	if err := send("", "", "<13>1 - h a - - - anonymous"); err == nil {
		t.Fatal("a sender without a certificate got in")
	}
	if err := send(certs.StrangerCert, certs.StrangerKey, "<13>1 - h a - - - stranger"); err == nil {
		t.Fatal("a sender with a certificate of another CA got in")
	}
	got := s.logs(t, 1, 10*time.Second)
	if string(got[0].Msg) != "signed\nsecond line" {
		t.Fatalf("stored %q", got[0].Msg)
	}
	// The server counts a refusal after the client has seen it.
	if !apptest.Eventually(5*time.Second, func() bool { return value(t, s.m.refused) == 2 }) {
		t.Fatalf("%v refused connections counted, want 2", value(t, s.m.refused))
	}
	mu.Lock()
	defer mu.Unlock()
	if want := []string{"<13>1 - h a - - - signed\nsecond line"}; !slices.Equal(debug, want) {
		t.Fatalf("frames given to Debug: %q, want %q", debug, want)
	}
}

// TestSyslogTLSHandshakesCannotStarveSenders: connections that never
// finish their TLS handshake, more of them than max_connections, and some
// that send garbage, do not keep a real sender out.
func TestSyslogTLSHandshakesCannotStarveSenders(t *testing.T) {
	certs := peers.NewCerts(t)
	tc, err := tlsfiles.NewServer(certs.ServerCert, certs.ServerKey, certs.CA, false)
	if err != nil {
		t.Fatal(err)
	}
	const maxConns = 3
	s := newSyslogSetup(t, "tls", 256<<20, func(c *SyslogConfig) {
		c.TLS = tc.Config()
		c.MaxConnections = maxConns
		c.HandshakeTimeout = time.Minute
	})
	addr := fmt.Sprintf("127.0.0.1:%d", s.port)
	var idle []net.Conn
	for range 3 * maxConns {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		idle = append(idle, c)
	}
	for range 2 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_, _ = c.Write([]byte("<13>1 this is not a TLS client hello\n"))
	}
	pem, _ := os.ReadFile(certs.CA)
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pem)
	for i := range maxConns {
		c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: roots, ServerName: "localhost"})
		if err != nil {
			t.Fatalf("sender %d: %v", i, err)
		}
		defer c.Close()
		msg := fmt.Sprintf("<13>1 - h a - - - sender %d", i)
		if _, err := fmt.Fprintf(c, "%d %s", len(msg), msg); err != nil {
			t.Fatal(err)
		}
	}
	got := s.logs(t, maxConns, 20*time.Second)
	seen := map[string]bool{}
	for _, l := range got {
		seen[string(l.Msg)] = true
	}
	for i := range maxConns {
		if !seen[fmt.Sprintf("sender %d", i)] {
			t.Errorf("sender %d was kept out; stored %v", i, seen)
		}
	}
	// The oldest idle connections were abandoned for the newer ones.
	_ = idle[0].SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := idle[0].Read(make([]byte, 1)); err == nil || isTimeout(err) {
		t.Fatalf("the oldest handshake was not abandoned: %v", err)
	}
	refused := func(reason string) float64 { return labelled(t, s.m.refused, reason) }
	if !apptest.Eventually(10*time.Second, func() bool { return refused("tls_handshake") == 2 }) {
		t.Errorf("%v garbage handshakes counted, want 2", refused("tls_handshake"))
	}
	if r := refused("tls_handshake_slow"); r < 3*maxConns-maxConns {
		t.Errorf("%v abandoned handshakes counted, want %d at least", r, 2*maxConns)
	}
}

// A connection's batches are encoded into one buffer, taken again for the
// next: a smaller batch after a larger one must not keep the larger one's
// tail, and each must read back as what was added.
func TestLogBatchEncodesIntoAReusedBuffer(t *testing.T) {
	from := netip.MustParseAddr("192.0.2.7")
	now := time.Unix(1_700_000_000, 0)
	b := newLogBatch()
	var out []byte
	for _, n := range []int{40, 3} {
		for i := range n {
			b.add(fmt.Appendf(nil, "<13>Dec  6 10:00:00 host app[%d]: message %d of %d", i, i, n), from, now)
		}
		want, err := b.batch.MarshalVT()
		if err != nil {
			t.Fatal(err)
		}
		if out, err = b.marshal(out); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(out, want) {
			t.Fatalf("batch of %d: encoded into the reused buffer as %d bytes, %d when new", n, len(out), len(want))
		}
		var back pb.Batch
		if err := back.UnmarshalVT(out); err != nil || len(back.Logs) != n || string(back.Logs[n-1].Msg) != fmt.Sprintf("message %d of %d", n-1, n) {
			t.Fatalf("batch of %d read back as %d logs (%v)", n, len(back.Logs), err)
		}
		b.reset()
	}
}
