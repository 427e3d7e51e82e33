package appliance_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/flowgate/flowgate/buffer"
	"github.com/flowgate/flowgate/httpd"
	"github.com/flowgate/flowgate/internal/apptest"
	"github.com/flowgate/flowgate/internal/intaketest"
	"github.com/flowgate/flowgate/internal/peers"
	"github.com/flowgate/flowgate/ship"
)

// outage is how long an output stays down in TestOneOutputDown.
const outage = time.Minute

// twoOutputs is a tcp intake shipping to an HTTPS intake and, as output
// "loggly", to a Loggly-like endpoint.
func twoOutputs(port int, sekoia *intaketest.HTTPS, loggly *intaketest.Loggly) string {
	return fmt.Sprintf("intakes:\n  - name: Syslog\n    protocol: tcp\n    port: %d\n    intake_key: %s\n    outputs:\n      - %s\n      - %s\n",
		port, logglyToken, sekoia.Output(), strings.Replace(loggly.Output(), "{", "{name: loggly, ", 1))
}

// TestOneOutputDown: an intake with two outputs, one of which goes down
// for a minute (not listening). The other keeps receiving all along;
// the one down has its backlog and failures, by its own name, on
// /metrics and the status page; once it is back, each output has every
// event, once.
func TestOneOutputDown(t *testing.T) {
	t.Parallel()
	peers.Require(t, "logger")
	sekoia, loggly := intaketest.NewHTTPS(t), intaketest.NewLoggly(t, logglyToken)
	port := apptest.FreePort(t, "tcp")
	a := newApp(t, twoOutputs(port, sekoia, loggly))
	var sent []string
	send := func(phase string, n int) {
		lines := logLines(phase, n)
		peers.Logger(t, port, peers.LoggerOptions{Format: "rfc5424", TCP: true, OctetCount: true, Tag: "app"}, lines...)
		sent = append(sent, lines...)
	}

	send("before", 100)
	sekoia.WaitEvents(t, len(sent), 60*time.Second)
	loggly.WaitEvents(t, len(sent), 60*time.Second)
	// Down before flowgate read Loggly's answer, the batch would rightly
	// come again (as in TestSyslogRelayedToLoggly).
	shipped := func() bool {
		return a.Metric(ship.MetricShippedEventsTotal, `intake="Syslog#loggly"`) >= float64(len(sent))
	}
	if !apptest.Eventually(60*time.Second, shipped) {
		t.Fatal("flowgate did not count the events Loggly took as accepted")
	}
	loggly.Down()
	before := len(sent)
	// Sekoia gets each round while Loggly is down.
	rounds := 0
	for down := time.Now(); time.Since(down) < outage; rounds++ {
		send(fmt.Sprintf("during %d", rounds), 50)
		sekoia.WaitEvents(t, len(sent), 60*time.Second)
	}
	t.Logf("%d rounds of 50 events reached the HTTPS intake while Loggly was down", rounds)
	if n := len(loggly.Events()); n != before {
		t.Fatalf("Loggly, down, took %d events", n-before)
	}
	if a.Metric(ship.MetricShipFailuresTotal, `intake="Syslog#loggly"`) == 0 || a.Metric(buffer.MetricBufferMessages, `intake="Syslog#loggly"`) == 0 {
		t.Error("the metrics show no failure and no backlog for output loggly")
	}
	// The HTTPS intake took everything: its acknowledgements empty the
	// first output's backlog.
	if !apptest.Eventually(30*time.Second, func() bool { return a.Metric(buffer.MetricBufferMessages, `intake="Syslog"`) == 0 }) {
		t.Error("the first output keeps a backlog")
	}
	var st httpd.Status
	if _, body := a.Get("/status.json"); json.Unmarshal([]byte(body), &st) != nil {
		t.Fatalf("status %q", body)
	}
	rows := map[string]httpd.IntakeStatus{}
	for _, in := range st.Intakes {
		rows[in.Name] = in
	}
	if r := rows["Syslog#loggly"]; r.OutputOf != "Syslog" || !strings.HasPrefix(r.Output, "http https://127.0.0.1:") || r.BufferMessages == 0 {
		t.Errorf("status page row of output loggly: %+v", r)
	}
	if r := rows["Syslog"]; r.Shipped != float64(len(sent)) {
		t.Errorf("status page: the first output shipped %v, want %d", r.Shipped, len(sent))
	}

	loggly.Up(t)
	send("after", 100)
	for name, events := range map[string][]intaketest.Event{
		"HTTPS intake": sekoia.WaitEvents(t, len(sent), 90*time.Second),
		"Loggly":       loggly.WaitEvents(t, len(sent), 120*time.Second),
	} {
		checkOnce(t, name, events, sent)
	}
	if p := loggly.Problems(); len(p) > 0 {
		t.Errorf("requests Loggly would not take: %v", p)
	}
}

