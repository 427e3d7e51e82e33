package appliance_test

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/flowgate/flowgate/appliance/appliancetest"
	"github.com/flowgate/flowgate/config"
	"github.com/flowgate/flowgate/internal/apptest"
	"github.com/flowgate/flowgate/internal/intaketest"
	"github.com/flowgate/flowgate/internal/peers"
	"github.com/flowgate/flowgate/internal/testtraffic"
)

const (
	tlsKey  = "E2eSyslogTLSKey0123456789abcdef"
	relpKey = "E2eSyslogRELPKey0123456789abcde"
)

// syslogSetup is a flowgate whose syslog intakes ship to a real rsyslogd
// receiving syslog-TLS and RELP-TLS.
type syslogSetup struct {
	certs    *peers.Certs
	receiver *peers.Rsyslog
	tlsPort  int
	relpPort int
	proc     *appliancetest.App
	dir      string
}

func newSyslogSetup(t *testing.T) *syslogSetup {
	t.Helper()
	peers.Require(t, "rsyslogd", "logger")
	s := &syslogSetup{certs: peers.NewCerts(t), tlsPort: apptest.FreePort(t, "tcp"), relpPort: apptest.FreePort(t, "tcp"), dir: t.TempDir()}
	s.receiver = peers.RsyslogReceiver(t, s.certs, s.tlsPort, s.relpPort)
	return s
}

// start runs flowgate with the intakes given (YAML list items), their
// outputs able to reach the receiver: {{SYSLOG}} and {{RELP}} are output
// blocks for it.
func (s *syslogSetup) start(t *testing.T, intakes string) {
	t.Helper()
	syslogOut := fmt.Sprintf(`{transport: syslog, endpoint: "localhost:%d", ca_file: %q}`, s.tlsPort, s.certs.CA)
	relpOut := fmt.Sprintf(`{transport: relp, endpoint: "localhost:%d", ca_file: %q, cert_file: %q, key_file: %q}`, s.relpPort, s.certs.CA, s.certs.ClientCert, s.certs.ClientKey)
	intakes = strings.NewReplacer("{{SYSLOG}}", syslogOut, "{{RELP}}", relpOut).Replace(intakes)
	cfg := fmt.Sprintf("intakes:\n%s\ncerts_dir: %s\n", intakes, s.certs.Dir)
	s.proc = appliancetest.Start(t, apptest.WriteConfig(t, s.dir, cfg, "127.0.0.1:0"))
}

// messages makes n distinct messages tagged with prefix.
func messages(prefix string, n int) []string {
	m := make([]string, n)
	for i := range m {
		m[i] = fmt.Sprintf("%s %d: user=alice action=\"login\" result=ok", prefix, i)
	}
	return m
}

// checkReceived asserts that each of msgs arrived exactly (or, with
// atLeast, at least) once, over input, with app and the key's SD, and
// returns how many arrived more than once.
func checkReceived(t *testing.T, got []peers.Received, msgs []string, input, app, key string, atLeast bool) int {
	t.Helper()
	want := map[string]bool{}
	for _, m := range msgs {
		want[m] = true
	}
	seen := map[string]int{}
	host, _ := os.Hostname()
	for _, r := range got {
		if !want[r.Msg] {
			continue
		}
		seen[r.Msg]++
		if r.Input != input || r.App != app || r.MsgID != "LOG" || r.Host != host || r.PRI != "13" ||
			!strings.HasPrefix(r.SD, `[SEKOIA@53288 intake_key="`+key+`"]`) {
			t.Fatalf("received %+v: want input %s, app %s, host %s, the SEKOIA element with the key", r, input, app, host)
		}
	}
	dup := 0
	for _, m := range msgs {
		switch n := seen[m]; {
		case n == 0:
			t.Errorf("%q never arrived", m)
		case n > 1 && !atLeast:
			t.Errorf("%q arrived %d times", m, n)
		case n > 1:
			dup++
		}
	}
	return dup
}

