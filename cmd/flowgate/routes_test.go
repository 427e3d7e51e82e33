package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/netip"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/flowgate/flowgate/appliance/appliancetest"
	"github.com/flowgate/flowgate/collect"
	"github.com/flowgate/flowgate/config"
	"github.com/flowgate/flowgate/internal/apptest"
	"github.com/flowgate/flowgate/internal/intaketest"
	"github.com/flowgate/flowgate/internal/peers"
	"github.com/flowgate/flowgate/internal/testtraffic"
)

const (
	catchallKey = "RouteCatchAllKey0123456789abcd"
	asaKey      = "RouteASAKey0123456789abcdefghi"
	panKey      = "RoutePaloAltoKey0123456789abcd"
	switchKey   = "RouteSwitchKey0123456789abcdef"
)

// TestRoutesOnOneSharedPort: four kinds of sender on one shared port (tcp,
// and udp with the same rules by a YAML anchor) reach four intake keys at
// the HTTPS intake, each event once; the drop rule's events are counted
// and never shipped.
func TestRoutesOnOneSharedPort(t *testing.T) {
	peers.Require(t, "logger", "rsyslogd", "python3")
	intake := intaketest.NewHTTPS(t)
	tcpPort, udpPort, relayPort := apptest.FreePort(t, "tcp"), apptest.FreePort(t, "udp"), apptest.FreePort(t, "tcp")
	dir := t.TempDir()
	cfg := fmt.Sprintf(`intakes:
  - name: Shared
    protocol: tcp
    port: %[1]d
    intake_key: %[3]s
    routes: &shared
      - name: asa
        match: {app_name: {prefix: "%%ASA-"}}
        intake_key: %[4]s
      - name: paloalto
        match: {app_name: {equals: pan-os}, message: {contains: "TRAFFIC"}}
        intake_key: %[5]s
      - name: switches
        match: {hostname: {prefix: "sw-", ignore_case: true}}
        intake_key: %[6]s
      - name: logoff-noise
        match: {message: {regex: 'EventID"?:\s*4634'}, app_name: {equals: Microsoft-Windows-Security-Auditing}}
        drop: true
  - name: SharedUDP
    protocol: udp
    port: %[2]d
    intake_key: %[3]s
    routes: *shared
output: %[7]s
`, tcpPort, udpPort, catchallKey, asaKey, panKey, switchKey, intake.Output())
	app := appliancetest.Start(t, apptest.WriteConfig(t, dir, cfg, "127.0.0.1:0"))
	for _, rule := range []string{"asa", "paloalto", "switches", "logoff-noise"} {
		if v := app.Metric(collect.MetricRouteMatchedTotal, `intake="Shared"`, `rule="`+rule+`"`); v != 0 {
			t.Fatalf("rule %s matched %v before any event", rule, v)
		}
	}

	const n = 50
	var asa, pan, sw, logon, logoff []string
	for i := range n {
		asa = append(asa, fmt.Sprintf("Built outbound TCP connection %d for outside:203.0.113.9/443", i))
		pan = append(pan, fmt.Sprintf("1,2026/12/04 06:00:00,0123,TRAFFIC,end,%d,allow", i))
		sw = append(sw, fmt.Sprintf("<189>1 2026-12-04T06:00:00Z SW-core-1 ifmgr - - - interface Gi1/0/%d up", i))
		logon = append(logon, fmt.Sprintf(`{"EventID": 4624, "LogonType": 3, "Seq": %d}`, i))
		logoff = append(logoff, fmt.Sprintf(`{"EventID": 4634, "LogonType": 3, "Seq": %d}`, i))
	}
	// logger over tcp: Cisco ASA's tags.
	peers.Logger(t, tcpPort, peers.LoggerOptions{Format: "rfc3164", TCP: true, Tag: "%ASA-6-302013"}, asa...)
	// rsyslogd relaying a Palo Alto's lines, octet-counted RFC 5424.
	peers.StartRsyslog(t, fmt.Sprintf(`global(workDirectory="{{DIR}}")
module(load="imtcp")
input(type="imtcp" address="127.0.0.1" port="%d" ruleset="relay")
ruleset(name="relay") {
  action(type="omfwd" target="127.0.0.1" port="%d" protocol="tcp" TCP_Framing="octet-counted" template="RSYSLOG_SyslogProtocol23Format")
}
`, relayPort, tcpPort), relayPort)
	peers.Logger(t, relayPort, peers.LoggerOptions{Format: "rfc3164", TCP: true, Tag: "pan-os"}, pan...)
	// Python: a switch's own RFC 5424 frames, newline-framed.
	peers.Python(t, peers.Target{Port: tcpPort}, peers.PythonClose, []byte(strings.Join(sw, "\n")+"\n"))
	// logger over udp: Windows events, half of them noise.
	var windows []string
	for i := range n {
		windows = append(windows, logon[i], logoff[i])
	}
	peers.Logger(t, udpPort, peers.LoggerOptions{Format: "rfc5424", Tag: "Microsoft-Windows-Security-Auditing"}, windows...)

	events := intake.WaitEvents(t, 4*n, 60*time.Second)
	// The drop rule counts as it drops: once its count is there, nothing
	// of the noise can still be on its way.
	if !apptest.Eventually(30*time.Second, func() bool {
		return app.Metric(collect.MetricRouteMatchedTotal, `intake="SharedUDP"`, `rule="logoff-noise"`) == n
	}) {
		t.Fatal("the drop rule did not take the noise")
	}
	want := map[string]string{}
	for _, m := range asa {
		want[m] = asaKey
	}
	for _, m := range pan {
		want[m] = panKey
	}
	for _, m := range sw {
		want[m[strings.Index(m, "interface"):]] = switchKey
	}
	for _, m := range logon {
		want[m] = catchallKey
	}
	seen := map[string]int{}
	for _, e := range intake.Events() {
		found := false
		for text, key := range want {
			if strings.Contains(e.Event, text) {
				found = true
				seen[text]++
				if e.Key != key {
					t.Errorf("%q reached key %s, want %s", text, e.Key[:8], key[:8])
				}
			}
		}
		if strings.Contains(e.Event, `"EventID": 4634`) || strings.Contains(e.Event, `EventID\": 4634`) {
			t.Errorf("a dropped event was shipped: %s", e.Event)
		} else if !found {
			t.Errorf("unexpected event %s", e.Event)
		}
	}
	for text := range want {
		if seen[text] != 1 {
			t.Errorf("%q arrived %d times, want once", text, seen[text])
		}
	}
	if len(events) < 4*n {
		t.Errorf("%d events, want %d", len(events), 4*n)
	}
	for _, c := range []struct {
		intake, rule string
		want         float64
	}{{"Shared", "asa", n}, {"Shared", "paloalto", n}, {"Shared", "switches", n}, {"Shared", "logoff-noise", 0}, {"SharedUDP", "logoff-noise", n}, {"SharedUDP", "asa", 0}} {
		if v := app.Metric(collect.MetricRouteMatchedTotal, `intake="`+c.intake+`"`, `rule="`+c.rule+`"`); v != c.want {
			t.Errorf("%s/%s matched %v, want %v", c.intake, c.rule, v, c.want)
		}
	}
	if v := app.Metric(collect.MetricDroppedEventsTotal, `intake="SharedUDP"`, `reason="`+collect.ReasonDropRule+`"`); v != n {
		t.Errorf("dropped by rule: %v, want %d", v, n)
	}
	// Each routed key ships as an intake of its own, named after its
	// first rule.
	_, metrics := app.Get("/metrics")
	for _, name := range []string{"Shared/asa", "Shared/paloalto", "Shared/switches"} {
		if v := app.Metric("flowgate_shipped_events_total", `intake="`+name+`"`); v != n {
			t.Errorf("%s shipped %v events, want %d", name, v, n)
		}
		if !strings.Contains(metrics, `flowgate_buffer_messages{intake="`+name+`"}`) {
			t.Errorf("no buffer gauge for %s", name)
		}
	}
}

