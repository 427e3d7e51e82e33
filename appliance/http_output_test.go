package appliance_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/flowgate/flowgate/internal/apptest"
	"github.com/flowgate/flowgate/internal/intaketest"
	"github.com/flowgate/flowgate/internal/peers"
	"github.com/flowgate/flowgate/ship"
)

// logglyToken is the intake key of the Loggly test: Loggly's customer
// token, which travels in the URL's path.
const logglyToken = "LogglyToken0123456789abcdef"

// TestSyslogRelayedToLoggly: syslog from logger, sent straight and relayed
// by rsyslog, goes through a tcp intake to a Loggly-like bulk endpoint
// (preset loggly); the endpoint goes down while messages keep coming and
// comes back: every message arrives once, with the token, and the token
// is never in the log in full.
func TestSyslogRelayedToLoggly(t *testing.T) {
	t.Parallel()
	peers.Require(t, "rsyslogd", "logger")
	loggly := intaketest.NewLoggly(t, logglyToken)
	port, relayPort := apptest.FreePort(t, "tcp"), apptest.FreePort(t, "tcp")
	a := newApp(t, fmt.Sprintf("intakes:\n  - {name: Syslog, protocol: tcp, port: %d, intake_key: %s, output: %s}\n", port, logglyToken, loggly.Output()))
	peers.StartRsyslog(t, fmt.Sprintf(`global(workDirectory="{{DIR}}")
module(load="imtcp")
input(type="imtcp" address="127.0.0.1" port="%d" ruleset="forward")
ruleset(name="forward") {
  action(type="omfwd" target="127.0.0.1" port="%d" protocol="tcp" tcp_framing="octet-counted"
    template="RSYSLOG_SyslogProtocol23Format" action.resumeRetryCount="-1")
}
`, relayPort, port), relayPort)
	var sent []string
	send := func(phase string, n int) {
		direct, relayed := logLines("logger "+phase, n), logLines("rsyslog "+phase, n)
		peers.Logger(t, port, peers.LoggerOptions{Format: "rfc5424", TCP: true, OctetCount: true, Tag: "app"}, direct...)
		peers.Logger(t, relayPort, peers.LoggerOptions{Format: "rfc3164", TCP: true, Tag: "sshd"}, relayed...)
		sent = append(sent, direct...)
		sent = append(sent, relayed...)
	}

	send("before", 100)
	loggly.WaitEvents(t, len(sent), 60*time.Second)
	// The endpoint has the events once it read the request, flowgate only
	// once it read the answer: taken down between the two, the answer is
	// lost and the batch rightly sent again (all 200 twice, in CI).
	shipped := func() bool { return a.Metric(ship.MetricShippedEventsTotal, `intake="Syslog"`) >= float64(len(sent)) }
	if !apptest.Eventually(60*time.Second, shipped) {
		t.Fatal("flowgate did not count the events it shipped as accepted")
	}
	loggly.Down()
	send("during", 200)
	failed := func() bool { return a.Metric(ship.MetricShipFailuresTotal, `intake="Syslog"`) > 0 }
	if !apptest.Eventually(60*time.Second, failed) {
		t.Fatal("no send failed while the endpoint was down")
	}
	loggly.Up(t)
	send("after", 100)

	seen := map[string]int{}
	for _, e := range loggly.WaitEvents(t, len(sent), 90*time.Second) {
		if e.Key != logglyToken {
			t.Fatalf("event sent with token %q", e.Key)
		}
		seen[e.Event]++
	}
	for _, m := range sent {
		if seen[m] != 1 {
			t.Errorf("%q arrived %d times", m, seen[m])
		}
	}
	if len(seen) != len(sent) {
		t.Errorf("%d distinct events arrived, %d sent", len(seen), len(sent))
	}
	if p := loggly.Problems(); len(p) > 0 {
		t.Errorf("requests Loggly would not take: %v", p)
	}
	if log := a.Stderr.String(); strings.Contains(log, logglyToken) {
		t.Error("the log shows the token in full")
	}
}

// logLines makes n distinct messages tagged with prefix.
func logLines(prefix string, n int) []string {
	m := make([]string, n)
	for i := range m {
		m[i] = fmt.Sprintf("%s %d: user=alice action=\"login\" result=ok", prefix, i)
	}
	return m
}
