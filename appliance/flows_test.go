package appliance_test

import (
	"encoding/json"
	"fmt"
	"math"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/flowgate/flowgate/appliance/appliancetest"
	"github.com/flowgate/flowgate/internal/apptest"
	"github.com/flowgate/flowgate/internal/intaketest"
	"github.com/flowgate/flowgate/internal/peers"
	"github.com/flowgate/flowgate/internal/testtraffic"
)

// flowSetup is an appliance with one netflow intake shipping to a local
// HTTPS intake, and a capture of known traffic for softflowd to export.
type flowSetup struct {
	intake  *intaketest.HTTPS
	proc    *appliancetest.App
	port    int
	pcap    string
	packets int
	flows   []testtraffic.Flow
	// config starts the appliance again.
	config string
}

func newFlowSetup(t *testing.T, nflows int) *flowSetup {
	t.Helper()
	return newFlowSetupWith(t, nflows, "")
}

// newFlowSetupWith adds intakeKeys (indented as the intake's keys) to the
// intake's configuration.
func newFlowSetupWith(t *testing.T, nflows int, intakeKeys string) *flowSetup {
	t.Helper()
	peers.Require(t, "softflowd", "softflowctl", "tshark")
	s := &flowSetup{intake: intaketest.NewHTTPS(t), port: apptest.FreePort(t, "udp")}
	dir := t.TempDir()
	s.pcap, s.flows = testtraffic.WriteCapture(t, nflows, 7)
	for _, f := range s.flows {
		s.packets += f.Packets
	}
	cfg := fmt.Sprintf(`intakes:
  - name: Routers
    protocol: netflow
    port: %d
    intake_key: %s
%soutput:
  transport: https
  endpoint: %s
  ca_file: %s
`, s.port, testKey, intakeKeys, s.intake.URL, s.intake.CAFile)
	s.config = apptest.WriteConfig(t, dir, cfg, "127.0.0.1:0")
	s.proc = appliancetest.Start(t, s.config)
	return s
}

// export has softflowd export the capture with NetFlow version v through a
// relay, and returns tshark's decoding of what it sent.
func (s *flowSetup) export(t *testing.T, version int) peers.Decoded {
	t.Helper()
	relay := peers.NewRelay(t, fmt.Sprintf("127.0.0.1:%d", s.port))
	var extra []string
	if version != 5 {
		extra = append(extra, "-6") // v5 cannot carry IPv6
	}
	exp := peers.Softflowd(t, s.pcap, relay.Addr, version, extra...)
	dec := peers.Tshark(t, relay.Wait(t, exp.Datagrams, 10*time.Second))
	if len(dec.Flows) != exp.Flows || exp.Flows == 0 {
		t.Fatalf("softflowd says %s, tshark decoded %d records", exp, len(dec.Flows))
	}
	return dec
}

// settle waits until the intake holds want events and the appliance has
// buffered and shipped every record it decoded, then returns the events.
func (s *flowSetup) settle(t *testing.T, want int) []map[string]any {
	t.Helper()
	got := s.intake.WaitEvents(t, want, 60*time.Second)
	if !apptest.Eventually(10*time.Second, func() bool {
		decoded := s.proc.Metric("flowgate_decoded_events_total")
		return decoded == s.proc.Metric("flowgate_buffered_events_total") &&
			decoded == s.proc.Metric("flowgate_shipped_events_total")
	}) {
		t.Fatalf("appliance did not settle: decoded %v, buffered %v, shipped %v, want %d",
			s.proc.Metric("flowgate_decoded_events_total"), s.proc.Metric("flowgate_buffered_events_total"),
			s.proc.Metric("flowgate_shipped_events_total"), want)
	}
	got = s.intake.Events()
	if p := s.intake.Problems(); len(p) > 0 {
		t.Fatalf("the intake could not read requests: %v", p)
	}
	events := make([]map[string]any, 0, len(got))
	for _, e := range got {
		if e.Key != testKey {
			t.Fatalf("event sent with key %q", e.Key)
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(e.Event), &m); err != nil {
			t.Fatalf("event is not a JSON object: %v: %s", err, e.Event)
		}
		events = append(events, m)
	}
	return events
}

func TestFlowsReachTheIntake(t *testing.T) {
	// It waits on peers most of its time: it runs beside others.
	t.Parallel()
	for _, tc := range []struct {
		version  int
		flowType string
		// startSlackMs is how far an absolute time may be from the truth:
		// the v9 header carries whole seconds only.
		startSlackMs float64
	}{
		{5, "NETFLOW_V5", 2},
		{9, "NETFLOW_V9", v9SlackMs},
		{10, "IPFIX", 2},
	} {
		t.Run(tc.flowType, func(t *testing.T) {
			t.Parallel()
			s := newFlowSetup(t, 300)
			dec := s.export(t, tc.version)
			events := s.settle(t, len(dec.Flows))
			if len(events) != len(dec.Flows) {
				t.Fatalf("intake got %d events, the exporter sent %d records", len(events), len(dec.Flows))
			}
			checkEvents(t, events, dec, s.flows, expect{flowType: tc.flowType, slackMs: tc.startSlackMs})
		})
	}
}