// TestRouteDryRun: `flowgate route` says, for each line, the rule that
// takes it and where it would go, then the counts; check prints the rules.
func TestRouteDryRun(t *testing.T) {
	dir := t.TempDir()
	path := apptest.WriteConfig(t, dir, fmt.Sprintf(`intakes:
  - name: Shared
    protocol: udp
    port: %d
    routes:
      - name: asa
        match: {app_name: {prefix: "%%ASA-"}}
        intake_key: %s
      - name: logoff-noise
        match: {message: {regex: 'EventID"?:\s*4634'}}
        drop: true
`, apptest.FreePort(t, "udp"), asaKey), "127.0.0.1:0")
	c, err := config.Load(path, func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	in := strings.NewReader("<166>Dec  4 06:00:00 fw1 %ASA-6-302013: Built outbound TCP\n" +
		`<14>1 2026-12-04T06:00:00Z dc01 Microsoft-Windows-Security-Auditing - - - {"EventID": 4634}` + "\n" +
		"<14>1 2026-12-04T06:00:00Z dc01 sshd - - - hello\n")
	if err := dryRun(c, "", "127.0.0.1", in, &out); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"1\tasa\t→ " + config.MaskKey(asaKey) + "\t<166>",
		"2\tlogoff-noise\tdropped\t<14>1",
		"3\t(no rule)\tdropped: the intake has no intake_key\t<14>1",
		"3 events: asa 1, logoff-noise 1, no rule 1",
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != len(want) {
		t.Fatalf("dry run printed:\n%s", out.String())
	}
	for i, w := range want {
		if !strings.HasPrefix(lines[i], w) {
			t.Errorf("line %d: %q, want it to start with %q", i+1, lines[i], w)
		}
	}
	if strings.Contains(out.String(), asaKey) {
		t.Error("the dry run printed a key in full")
	}
	out.Reset()
	if err := dryRun(c, "Nope", "127.0.0.1", strings.NewReader(""), &out); err == nil || !strings.Contains(err.Error(), `no intake named "Nope"`) {
		t.Errorf("unknown intake: %v", err)
	}
	out.Reset()
	printRoutes(c, &out)
	for _, w := range []string{
		`routes of intake "Shared", first match wins; what none takes: dropped (no intake_key)`,
		`  1. asa: app_name prefix "%ASA-" → ` + config.MaskKey(asaKey) + " (line 6)",
		`  2. logoff-noise: message regex "EventID\"?:\\s*4634" → dropped (line 9)`,
	} {
		if !strings.Contains(out.String(), w) {
			t.Errorf("check printed:\n%s\nwant the line %s", out.String(), w)
		}
	}
}

// TestFlowRoutes: NetFlow v5 records reach the key of the route that
// takes them, or the intake's own, each once; the drop rule's records are
// counted and never shipped.
func TestFlowRoutes(t *testing.T) {
	intake := intaketest.NewHTTPS(t)
	port := apptest.FreePort(t, "udp")
	cfg := fmt.Sprintf(`intakes:
  - name: Routers
    protocol: netflow
    port: %d
    intake_key: %s
    routes:
      - {name: low, match: {source: 10.0.0.0/24}, intake_key: %s}
      - {name: noise, match: {source_port: 1300-1399, protocol: 17}, drop: true}
output: %s
`, port, catchallKey, switchKey, intake.Output())
	app := appliancetest.Start(t, apptest.WriteConfig(t, t.TempDir(), cfg, "127.0.0.1:0"))
	// Records 0 to 599: 0-255 come from 10.0.0.0/24, 276-375 from source
	// ports 1300-1399 (testtraffic.NetFlowV5).
	const records = 600
	var datagrams [][]byte
	now := time.Now()
	for first := uint32(0); first < records; first += testtraffic.MaxV5Records {
		var ids []uint32
		for id := first; id < first+testtraffic.MaxV5Records; id++ {
			ids = append(ids, id)
		}
		datagrams = append(datagrams, testtraffic.NetFlowV5(nil, ids, first, now))
	}
	peers.Send(t, "127.0.0.1", fmt.Sprintf("127.0.0.1:%d", port), datagrams)
	intake.WaitEvents(t, records-100, 60*time.Second)
	if !apptest.Eventually(30*time.Second, func() bool {
		return app.Metric(collect.MetricRouteMatchedTotal, `rule="noise"`) == 100
	}) {
		t.Fatalf("noise matched %v, want 100", app.Metric(collect.MetricRouteMatchedTotal, `rule="noise"`))
	}
	byKey := map[string][]intaketest.Event{}
	for _, e := range intake.Events() {
		byKey[e.Key] = append(byKey[e.Key], e)
	}
	low, rest := testtraffic.IDsOf(t, byKey[switchKey]), testtraffic.IDsOf(t, byKey[catchallKey])
	if len(byKey) != 2 {
		t.Errorf("events reached %d keys, want 2", len(byKey))
	}
	for id := uint32(0); id < records; id++ {
		want := [2]int{0, 1} // low, rest
		switch {
		case id < 256:
			want = [2]int{1, 0}
		case id >= 276 && id < 376:
			want = [2]int{0, 0}
		}
		if got := [2]int{low[id], rest[id]}; got != want {
			t.Errorf("record %d: %d at the route's key, %d at the intake's; want %v", id, got[0], got[1], want)
		}
	}
	if v := app.Metric(collect.MetricRouteMatchedTotal, `rule="low"`); v != 256 {
		t.Errorf("low matched %v, want 256", v)
	}
	if v := app.Metric(collect.MetricDroppedEventsTotal, `intake="Routers"`, `reason="drop_rule"`); v != 100 {
		t.Errorf("dropped by rule: %v, want 100", v)
	}
}

// TestFlowAggregation: NetFlow v5 records that share the keys become one
// event per window, with the bytes, packets and flows of the records the
// drop rule left; fields outside the keys are gone.
func TestFlowAggregation(t *testing.T) {
	intake := intaketest.NewHTTPS(t)
	port := apptest.FreePort(t, "udp")
	cfg := fmt.Sprintf(`intakes:
  - name: Routers
    protocol: netflow
    port: %d
    intake_key: %s
    routes:
      - {name: noise, match: {source_port: 1300-1399}, drop: true}
    aggregate:
      window: 1s
      keys: [destinationIPv4Address, destinationTransportPort, protocolIdentifier]
output: %s
`, port, catchallKey, intake.Output())
	app := appliancetest.Start(t, apptest.WriteConfig(t, t.TempDir(), cfg, "127.0.0.1:0"))
	// 600 records to 192.0.2.1:53/udp, 100 bytes and 1 packet each
	// (testtraffic.NetFlowV5), 100 of them from ports the rule drops.
	const records, dropped = 600, 100
	var datagrams [][]byte
	for first := uint32(0); first < records; first += testtraffic.MaxV5Records {
		var ids []uint32
		for id := first; id < first+testtraffic.MaxV5Records; id++ {
			ids = append(ids, id)
		}
		datagrams = append(datagrams, testtraffic.NetFlowV5(nil, ids, first, time.Now()))
	}
	peers.Send(t, "127.0.0.1", fmt.Sprintf("127.0.0.1:%d", port), datagrams)
	// Wait until every record was decoded and its window shipped.
	if !apptest.Eventually(60*time.Second, func() bool {
		return app.Metric(collect.MetricDecodedEventsTotal, `intake="Routers"`) == records &&
			app.Metric("flowgate_shipped_events_total", `intake="Routers"`) == app.Metric(collect.MetricBufferedEventsTotal, `intake="Routers"`) &&
			sumEvents(t, intake.Events(), "deltaFlowCount") == records-dropped
	}) {
		t.Fatalf("decoded %v, events %d, flows in them %v", app.Metric(collect.MetricDecodedEventsTotal, `intake="Routers"`),
			len(intake.Events()), sumEvents(t, intake.Events(), "deltaFlowCount"))
	}
	events := intake.Events()
	if got, want := sumEvents(t, events, "octetDeltaCount"), float64(100*(records-dropped)); got != want {
		t.Errorf("octetDeltaCount summed %v, want %v", got, want)
	}
	if got, want := sumEvents(t, events, "packetDeltaCount"), float64(records-dropped); got != want {
		t.Errorf("packetDeltaCount summed %v, want %v", got, want)
	}
	// The datagrams arrive within a window or two: far fewer events.
	if len(events) > 3 {
		t.Errorf("%d events for %d flows of one key", len(events), records-dropped)
	}
	for _, e := range events {
		var m map[string]any
		if err := json.Unmarshal([]byte(e.Event), &m); err != nil {
			t.Fatal(err)
		}
		if m["destinationIPv4Address"] != "192.0.2.1" || m["sourceIPv4Address"] != nil || m["sourceTransportPort"] != nil {
			t.Errorf("aggregated event %s: keys missing or other fields kept", e.Event)
		}
	}
}

// sumEvents sums a numeric field over JSON events.
func sumEvents(t *testing.T, events []intaketest.Event, field string) float64 {
	t.Helper()
	var sum float64
	for _, e := range events {
		var m map[string]any
		if err := json.Unmarshal([]byte(e.Event), &m); err != nil {
			t.Fatalf("event %q: %v", e.Event, err)
		}
		if v, ok := m[field].(float64); ok {
			sum += v
		}
	}
	return sum
}

// TestRouteDryRunOfACapture: given a capture of softflowd's IPFIX exports
// (templates included) on standard input, `flowgate route` prints for
// each flow the rule that takes it and where it would go; each flow and
// its counters are those tshark decodes from the same capture, and the
// rule is the one the test derives from tshark's fields.
func TestRouteDryRunOfACapture(t *testing.T) {
	peers.Require(t, "softflowd", "tshark")
	port := apptest.FreePort(t, "udp")
	path := apptest.WriteConfig(t, t.TempDir(), fmt.Sprintf(`intakes:
  - name: Routers
    protocol: netflow
    port: %d
    intake_key: %s
    routes:
      - {name: dns, match: {protocol: 17, port: 53}, drop: true}
      - {name: v6, match: {source: "2001:db8::/32"}, intake_key: %s}
      - {name: web, match: {destination_port: [443, 8080]}, intake_key: %s}
`, port, catchallKey, asaKey, switchKey), "127.0.0.1:0")
	c, err := config.Load(path, func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	traffic, _ := writeCapture(t, 60, 13)
	relay := peers.NewRelay(t, "127.0.0.1:9") // discard: the copies are the capture
	exp := peers.Softflowd(t, traffic, relay.Addr, 10, "-6")
	datagrams := relay.Wait(t, exp.Datagrams, 10*time.Second)
	dec := peers.Tshark(t, datagrams)
	if len(dec.Flows) != exp.Flows || exp.Flows == 0 {
		t.Fatalf("softflowd says %s, tshark decoded %d records", exp, len(dec.Flows))
	}
	// The capture a tcpdump on the collector would write, with one
	// datagram to another port.
	var capture bytes.Buffer
	pw, err := testtraffic.NewPcapWriter(&capture)
	if err != nil {
		t.Fatal(err)
	}
	from := netip.MustParseAddrPort("127.0.0.1:40000")
	at := time.Unix(1_700_000_000, 0)
	for i, d := range append(datagrams, []byte("elsewhere")) {
		to := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(port))
		if i == len(datagrams) {
			to = netip.MustParseAddrPort("127.0.0.1:9")
		}
		if err := pw.Write(at.Add(time.Duration(i)*time.Millisecond), testtraffic.UDPFrame(nil, from, to, d)); err != nil {
			t.Fatal(err)
		}
	}

	var out strings.Builder
	if err := dryRun(c, "", "127.0.0.1", bytes.NewReader(capture.Bytes()), &out); err != nil {
		t.Fatal(err)
	}
	// What tshark decoded, and the rule that must take it.
	want := map[string]int{}
	byRule := map[string]int{}
	for _, rec := range dec.Flows {
		f := rec.Fields
		src, dst := f["cflow.srcaddr"], f["cflow.dstaddr"]
		if src == "" {
			src, dst = f["cflow.srcaddrv6"], f["cflow.dstaddrv6"]
		}
		sport, dport, proto := atoi(t, f["cflow.srcport"]), atoi(t, f["cflow.dstport"]), atoi(t, f["cflow.protocol"])
		rule, to := "(no rule)", "→ "+config.MaskKey(catchallKey)
		switch {
		case proto == 17 && (sport == 53 || dport == 53):
			rule, to = "dns", "dropped"
		case strings.Contains(src, ":"):
			rule, to = "v6", "→ "+config.MaskKey(asaKey)
		case dport == 443 || dport == 8080:
			rule, to = "web", "→ "+config.MaskKey(switchKey)
		}
		byRule[rule]++
		want[fmt.Sprintf("%s\t%s\t%s, %s packets, %s bytes", rule, to, flowKey(src, dst, sport, dport, proto), f["cflow.packets"], f["cflow.octets"])]++
	}
	for _, rule := range []string{"dns", "v6", "web", "(no rule)"} {
		if byRule[rule] == 0 {
			t.Fatalf("the capture has no flow for %s: %v", rule, byRule)
		}
	}
	lineRe := regexp.MustCompile(`^(\d+)\t([^\t]+)\t([^\t]+)\texporter 127\.0\.0\.1 (\S+) → (\S+) protocol (\d+), (\d+) packets, (\d+) bytes$`)
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != len(dec.Flows)+2 {
		t.Fatalf("%d lines for %d flows:\n%s", len(lines), len(dec.Flows), out.String())
	}
	got := map[string]int{}
	for i, l := range lines[:len(dec.Flows)] {
		m := lineRe.FindStringSubmatch(l)
		if m == nil || m[1] != fmt.Sprint(i+1) {
			t.Fatalf("line %d: %q", i+1, l)
		}
		src, dst := netip.MustParseAddrPort(m[4]), netip.MustParseAddrPort(m[5])
		k := flowKey(src.Addr().String(), dst.Addr().String(), int(src.Port()), int(dst.Port()), atoi(t, m[6]))
		got[fmt.Sprintf("%s\t%s\t%s, %s packets, %s bytes", m[2], m[3], k, m[7], m[8])]++
	}
	for k, n := range want {
		if got[k] != n {
			t.Errorf("tshark's %q: printed %d times, want %d", k, got[k], n)
		}
	}
	for k, n := range got {
		if want[k] == 0 {
			t.Errorf("printed %q (%d times), which tshark did not decode", k, n)
		}
	}
	summary := fmt.Sprintf("%d flows in %d datagrams to port %d: dns %d, v6 %d, web %d, no rule %d", len(dec.Flows), len(datagrams), port,
		byRule["dns"], byRule["v6"], byRule["web"], byRule["(no rule)"])
	if lines[len(lines)-2] != summary || lines[len(lines)-1] != "1 datagrams to other ports skipped" {
		t.Errorf("summary:\n%s\nwant:\n%s\n1 datagrams to other ports skipped", strings.Join(lines[len(lines)-2:], "\n"), summary)
	}
	if strings.Contains(out.String(), asaKey) {
		t.Error("the dry run printed a key in full")
	}

	// A syslog intake refuses a capture, a flow intake lines; a capture
	// cut short is refused by where it ends.
	if err := dryRun(c, "Routers", "127.0.0.1", strings.NewReader("<14>1 - h app - - - hello\n"), &out); err == nil || !strings.Contains(err.Error(), "receives flows: give it a capture") {
		t.Errorf("lines to a flow intake: %v", err)
	}
	cut := capture.Bytes()[:capture.Len()-5]
	if err := dryRun(c, "", "127.0.0.1", bytes.NewReader(cut), &out); err == nil || !strings.Contains(err.Error(), "standard input: capture cut short at byte") {
		t.Errorf("a capture cut short: %v", err)
	}
}

// TestFlowAggregationAgainstTshark: softflowd exports the flows of a
// capture (NetFlow v9, IPv4 and IPv6); the intake drops DNS and sums the
// rest by destination port and protocol over a window longer than the
// test. Nothing ships while the window is open; the stop publishes it to
// the buffer, and the next start ships one event per key, whose summed
// octets, packets and flows are tshark's sums of the same datagrams.
func TestFlowAggregationAgainstTshark(t *testing.T) {
	peers.Require(t, "softflowd", "tshark")
	intake := intaketest.NewHTTPS(t)
	port := apptest.FreePort(t, "udp")
	path := apptest.WriteConfig(t, t.TempDir(), fmt.Sprintf(`intakes:
  - name: Routers
    protocol: netflow
    port: %d
    intake_key: %s
    routes:
      - {name: dns, match: {protocol: 17, port: 53}, drop: true}
    aggregate:
      window: 1h
      keys: [destinationTransportPort, protocolIdentifier]
output: %s
`, port, catchallKey, intake.Output()), "127.0.0.1:0")
	app := appliancetest.Start(t, path)
	traffic, _ := writeCapture(t, 120, 17)
	relay := peers.NewRelay(t, fmt.Sprintf("127.0.0.1:%d", port))
	exp := peers.Softflowd(t, traffic, relay.Addr, 9, "-6")
	dec := peers.Tshark(t, relay.Wait(t, exp.Datagrams, 10*time.Second))
	if len(dec.Flows) != exp.Flows || exp.Flows == 0 {
		t.Fatalf("softflowd says %s, tshark decoded %d records", exp, len(dec.Flows))
	}
	type sums struct{ octets, packets, flows int }
	want := map[string]sums{}
	dropped := 0
	for _, rec := range dec.Flows {
		f := rec.Fields
		dport, proto := atoi(t, f["cflow.dstport"]), atoi(t, f["cflow.protocol"])
		if proto == 17 && (dport == 53 || atoi(t, f["cflow.srcport"]) == 53) {
			dropped++
			continue
		}
		k := fmt.Sprintf("%d/%d", dport, proto)
		s := want[k]
		s.octets += atoi(t, f["cflow.octets"])
		s.packets += atoi(t, f["cflow.packets"])
		s.flows++
		want[k] = s
	}
	if dropped == 0 || len(want) < 2 || len(dec.Flows)-dropped < 4*len(want) {
		t.Fatalf("the capture does not test much: %d records, %d dropped, %d keys", len(dec.Flows), dropped, len(want))
	}
	if !apptest.Eventually(60*time.Second, func() bool {
		return app.Metric(collect.MetricDecodedEventsTotal, `intake="Routers"`) == float64(exp.Flows)
	}) {
		t.Fatalf("decoded %v of %d flows", app.Metric(collect.MetricDecodedEventsTotal, `intake="Routers"`), exp.Flows)
	}
	if n := len(intake.Events()); n != 0 {
		t.Fatalf("%d events shipped while the window was open", n)
	}
	if err := app.Stop(60 * time.Second); err != nil {
		t.Fatal(err)
	}
	// What the stop published waits in the buffer for the next start.
	appliancetest.Start(t, path)
	events := intake.WaitEvents(t, len(want), 60*time.Second)
	got := map[string]sums{}
	for _, e := range events {
		var m map[string]any
		if err := json.Unmarshal([]byte(e.Event), &m); err != nil {
			t.Fatal(err)
		}
		k := fmt.Sprintf("%d/%d", num(m["destinationTransportPort"]), num(m["protocolIdentifier"]))
		if _, seen := got[k]; seen {
			t.Errorf("key %s shipped twice", k)
		}
		got[k] = sums{num(m["octetDeltaCount"]), num(m["packetDeltaCount"]), num(m["deltaFlowCount"])}
		if m["sourceTransportPort"] != nil || m["sourceIPv4Address"] != nil || m["exporterIPv4Address"] != "127.0.0.1" {
			t.Errorf("event of key %s: fields outside the keys kept, or the exporter lost: %s", k, e.Event)
		}
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("key %s: octets, packets, flows %+v; tshark's sums %+v", k, got[k], w)
		}
	}
	if len(events) != len(want) {
		t.Errorf("%d events for %d keys", len(events), len(want))
	}
	t.Logf("%d flows (%d dropped) shipped as %d events", len(dec.Flows), dropped, len(events))
}