// TestSyslogReachesTheReceiver: logger sends RFC 5424 over TCP with
// octet counting and RFC 3164 over UDP; one intake ships over syslog-TLS,
// the other over RELP; rsyslogd receives every line once with the SEKOIA
// structured data and the sender's APP-NAME and HOSTNAME. The UDP intake's
// sockets and receive buffer are those its configuration asks for.
func TestSyslogReachesTheReceiver(t *testing.T) {
	t.Parallel()
	s := newSyslogSetup(t)
	tcpPort, udpPort := apptest.FreePort(t, "tcp"), apptest.FreePort(t, "udp")
	s.start(t, fmt.Sprintf(`  - name: Firewall
    protocol: tcp
    port: %d
    intake_key: %s
    debug: true
    output: {{SYSLOG}}
  - name: Switches
    protocol: udp
    port: %d
    intake_key: %s
    sockets: 3
    receive_buffer: 1m
    output: {{RELP}}
`, tcpPort, tlsKey, udpPort, relpKey))
	// ss shows twice SO_RCVBUF. Past net.core.rmem_max only CAP_NET_ADMIN
	// gets the size asked, so there the buffer may be smaller.
	want := 2 << 20
	exact := 2*rmemMax(t) >= want
	if got := udpReceiveBuffers(t, udpPort); len(got) != 3 || slices.ContainsFunc(got, func(rb int) bool { return rb > want || exact && rb != want }) {
		t.Errorf("port %d: UDP sockets with receive buffers %v, want 3 of %d", udpPort, got, want)
	}
	fw, sw := messages("firewall", 400), messages("switch", 400)
	peers.Logger(t, tcpPort, peers.LoggerOptions{Format: "rfc5424", TCP: true, OctetCount: true, Tag: "fw-app"}, fw...)
	peers.Logger(t, udpPort, peers.LoggerOptions{Format: "rfc3164", Tag: "postfix/smtpd"}, sw...)
	got := s.receiver.WaitMessages(t, len(fw)+len(sw), 60*time.Second)
	checkReceived(t, got, fw, "syslog-tls", "fw-app", tlsKey, false)
	checkReceived(t, got, sw, "relp-tls", "postfix/smtpd", relpKey, false)
	if len(got) != len(fw)+len(sw) {
		t.Errorf("the receiver got %d messages, %d were sent", len(got), len(fw)+len(sw))
	}
	if !apptest.Eventually(10*time.Second, func() bool {
		return s.proc.Metric("flowgate_shipped_events_total", `intake="Switches"`) == float64(len(sw))
	}) {
		t.Errorf("shipped %v events of Switches, want %d", s.proc.Metric("flowgate_shipped_events_total", `intake="Switches"`), len(sw))
	}
	// debug: what came in and what went out, key masked.
	masked := config.MaskKey(tlsKey)
	out := s.proc.Stdout.String()
	if strings.Contains(out, tlsKey) {
		t.Errorf("the intake key is printed in full on stdout")
	}
	for _, want := range []string{`[Input "` + masked + `"] <13>1 `, fw[7], `[Output "` + masked + `"] <13>1 `, `[SEKOIA@53288 intake_key="` + masked + `"]`} {
		if !strings.Contains(out, want) {
			t.Errorf("stdout lacks %q:\n%s", want, tail(out, 5))
		}
	}
	if strings.Contains(out, "switch 1:") {
		t.Errorf("an intake without debug printed its events")
	}
}

// udpReceiveBuffers lists ss's rb of each UDP socket bound to port.
func udpReceiveBuffers(t *testing.T, port int) []int {
	t.Helper()
	out, err := exec.Command("ss", "-Huanm", fmt.Sprintf("sport = :%d", port)).CombinedOutput()
	if err != nil {
		t.Fatalf("ss: %v: %s", err, out)
	}
	var rbs []int
	for _, m := range regexp.MustCompile(`skmem:\(r\d+,rb(\d+),`).FindAllStringSubmatch(string(out), -1) {
		rb, _ := strconv.Atoi(m[1])
		rbs = append(rbs, rb)
	}
	return rbs
}

// rmemMax is net.core.rmem_max, the largest SO_RCVBUF granted without
// CAP_NET_ADMIN.
func rmemMax(t *testing.T) int {
	t.Helper()
	b, err := os.ReadFile("/proc/sys/net/core/rmem_max")
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatalf("rmem_max %q: %v", b, err)
	}
	return n
}

func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// TestNothingLostWhenTheReceiverStops stops rsyslogd while events flow,
// through both transports, and starts it again: every event arrives.
func TestNothingLostWhenTheReceiverStops(t *testing.T) {
	// It waits on peers most of its time: it runs beside others.
	t.Parallel()
	for _, tc := range []struct{ transport, input, key string }{
		{"syslog", "syslog-tls", tlsKey},
		{"relp", "relp-tls", relpKey},
	} {
		t.Run(tc.transport, func(t *testing.T) {
			t.Parallel()
			s := newSyslogSetup(t)
			port := apptest.FreePort(t, "tcp")
			s.start(t, fmt.Sprintf("  - {name: Servers, protocol: tcp, port: %d, intake_key: %s, output: {{%s}}}\n", port, tc.key, strings.ToUpper(tc.transport)))
			var all []string
			send := func(round int) {
				msgs := messages(fmt.Sprintf("round %d", round), 300)
				all = append(all, msgs...)
				peers.Logger(t, port, peers.LoggerOptions{Format: "rfc5424", TCP: true, Tag: "srv"}, msgs...)
			}
			send(0)
			s.receiver.WaitMessages(t, len(all), 30*time.Second)
			send(1)
			// Mid-stream: round 0 was delivered, round 1 waits to be sent.
			s.receiver.Stop()
			send(2)
			if !apptest.Eventually(30*time.Second, func() bool { return s.proc.Metric("flowgate_ship_failures_total") > 0 }) {
				t.Fatal("no failed send was counted while the receiver was down")
			}
			send(3)
			s.receiver.Start()
			send(4)
			send(5)
			// Batches in flight at the stop may come twice: wait for every
			// message, not for as many messages as were sent.
			var got []peers.Received
			apptest.Eventually(90*time.Second, func() bool {
				got = s.receiver.Messages()
				distinct := map[string]bool{}
				for _, m := range got {
					distinct[m.Msg] = true
				}
				return len(distinct) >= len(all)
			})
			dup := checkReceived(t, got, all, tc.input, "srv", tc.key, true)
			t.Logf("%d events sent, %d received, %d more than once", len(all), len(got), dup)
		})
	}
}