// The quick start's output: the same events, one JSON object a line.
func TestFileOutputWritesOneEventALine(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "events.jsonl")
	s := newFlowSetupWith(t, 100, fmt.Sprintf("    output: {transport: file, path: %s}\n", path))
	dec := s.export(t, 10)
	read := func() []string {
		data, _ := os.ReadFile(path)
		return strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	}
	if !apptest.Eventually(30*time.Second, func() bool {
		return len(read()) >= len(dec.Flows) && s.proc.Metric("flowgate_shipped_events_total") == float64(len(dec.Flows))
	}) {
		t.Fatalf("%d lines in %s, %v shipped, want %d", len(read()), path, s.proc.Metric("flowgate_shipped_events_total"), len(dec.Flows))
	}
	lines := read()
	events := make([]map[string]any, 0, len(lines))
	for _, l := range lines {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("line is not a JSON object: %v: %s", err, l)
		}
		events = append(events, m)
	}
	if len(events) != len(dec.Flows) {
		t.Fatalf("%d lines, the exporter sent %d records", len(events), len(dec.Flows))
	}
	checkEvents(t, events, dec, s.flows, expect{flowType: "IPFIX", slackMs: 2})
}

func TestNothingLostWhileTheIntakeAnswers503(t *testing.T) {
	t.Parallel()
	s := newFlowSetup(t, 200)
	const refusals = 3
	s.intake.Refuse(func(n int) (int, string) {
		if n <= refusals {
			return 503, ""
		}
		return 0, ""
	})
	dec := s.export(t, 9)
	events := s.settle(t, len(dec.Flows))
	if len(events) != len(dec.Flows) {
		t.Fatalf("intake got %d events, the exporter sent %d records", len(events), len(dec.Flows))
	}
	if got := s.intake.Refused(); got != refusals {
		t.Fatalf("intake refused %d requests, want %d", got, refusals)
	}
	if r := s.proc.Metric("flowgate_ship_failures_total", `status="503"`); r != refusals {
		t.Fatalf("flowgate_ship_failures_total{status=503} = %v, want %d", r, refusals)
	}
	checkEvents(t, events, dec, s.flows, expect{flowType: "NETFLOW_V9", slackMs: v9SlackMs})
}

// v9SlackMs is how far a NetFlow v9 flow's absolute time may be from the
// truth: the header carries whole seconds, and an exporter that runs beside
// other tests may read its clock and its uptime a few milliseconds apart
// (1004 ms was seen).
const v9SlackMs = 1500

// expect is what checkEvents expects of events beyond what tshark decoded.
type expect struct {
	flowType string
	// slackMs is how far an absolute time may be from the truth.
	slackMs float64
	// partial says the exporter may not have seen every packet of a flow:
	// its times lie within the flow's.
	partial bool
	// exporter is exporterIPv4Address ("": 127.0.0.1).
	exporter string
	// rate is the sampling rate the counters are scaled by and
	// samplingPacketInterval states (0: unsampled, not checked).
	rate int
	// keys are more keys every event has, with these values.
	keys map[string]any
}

