package collect

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/flowgate/flowgate/internal/apptest"
	"github.com/flowgate/flowgate/internal/peers"
	"github.com/flowgate/flowgate/tlsfiles"
)

// sendersN is how many messages each sender sends.
const sendersN = 300

// seqRe finds a message's id in what the intake stored.
var seqRe = regexp.MustCompile(`\bseq=(\d+)\b`)

// sender is a real program sending msgs to an intake, ending its
// connection the way it does.
type sender struct {
	name string
	// versions are the TLS versions it is tried with ("any": its own
	// choice); "" is plain TCP.
	versions []string
	// send sends msgs, each a whole RFC 5424 message; a relay is stopped
	// once every message arrived, as it keeps its connection until then.
	send func(t *testing.T, s *syslogSetup, to peers.Target, msgs []string)
	// clientAuth sends to an intake that requires a client certificate.
	clientAuth bool
}

// sendersHeader starts every message; logger is given what follows it.
const sendersHeader = "<13>1 2026-12-04T05:00:00.000Z sender app - - - "

// bodies are msgs without their header, for senders that write their own.
func bodies(msgs []string) []string {
	out := make([]string, len(msgs))
	for i, m := range msgs {
		out[i] = strings.TrimPrefix(m, sendersHeader)
	}
	return out
}

// octetCounted frames msgs as RFC 6587 octet counting.
func octetCounted(msgs []string) []byte {
	var b strings.Builder
	for _, m := range msgs {
		fmt.Fprintf(&b, "%d %s", len(m), m)
	}
	return []byte(b.String())
}

func python(end peers.PythonEnd) func(*testing.T, *syslogSetup, peers.Target, []string) {
	return func(t *testing.T, _ *syslogSetup, to peers.Target, msgs []string) {
		peers.Python(t, to, end, octetCounted(msgs))
	}
}

func piped(send func(testing.TB, peers.Target, []byte)) func(*testing.T, *syslogSetup, peers.Target, []string) {
	return func(t *testing.T, _ *syslogSetup, to peers.Target, msgs []string) {
		send(t, to, octetCounted(msgs))
	}
}

// TestSenders: real syslog senders, each sending sendersN messages with
// distinct ids to a tcp or tls intake and ending its connection its own
// way (closing without reading, a TLS close_notify, a half-close, a slow
// handshake, a relay stopped): every message is stored once, and no
// connection ends in an error. The table of what arrived is logged.
func TestSenders(t *testing.T) {
	certs := peers.NewCerts(t)
	srv, err := tlsfiles.NewServer(certs.ServerCert, certs.ServerKey, certs.CA, false)
	if err != nil {
		t.Fatal(err)
	}
	clientAuth, err := tlsfiles.NewServer(certs.ServerCert, certs.ServerKey, certs.CA, true)
	if err != nil {
		t.Fatal(err)
	}
	serverTLS, clientAuthTLS := srv.Config(), clientAuth.Config()
	senders := []sender{
		{name: "python ssl, close without reading", versions: []string{"", "1.2", "1.3"}, send: python(peers.PythonClose)},
		{name: "python ssl with a client certificate, close without reading", versions: []string{"1.2", "1.3"}, send: python(peers.PythonClose), clientAuth: true},
		{name: "python ssl, unwrap", versions: []string{"1.2", "1.3"}, send: python(peers.PythonUnwrap)},
		{name: "python, half-close then read to EOF", versions: []string{"", "1.2", "1.3"}, send: python(peers.PythonHalfClose)},
		{name: "python ssl, ClientHello sent slowly", versions: []string{"1.2", "1.3"}, send: python(peers.PythonSlowHello)},
		{name: "openssl s_client from a pipe", versions: []string{"1.2", "1.3"}, send: piped(peers.OpenSSLClient)},
		{name: "gnutls-cli from a pipe", versions: []string{"1.2", "1.3"}, send: piped(peers.GnuTLSClient)},
		{name: "socat OPENSSL:", versions: []string{"", "1.2", "1.3"}, send: piped(peers.Socat)},
		{name: "ncat --ssl", versions: []string{"", "any"}, send: piped(peers.Ncat)},
		{name: "nc", versions: []string{""}, send: func(t *testing.T, _ *syslogSetup, to peers.Target, msgs []string) {
			peers.Netcat(t, to.Port, octetCounted(msgs))
		}},
		{name: "logger --octet-count", versions: []string{""}, send: func(t *testing.T, _ *syslogSetup, to peers.Target, msgs []string) {
			peers.Logger(t, to.Port, peers.LoggerOptions{Format: "rfc5424", TCP: true, OctetCount: true, Tag: "logger"}, bodies(msgs)...)
		}},
		{name: "rsyslog omfwd gtls", versions: []string{"1.2", "1.3"}, send: func(t *testing.T, s *syslogSetup, to peers.Target, msgs []string) {
			in := apptest.FreePort(t, "tcp")
			r := peers.RsyslogForwarder(t, in, to)
			peers.Logger(t, in, peers.LoggerOptions{Format: "rfc5424", TCP: true, OctetCount: true, Tag: "relayed"}, bodies(msgs)...)
			s.logsArrived(t, len(msgs))
			r.Stop()
		}},
		{name: `syslog-ng network(transport("tls"))`, versions: []string{"1.2", "1.3"}, send: func(t *testing.T, s *syslogSetup, to peers.Target, msgs []string) {
			in := apptest.FreePort(t, "tcp")
			ng := peers.SyslogNGForwarder(t, in, to)
			peers.Logger(t, in, peers.LoggerOptions{Format: "rfc3164", TCP: true, Tag: "relayed"}, bodies(msgs)...)
			s.logsArrived(t, len(msgs))
			ng.Stop()
		}},
	}
	var mu sync.Mutex
	var table []string
	for _, snd := range senders {
		for _, v := range snd.versions {
			name := snd.name + " over " + transportName(v)
			t.Run(name, func(t *testing.T) {
				protocol := "tcp"
				if v != "" {
					protocol = "tls"
				}
				to := peers.Target{TLS: v, CA: certs.CA}
				tc := serverTLS
				if snd.clientAuth {
					tc, to.ClientCert, to.ClientKey = clientAuthTLS, certs.ClientCert, certs.ClientKey
				}
				s := newSyslogSetup(t, protocol, 256<<20, func(c *SyslogConfig) { c.TLS = tc })
				to.Port = s.port
				msgs := make([]string, sendersN)
				for i := range msgs {
					msgs[i] = fmt.Sprintf("%s%s seq=%d", sendersHeader, strings.ReplaceAll(snd.name, " ", "_"), i)
				}
				arrived := s.expectEachOnce(t, msgs, func() { snd.send(t, s, to, msgs) })
				mu.Lock()
				table = append(table, fmt.Sprintf("| %s | %s | %d | %d |", snd.name, transportName(v), sendersN, arrived))
				mu.Unlock()
			})
		}
	}
	t.Logf("senders and what arrived:\n| sender | over | sent | arrived once |\n|---|---|---|---|\n%s", strings.Join(table, "\n"))
}