// TestTLSIntakeFromRsyslogToHTTPS: a relay rsyslogd forwards logger's
// messages over TLS with its client certificate to a tls intake that
// requires one; the intake ships over HTTPS, where each event is the
// message (MSG) itself.
func TestTLSIntakeFromRsyslogToHTTPS(t *testing.T) {
	t.Parallel()
	peers.Require(t, "rsyslogd", "logger")
	certs := peers.NewCerts(t)
	intake := intaketest.NewHTTPS(t)
	dir := t.TempDir()
	tlsPort, relayPort := apptest.FreePort(t, "tcp"), apptest.FreePort(t, "tcp")
	cfg := fmt.Sprintf(`intakes:
  - name: Relay
    protocol: tls
    port: %d
    intake_key: %s
    tls_client_auth: require
    tls_ca_name: ca
certs_dir: %s
output:
  transport: https
  endpoint: %s
  ca_file: %s
`, tlsPort, tlsKey, certs.Dir, intake.URL, intake.CAFile)
	proc := appliancetest.Start(t, apptest.WriteConfig(t, dir, cfg, "127.0.0.1:0"))
	peers.StartRsyslog(t, fmt.Sprintf(`global(workDirectory="{{DIR}}" maxMessageSize="300k"
  defaultNetstreamDriverCAFile=%q defaultNetstreamDriverCertFile=%q defaultNetstreamDriverKeyFile=%q)
module(load="imtcp")
input(type="imtcp" address="127.0.0.1" port="%d" ruleset="forward")
ruleset(name="forward") {
  action(type="omfwd" target="127.0.0.1" port="%d" protocol="tcp" tcp_framing="octet-counted"
    streamDriver="gtls" streamDriverMode="1" streamDriverAuthMode="anon" template="RSYSLOG_SyslogProtocol23Format")
}
`, certs.CA, certs.ClientCert, certs.ClientKey, relayPort, tlsPort), relayPort)
	msgs := messages("relayed", 300)
	peers.Logger(t, relayPort, peers.LoggerOptions{Format: "rfc3164", TCP: true, Tag: "sshd"}, msgs...)
	events := intake.WaitEvents(t, len(msgs), 60*time.Second)
	seen := map[string]int{}
	for _, e := range events {
		if e.Key != tlsKey {
			t.Fatalf("event sent with key %q", e.Key)
		}
		seen[e.Event]++
	}
	for _, m := range msgs {
		if seen[m] != 1 {
			t.Errorf("%q arrived %d times", m, seen[m])
		}
	}
	if r := proc.Metric("flowgate_refused_connections_total"); r != 0 {
		t.Errorf("%v connections refused", r)
	}
}

// TestFlowsOverRELP: a netflow intake whose output is RELP ships each flow
// as a syslog line: HOSTNAME the exporter, MSG the flow's JSON.
func TestFlowsOverRELP(t *testing.T) {
	t.Parallel()
	peers.Require(t, "softflowd", "softflowctl")
	s := newSyslogSetup(t)
	port := apptest.FreePort(t, "udp")
	s.start(t, fmt.Sprintf("  - {name: Routers, protocol: netflow, port: %d, intake_key: %s, output: {{RELP}}}\n", port, relpKey))
	traffic := testtraffic.Flows(50, 3, time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC), false)
	pcap := filepath.Join(s.dir, "traffic.pcap")
	if err := testtraffic.WriteFile(pcap, traffic); err != nil {
		t.Fatal(err)
	}
	exp := peers.Softflowd(t, pcap, fmt.Sprintf("127.0.0.1:%d", port), 10)
	got := s.receiver.WaitMessages(t, exp.Flows, 60*time.Second)
	if len(got) != exp.Flows {
		t.Fatalf("the receiver got %d messages, softflowd exported %d flows", len(got), exp.Flows)
	}
	for _, r := range got {
		var flow map[string]any
		if err := json.Unmarshal([]byte(r.Msg), &flow); err != nil {
			t.Fatalf("MSG is not a flow's JSON: %v: %q", err, r.Msg)
		}
		if r.Host != "127.0.0.1" || r.App != "flowgate" || r.SD != `[SEKOIA@53288 intake_key="`+relpKey+`"]` ||
			flow["flowType"] != "IPFIX" || flow["exporterIPv4Address"] != "127.0.0.1" {
			t.Fatalf("received %+v", r)
		}
	}
}