// checkOnce asserts that each of sent arrived once, with the key.
func checkOnce(t *testing.T, name string, events []intaketest.Event, sent []string) {
	t.Helper()
	seen := map[string]int{}
	for _, e := range events {
		if e.Key != logglyToken {
			t.Fatalf("%s: event sent with key %q", name, e.Key)
		}
		seen[e.Event]++
	}
	for _, m := range sent {
		if seen[m] != 1 {
			t.Errorf("%s: %q arrived %d times", name, m, seen[m])
		}
	}
	if len(seen) != len(sent) {
		t.Errorf("%s: %d distinct events arrived, %d sent", name, len(seen), len(sent))
	}
}

// TestOutputRemovedAndBack: a reload that removes an output with a backlog
// says what it leaves in the buffer; the output put back ships it, and
// what came meanwhile, once each; the other output never stops.
func TestOutputRemovedAndBack(t *testing.T) {
	t.Parallel()
	peers.Require(t, "logger")
	sekoia, loggly := intaketest.NewHTTPS(t), intaketest.NewLoggly(t, logglyToken)
	port := apptest.FreePort(t, "tcp")
	// A stats intake reports on output loggly as on an intake.
	statsFile := filepath.Join(t.TempDir(), "stats.jsonl")
	stats := fmt.Sprintf("  - {name: Stats, stats: true, interval: 1s, intake_key: %s, output: {transport: file, path: %q}}\n", logglyToken, statsFile)
	both := twoOutputs(port, sekoia, loggly) + stats
	a := newApp(t, both)
	var sent []string
	send := func(phase string, n int) {
		lines := logLines(phase, n)
		peers.Logger(t, port, peers.LoggerOptions{Format: "rfc5424", TCP: true, OctetCount: true, Tag: "app"}, lines...)
		sent = append(sent, lines...)
	}
	loggly.Down()
	send("down", 100)
	sekoia.WaitEvents(t, len(sent), 60*time.Second)
	if !apptest.Eventually(60*time.Second, func() bool { return a.Metric(buffer.MetricBufferMessages, `intake="Syslog#loggly"`) > 0 }) {
		t.Fatal("no backlog for output loggly")
	}
	queued := regexp.MustCompile(`\{"name":"ruleset-Syslog#loggly","origin":"core.queue","size":[1-9]`)
	if !apptest.Eventually(30*time.Second, func() bool { b, _ := os.ReadFile(statsFile); return queued.Match(b) }) {
		b, _ := os.ReadFile(statsFile)
		t.Fatalf("the stats intake reports no backlog of output loggly:\n%s", b)
	}
	if b, _ := os.ReadFile(statsFile); !strings.Contains(string(b), `{"name":"output-Syslog#loggly","origin":"core.action"`) {
		t.Errorf("the stats intake reports no action of output loggly")
	}
	one := fmt.Sprintf("intakes:\n  - name: Syslog\n    protocol: tcp\n    port: %d\n    intake_key: %s\n    output: %s\n", port, logglyToken, sekoia.Output()) + stats
	a.write(t, one)
	if err := a.Reload(); err != nil {
		t.Fatal(err)
	}
	if log := a.Stderr.String(); !strings.Contains(log, `msg="output removed: its records stay in the buffer, and ship if it comes back" intake=Syslog output=Syslog#loggly`) {
		t.Fatalf("the log does not say what output loggly left:\n%s", log)
	}
	send("one output", 100)
	sekoia.WaitEvents(t, len(sent), 60*time.Second)
	loggly.Up(t)
	a.write(t, both)
	if err := a.Reload(); err != nil {
		t.Fatal(err)
	}
	send("both again", 100)
	checkOnce(t, "HTTPS intake", sekoia.WaitEvents(t, len(sent), 60*time.Second), sent)
	// Loggly gets what waited for it and what came once it was back, not
	// what came while it was not an output.
	var want []string
	for _, m := range sent {
		if !strings.HasPrefix(m, "one output") {
			want = append(want, m)
		}
	}
	checkOnce(t, "Loggly", loggly.WaitEvents(t, len(want), 60*time.Second), want)
}

// An output whose key is refused pauses alone: /readyz names it within
// its intake's check, and the other output ships on.
func TestAPausedOutputIsNamedByReadiness(t *testing.T) {
	t.Parallel()
	peers.Require(t, "logger")
	sekoia, loggly := intaketest.NewHTTPS(t), intaketest.NewLoggly(t, "SomeoneElsesToken0123")
	port := apptest.FreePort(t, "tcp")
	a := newApp(t, twoOutputs(port, sekoia, loggly))
	lines := logLines("paused", 50)
	peers.Logger(t, port, peers.LoggerOptions{Format: "rfc5424", TCP: true, OctetCount: true, Tag: "app"}, lines...)
	checkOnce(t, "HTTPS intake", sekoia.WaitEvents(t, len(lines), 60*time.Second), lines)
	var body string
	if !apptest.Eventually(60*time.Second, func() bool {
		var status int
		status, body = a.Get("/readyz")
		return status == 503 && strings.Contains(body, `output of "Syslog": Syslog#loggly: paused`)
	}) {
		t.Fatalf("/readyz: %q", body)
	}
}