// TestSenderReset: a sender that resets its connection once flowgate's
// kernel holds everything it wrote loses nothing (flowgate reads what
// its socket holds before the reset), and the reset is counted and
// logged with the peer: a reset sender may have had more to send.
func TestSenderReset(t *testing.T) {
	certs := peers.NewCerts(t)
	srv, err := tlsfiles.NewServer(certs.ServerCert, certs.ServerKey, certs.CA, false)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"", "1.3"} {
		t.Run(transportName(v), func(t *testing.T) {
			protocol := "tcp"
			if v != "" {
				protocol = "tls"
			}
			s := newSyslogSetup(t, protocol, 256<<20, func(c *SyslogConfig) { c.TLS = srv.Config() })
			msgs := make([]string, sendersN)
			for i := range msgs {
				msgs[i] = fmt.Sprintf("%sreset seq=%d", sendersHeader, i)
			}
			to := peers.Target{Port: s.port, TLS: v, CA: certs.CA}
			// The stored messages are checked before the end: a reset
			// counts as aborted, which expectEachOnce does not allow.
			peers.Python(t, to, peers.PythonReset, octetCounted(msgs))
			s.checkEachOnce(t, msgs)
			if !apptest.Eventually(10*time.Second, func() bool { return labelled(t, s.m.aborted, "reset") == 1 }) {
				t.Fatalf("%v resets counted, want 1", labelled(t, s.m.aborted, "reset"))
			}
			if !apptest.Eventually(10*time.Second, func() bool {
				l := s.log.String()
				return strings.Contains(l, `level=WARN msg="connection ended by an error`) && strings.Contains(l, "reason=reset") &&
					strings.Contains(l, "from=127.0.0.1:")
			}) {
				t.Fatalf("the reset was not logged:\n%s", s.log.String())
			}
		})
	}
}

func transportName(v string) string {
	switch v {
	case "":
		return "tcp"
	case "any":
		return "tls"
	}
	return "tls " + v
}