// checkEvents asserts that events hold each record tshark decoded exactly
// once, with the values the exporter sent, and absolute times that match
// the traffic in the capture (for sampled flows: that lie within it).
func checkEvents(t *testing.T, events []map[string]any, dec peers.Decoded, traffic []testtraffic.Flow, x expect) {
	t.Helper()
	if x.exporter == "" {
		x.exporter = "127.0.0.1"
	}
	scale := max(x.rate, 1)
	truth := map[string]testtraffic.Flow{}
	for _, f := range traffic {
		truth[testtraffic.FlowKey(f.Src.String(), f.Dst.String(), int(f.SrcPort), int(f.DstPort), int(f.Proto))] = f
	}
	byKey := map[string][]map[string]any{}
	for _, e := range events {
		src, _ := e["sourceIPv4Address"].(string)
		if src == "" {
			src, _ = e["sourceIPv6Address"].(string)
		}
		dst, _ := e["destinationIPv4Address"].(string)
		if dst == "" {
			dst, _ = e["destinationIPv6Address"].(string)
		}
		k := testtraffic.FlowKey(src, dst, intaketest.Num(e["sourceTransportPort"]), intaketest.Num(e["destinationTransportPort"]), intaketest.Num(e["protocolIdentifier"]))
		byKey[k] = append(byKey[k], e)
	}
	for _, rec := range dec.Flows {
		f := rec.Fields
		src, dst := f["cflow.srcaddr"], f["cflow.dstaddr"]
		if src == "" {
			src, dst = f["cflow.srcaddrv6"], f["cflow.dstaddrv6"]
		}
		k := testtraffic.FlowKey(src, dst, peers.Atoi(t, f["cflow.srcport"]), peers.Atoi(t, f["cflow.dstport"]), peers.Atoi(t, f["cflow.protocol"]))
		got := byKey[k]
		if len(got) != 1 {
			t.Errorf("record %s arrived %d times", k, len(got))
			continue
		}
		e := got[0]
		want := map[string]int{
			"octetDeltaCount":  peers.Atoi(t, f["cflow.octets"]) * scale,
			"packetDeltaCount": peers.Atoi(t, f["cflow.packets"]) * scale,
			"tcpControlBits":   peers.Atoi(t, f["cflow.tcpflags"]),
			"ingressInterface": peers.Atoi(t, f["cflow.inputint"]),
			"egressInterface":  peers.Atoi(t, f["cflow.outputint"]),
			"ipClassOfService": peers.Atoi(t, f["cflow.tos"]),
		}
		// Uptimes, when the exporter sends them rather than absolute times.
		if v, ok := f["cflow.timestart"]; ok {
			want["flowStartSysUpTime"] = millis(t, v)
			want["flowEndSysUpTime"] = millis(t, f["cflow.timeend"])
		}
		if x.rate != 0 {
			want["samplingPacketInterval"] = x.rate
		}
		if v, ok := f["cflow.ip_version"]; ok {
			want["ipVersion"] = peers.Atoi(t, v)
		} else {
			want["ipVersion"] = 4
		}
		for name, w := range want {
			if g, ok := e[name]; !ok || intaketest.Num(g) != w {
				t.Errorf("%s: %s = %v, the exporter sent %d", k, name, g, w)
			}
		}
		if e["flowType"] != x.flowType {
			t.Errorf("%s: flowType %v, want %s", k, e["flowType"], x.flowType)
		}
		if e["exporterIPv4Address"] != x.exporter {
			t.Errorf("%s: exporterIPv4Address %v, want %s", k, e["exporterIPv4Address"], x.exporter)
		}
		for key, v := range x.keys {
			if e[key] != v {
				t.Errorf("%s: %s = %v, want %v", k, key, e[key], v)
			}
		}
		// Absolute times: the capture says when the flow really was.
		tf, ok := truth[k]
		if !ok {
			t.Errorf("%s: not a flow of the capture", k)
			continue
		}
		start := float64(tf.Start.UnixMilli())
		end := float64(tf.Start.Add(time.Duration(tf.Packets-1) * tf.Gap).UnixMilli())
		gs, okStart := e["flowStartMilliseconds"].(float64)
		ge, okEnd := e["flowEndMilliseconds"].(float64)
		switch {
		case !okStart || !okEnd:
			t.Errorf("%s: no absolute times: %v %v", k, e["flowStartMilliseconds"], e["flowEndMilliseconds"])
		case x.rate > 1 || x.partial:
			// The packets seen (sampled) lie within the flow.
			if gs < start-x.slackMs || ge > end+x.slackMs || gs > ge {
				t.Errorf("%s: sampled %v-%v, the flow was %v-%v (±%vms)", k, int64(gs), int64(ge), int64(start), int64(end), x.slackMs)
			}
		case math.Abs(gs-start) > x.slackMs || math.Abs(ge-end) > x.slackMs:
			t.Errorf("%s: %v-%v, the flow was %v-%v (±%vms)", k, int64(gs), int64(ge), int64(start), int64(end), x.slackMs)
		}
		if s, ok := e["flowStartSeconds"].(float64); !ok || s != math.Floor(e["flowStartMilliseconds"].(float64)/1000) {
			t.Errorf("%s: flowStartSeconds %v does not match flowStartMilliseconds %v", k, e["flowStartSeconds"], e["flowStartMilliseconds"])
		}
		addrKey := "sourceIPv4Address"
		if netip.MustParseAddr(src).Is6() {
			addrKey = "sourceIPv6Address"
		}
		if e[addrKey] != src {
			t.Errorf("%s: %s = %v", k, addrKey, e[addrKey])
		}
	}
}

// millis reads tshark's "seconds.nanoseconds" uptimes as milliseconds.
func millis(t *testing.T, s string) int {
	t.Helper()
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		t.Fatalf("tshark time %q: %v", s, err)
	}
	return int(math.Round(f * 1000))
}