// TestRemovedRouteKeyWithABacklog: a reload that removes the only route to
// a key while the key's events wait in the buffer says so (intake, rule,
// key masked, how many); a route of the same intake to that key, under any
// name, ships them again, each once.
func TestRemovedRouteKeyWithABacklog(t *testing.T) {
	intake := intaketest.NewHTTPS(t)
	intake.Refuse(func(int) (int, string) { return http.StatusServiceUnavailable, "" })
	port := apptest.FreePort(t, "udp")
	dir := t.TempDir()
	write := func(routes string) string {
		return apptest.WriteConfig(t, dir, fmt.Sprintf(`intakes:
  - name: Routers
    protocol: netflow
    port: %d
    intake_key: %s
%soutput: %s
shutdown: {grace: 1s}
`, port, catchallKey, routes, intake.Output()), "127.0.0.1:0")
	}
	app := appliancetest.Start(t, write(fmt.Sprintf("    routes: [{name: low, match: {source: 10.0.0.0/24}, intake_key: %s}]\n", switchKey)))
	// Records 0 to 299; 0-255 come from 10.0.0.0/24 (testtraffic.NetFlowV5).
	var datagrams [][]byte
	for first := uint32(0); first < 300; first += testtraffic.MaxV5Records {
		var ids []uint32
		for id := first; id < min(first+testtraffic.MaxV5Records, 300); id++ {
			ids = append(ids, id)
		}
		datagrams = append(datagrams, testtraffic.NetFlowV5(nil, ids, first, time.Now()))
	}
	peers.Send(t, "127.0.0.1", fmt.Sprintf("127.0.0.1:%d", port), datagrams)
	if !apptest.Eventually(30*time.Second, func() bool {
		return app.Metric(collect.MetricBufferedEventsTotal, `intake="Routers"`) == 300 &&
			app.Metric("flowgate_buffer_messages", `intake="Routers/low"`) > 0
	}) {
		t.Fatalf("buffered %v, %v messages for the route's key", app.Metric(collect.MetricBufferedEventsTotal, `intake="Routers"`),
			app.Metric("flowgate_buffer_messages", `intake="Routers/low"`))
	}

	write("")
	if err := app.Reload(); err != nil {
		t.Fatal(err)
	}
	log := app.Stderr.String()
	if !strings.Contains(log, `msg="intake key no longer shipped: its records stay in the buffer, and ship if it comes back" intake=Routers shipper=Routers/low key=`+config.MaskKey(switchKey)+" messages=") {
		t.Errorf("the reload did not warn of the key's backlog:\n%s", log)
	}
	if strings.Contains(log, switchKey) {
		t.Error("the warning printed the key in full")
	}
	// The next start says what waits for no one.
	if err := app.Stop(60 * time.Second); err != nil {
		t.Fatal(err)
	}
	app = appliancetest.Start(t, app.Path)
	// Said once started, which may come after /readyz answers.
	if !apptest.Eventually(10*time.Second, func() bool {
		return strings.Contains(app.Stderr.String(), "messages wait in the buffer for no intake, route or output of this configuration")
	}) {
		t.Errorf("the start did not warn of the key's backlog:\n%s", app.Stderr.String())
	}

	// A route to the key again, by another name, taking nothing new.
	intake.Refuse(func(int) (int, string) { return 0, "" })
	write(fmt.Sprintf("    routes: [{name: back, match: {source: 198.51.100.0/24}, intake_key: %s}]\n", switchKey))
	if err := app.Reload(); err != nil {
		t.Fatal(err)
	}
	if !apptest.Eventually(60*time.Second, func() bool {
		n := 0
		for _, e := range intake.Events() {
			if e.Key == switchKey {
				n++
			}
		}
		return n >= 256
	}) {
		t.Fatal("the key's backlog did not ship once a route sent to it again")
	}
	var routed []intaketest.Event
	for _, e := range intake.Events() {
		if e.Key == switchKey {
			routed = append(routed, e)
		}
	}
	ids := testtraffic.IDsOf(t, routed)
	for id := uint32(0); id < 256; id++ {
		if ids[id] != 1 {
			t.Errorf("record %d arrived %d times at the key", id, ids[id])
		}
	}
	if len(routed) != 256 {
		t.Errorf("%d events at the key, want 256", len(routed))
	}
}