// expectEachOnce runs send, then checks every one of msgs was stored once
// and nothing else, that the sender's connections ended with no error
// and nothing was dropped. It returns how many of msgs arrived once.
func (s *syslogSetup) expectEachOnce(t *testing.T, msgs []string, send func()) int {
	t.Helper()
	send()
	arrived := s.checkEachOnce(t, msgs)
	if !apptest.Eventually(20*time.Second, func() bool { return value(t, s.m.connections) == 0 }) {
		t.Errorf("%v connections still open after the sender ended", value(t, s.m.connections))
	}
	if a := value(t, s.m.aborted); a != 0 {
		t.Errorf("%v connections ended by an error:\n%s", a, s.log.String())
	}
	if d := value(t, s.m.decoded); d != float64(len(msgs)) {
		t.Errorf("%v messages received, want %d", d, len(msgs))
	}
	if d := value(t, s.m.droppedEvents); d != 0 {
		t.Errorf("%v messages dropped", d)
	}
	return arrived
}

// logsArrived waits until n messages were received: a relay forwards at
// its own pace.
func (s *syslogSetup) logsArrived(t *testing.T, n int) {
	t.Helper()
	if !apptest.Eventually(60*time.Second, func() bool { return value(t, s.m.decoded) >= float64(n) }) {
		t.Fatalf("%v messages received after 60s, want %d", value(t, s.m.decoded), n)
	}
}

// checkEachOnce reads len(msgs) records from the buffer and checks each
// message's id arrived once, returning how many did.
func (s *syslogSetup) checkEachOnce(t *testing.T, msgs []string) int {
	t.Helper()
	got := s.logs(t, len(msgs), 30*time.Second)
	seen := make([]int, len(msgs))
	for _, l := range got {
		m := seqRe.FindSubmatch(l.Msg)
		if m == nil {
			t.Fatalf("stored %q: no seq= in it", l.Msg)
		}
		i, _ := strconv.Atoi(string(m[1]))
		if i >= len(seen) {
			t.Fatalf("stored %q: seq out of range", l.Msg)
		}
		seen[i]++
	}
	once := 0
	for i, c := range seen {
		if c == 1 {
			once++
		} else {
			t.Errorf("message %d stored %d times", i, c)
		}
	}
	return once
}

// labelled is the sum of c's series whose reason is reason.
func labelled(t *testing.T, c prometheus.Collector, reason string) float64 {
	t.Helper()
	return sumOf(t, c, func(d *dto.Metric) bool {
		for _, l := range d.Label {
			if l.GetName() == "reason" && l.GetValue() == reason {
				return true
			}
		}
		return false
	})
}

// cutConn passes writes through until cut is set; then it writes half of
// the next one and closes: a sender dying in the middle of a TLS record.
type cutConn struct {
	net.Conn
	cut bool
}

func (c *cutConn) Write(p []byte) (int, error) {
	if !c.cut {
		return c.Conn.Write(p)
	}
	_, _ = c.Conn.Write(p[:len(p)/2])
	return len(p), c.Conn.Close()
}

// TestSenderCutRecord: a TLS sender whose last record is cut short has
// its earlier messages stored, and the connection counted and logged as
// aborted (reason tls).
func TestSenderCutRecord(t *testing.T) {
	certs := peers.NewCerts(t)
	srv, err := tlsfiles.NewServer(certs.ServerCert, certs.ServerKey, certs.CA, false)
	if err != nil {
		t.Fatal(err)
	}
	s := newSyslogSetup(t, "tls", 256<<20, func(c *SyslogConfig) { c.TLS = srv.Config() })
	raw, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", s.port))
	if err != nil {
		t.Fatal(err)
	}
	cc := &cutConn{Conn: raw}
	pem, err := os.ReadFile(certs.CA)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pem)
	c := tls.Client(cc, &tls.Config{RootCAs: roots, ServerName: "localhost"})
	msgs := make([]string, sendersN)
	for i := range msgs {
		msgs[i] = fmt.Sprintf("%scut seq=%d", sendersHeader, i)
	}
	if _, err := c.Write(octetCounted(msgs)); err != nil {
		t.Fatal(err)
	}
	cc.cut = true
	_, _ = c.Write(octetCounted([]string{sendersHeader + "cut in half"}))
	s.checkEachOnce(t, msgs)
	if !apptest.Eventually(10*time.Second, func() bool { return labelled(t, s.m.aborted, "tls") == 1 }) {
		t.Fatalf("%v connections counted aborted (tls), want 1:\n%s", labelled(t, s.m.aborted, "tls"), s.log.String())
	}
	// The connection is counted before its warning is written: await both.
	if !apptest.Eventually(10*time.Second, func() bool {
		l := s.log.String()
		return strings.Contains(l, `msg="connection ended by an error`) && strings.Contains(l, "reason=tls")
	}) {
		t.Fatalf("the cut record was not logged:\n%s", s.log.String())
	}
}
