package appliance_test

import (
	"encoding/json"
	"fmt"
	"maps"
	"net"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/flowgate/flowgate/appliance/appliancetest"
	"github.com/flowgate/flowgate/internal/apptest"
	"github.com/flowgate/flowgate/internal/intaketest"
	"github.com/flowgate/flowgate/internal/peers"
	"github.com/flowgate/flowgate/internal/testtraffic"
)

// What pmacctd's sFlow agent is told to be: its address (not the address
// it sends from), sub-agent ID, sampling rate (1 in 4 packets, at random)
// and how many times it reads the capture (over 20 seconds, so that its
// 20-second counter poll goes out at least once).
const (
	sflowAgent    = "192.0.2.200"
	sflowSubAgent = 3
	sflowRate     = 4
	sflowReplays  = 30 // counters go out every 20 s at most, while packets flow
	goflow2Key    = "E2eGoflow2IntakeKey0123456789abc"
)

// TestSFlowReachesTheIntake has pmacctd's sfprobe export a capture as
// sampled sFlow to an sflow intake, decodes what it sent with tshark, and
// checks that every flow sample and counter sample reaches the intake
// once, with the values the agent sent, bytes and packets scaled by the
// sampling rate. The same datagrams sent again to a second intake with
// format goflow2 come out in goflow2's shape.
func TestSFlowReachesTheIntake(t *testing.T) {
	// It waits on peers most of its time: it runs beside others.
	t.Parallel()
	peers.Require(t, "pmacctd", "tshark")
	intake := intaketest.NewHTTPS(t)
	dir := t.TempDir()
	port, goflow2Port := apptest.FreePort(t, "udp"), apptest.FreePort(t, "udp")
	cfg := fmt.Sprintf(`intakes:
  - name: Switches
    protocol: sflow
    port: %d
    intake_key: %s
  - name: Switches for goflow2 users
    protocol: sflow
    port: %d
    intake_key: %s
    format: goflow2
output:
  transport: https
  endpoint: %s
  ca_file: %s
`, port, testKey, goflow2Port, goflow2Key, intake.URL, intake.CAFile)
	proc := appliancetest.Start(t, apptest.WriteConfig(t, dir, cfg, "127.0.0.1:0"))

	pcap := filepath.Join(dir, "traffic.pcap")
	if err := testtraffic.WriteFile(pcap, testtraffic.Flows(20, 11, time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC), true)); err != nil {
		t.Fatal(err)
	}
	relay := peers.NewRelay(t, fmt.Sprintf("127.0.0.1:%d", port))
	peers.Sfprobe(t, pcap, relay.Addr, sflowAgent, sflowSubAgent, sflowRate, sflowReplays)
	datagrams := relay.Flush(t)
	dec := peers.TsharkSFlow(t, datagrams)
	if len(dec.Flows) == 0 || len(dec.Counters) == 0 {
		t.Fatalf("pmacctd sent %d flow samples and %d counter samples in %d datagrams: want both", len(dec.Flows), len(dec.Counters), len(datagrams))
	}
	conn, err := net.Dial("udp", fmt.Sprintf("127.0.0.1:%d", goflow2Port))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for _, d := range datagrams {
		if _, err := conn.Write(d); err != nil {
			t.Fatal(err)
		}
	}

	records := len(dec.Flows) + len(dec.Counters)
	intake.WaitEvents(t, 2*records, 60*time.Second)
	if !apptest.Eventually(10*time.Second, func() bool {
		return proc.Metric("flowgate_decoded_events_total") == float64(2*records) &&
			proc.Metric("flowgate_shipped_events_total") == proc.Metric("flowgate_buffered_events_total")
	}) {
		t.Fatalf("appliance did not settle: decoded %v, buffered %v, shipped %v, want %d",
			proc.Metric("flowgate_decoded_events_total"), proc.Metric("flowgate_buffered_events_total"),
			proc.Metric("flowgate_shipped_events_total"), 2*records)
	}
	if p := intake.Problems(); len(p) > 0 {
		t.Fatalf("the intake could not read requests: %v", p)
	}
	byKey := map[string][]map[string]any{}
	for _, e := range intake.Events() {
		var m map[string]any
		if err := json.Unmarshal([]byte(e.Event), &m); err != nil {
			t.Fatalf("event is not a JSON object: %v: %s", err, e.Event)
		}
		byKey[e.Key] = append(byKey[e.Key], m)
	}
	t.Logf("pmacctd sent %d flow samples and %d counter samples in %d datagrams", len(dec.Flows), len(dec.Counters), len(datagrams))

	counterKeys := append(ianaCounterKeys, "eventType", "exporterIPv4Address", "observationDomainId", "flowType")
	var wantIANA, wantGoflow2, wantCounters []map[string]any
	for _, s := range dec.Flows {
		iana, goflow2 := expectedSFlowEvents(t, s)
		wantIANA, wantGoflow2 = append(wantIANA, iana), append(wantGoflow2, goflow2)
	}
	for _, s := range dec.Counters {
		wantCounters = append(wantCounters, expectedCounterEvent(t, s))
	}
	flows, counters := splitCounters(byKey[testKey])
	sameEvents(t, "flows", flows, wantIANA)
	sameEvents(t, "counters", counters, wantCounters, counterKeys...)
	flows, counters = splitCounters(byKey[goflow2Key])
	sameEvents(t, "goflow2 flows", flows, wantGoflow2)
	sameEvents(t, "goflow2 counters", counters, wantCounters, counterKeys...)

	// sFlow has no flow times: a flow is when it was received.
	for _, e := range byKey[testKey] {
		if e["eventType"] == nil && (e["flowStartMilliseconds"] != e["collectionTimeMilliseconds"] || e["flowEndMilliseconds"] != e["collectionTimeMilliseconds"]) {
			t.Fatalf("flow times %v %v, received %v", e["flowStartMilliseconds"], e["flowEndMilliseconds"], e["collectionTimeMilliseconds"])
		}
	}
}

// ianaCounterKeys are the counters of an interfaceCounters event, by the
// name of tshark's field for them.
var ianaCounterKeys = []string{"ifIndex", "ifType", "ifSpeed", "ifDirection", "ifAdminStatus", "ifOperStatus",
	"ifInOctets", "ifInUcastPkts", "ifInMulticastPkts", "ifInBroadcastPkts", "ifInDiscards", "ifInErrors",
	"ifInUnknownProtos", "ifOutOctets", "ifOutUcastPkts", "ifOutMulticastPkts", "ifOutBroadcastPkts",
	"ifOutDiscards", "ifOutErrors", "ifPromiscuousMode"}

var tsharkCounterFields = []string{"ifindex", "iftype", "ifspeed", "ifdirection", "ifadmin_status", "ifoper_status",
	"ifinoct", "ifinpkt", "ifinmcast", "ifinbcast", "ifindisc", "ifinerr", "ifinunk", "ifoutoct", "ifoutpkt",
	"ifoutmcast", "ifoutbcast", "ifoutdisc", "ifouterr", "ifpromisc"}

// expectedSFlowEvents is what one flow sample tshark decoded must become,
// in flowgate's format and in goflow2's; a nil value is a key that must
// be absent.
func expectedSFlowEvents(t *testing.T, s peers.SFlowSample) (iana, goflow2 map[string]any) {
	t.Helper()
	f := s.Fields
	rate := float64(peers.Atoi(t, f["sflow.flow_sample.sampling_rate"]))
	frame := float64(peers.Atoi(t, f["sflow_245.header.frame_length"]))
	version, src, dst, proto, ttl := "IPv4", f["ip.src"], f["ip.dst"], f["ip.proto"], f["ip.ttl"]
	if src == "" {
		version, src, dst, proto, ttl = "IPv6", f["ipv6.src"], f["ipv6.dst"], f["ipv6.nxt"], f["ipv6.hlim"]
	}
	var sport, dport, flags any
	protoName := map[string]string{"6": "TCP", "17": "UDP"}[proto]
	switch proto {
	case "6":
		sport, dport = float64(peers.Atoi(t, f["tcp.srcport"])), float64(peers.Atoi(t, f["tcp.dstport"]))
		flags = float64(peers.Atoi(t, f["tcp.flags"]))
	case "17":
		sport, dport = float64(peers.Atoi(t, f["udp.srcport"])), float64(peers.Atoi(t, f["udp.dstport"]))
	default:
		t.Fatalf("sample of protocol %s: the capture holds TCP and UDP only", proto)
	}
	// 0x3fffffff: the packet came from or went to the agent itself.
	ifIndex := func(field string) (iana, goflow2 any) {
		v := peers.Atoi(t, f[field])
		if v == 0x3fffffff {
			return nil, 0.0
		}
		return float64(v), float64(v)
	}
	in, goflowIn := ifIndex("sflow.flow_sample.input_interface")
	out, goflowOut := ifIndex("sflow.flow_sample.output_interface")
	iana = map[string]any{
		"source" + version + "Address":      src,
		"destination" + version + "Address": dst,
		"sourceTransportPort":               sport,
		"destinationTransportPort":          dport,
		"protocolIdentifier":                float64(peers.Atoi(t, proto)),
		"ipTTL":                             float64(peers.Atoi(t, ttl)),
		"tcpControlBits":                    flags,
		"octetDeltaCount":                   frame * rate,
		"packetDeltaCount":                  rate,
		"samplingPacketInterval":            rate,
		"ingressInterface":                  in,
		"egressInterface":                   out,
		"sourceMacAddress":                  f["eth.src"],
		"destinationMacAddress":             f["eth.dst"],
		"ethernetType":                      float64(peers.Atoi(t, f["eth.type"])),
		"exporterIPv4Address":               s.Header["sflow_245.agent"],
		"observationDomainId":               float64(peers.Atoi(t, s.Header["sflow_245.sub_agent_id"])),
		"flowType":                          "SFLOW_5",
	}
	goflow2 = map[string]any{
		"type": "SFLOW_5", "sampler_address": s.Header["sflow_245.agent"], "sampling_rate": rate,
		"sequence_num": float64(peers.Atoi(t, s.Header["sflow_245.sequence_number"])),
		"bytes":        frame * rate, "packets": rate, "src_addr": src, "dst_addr": dst, "etype": version,
		"proto": protoName, "src_port": sport, "dst_port": dport, "in_if": goflowIn, "out_if": goflowOut,
		"src_mac": f["eth.src"], "dst_mac": f["eth.dst"], "ip_ttl": float64(peers.Atoi(t, ttl)),
	}
	if flags == nil {
		goflow2["tcp_flags"] = 0.0
	} else {
		goflow2["tcp_flags"] = flags
	}
	return iana, goflow2
}

// expectedCounterEvent is what one counter sample tshark decoded must become.
func expectedCounterEvent(t *testing.T, s peers.SFlowSample) map[string]any {
	t.Helper()
	e := map[string]any{
		"eventType":           "interfaceCounters",
		"exporterIPv4Address": s.Header["sflow_245.agent"],
		"observationDomainId": float64(peers.Atoi(t, s.Header["sflow_245.sub_agent_id"])),
		"flowType":            "SFLOW_5",
	}
	for i, k := range ianaCounterKeys {
		v, ok := s.Fields["sflow_245."+tsharkCounterFields[i]]
		if !ok {
			t.Fatalf("tshark gave no %s in a counter sample: %v", tsharkCounterFields[i], s.Fields)
		}
		if k == "ifAdminStatus" || k == "ifOperStatus" {
			e[k] = map[bool]string{true: "up", false: "down"}[peers.Atoi(t, v) != 0]
		} else {
			e[k] = float64(peers.Atoi(t, v))
		}
	}
	return e
}

func splitCounters(events []map[string]any) (flows, counters []map[string]any) {
	for _, e := range events {
		if e["eventType"] == "interfaceCounters" {
			counters = append(counters, e)
		} else {
			flows = append(flows, e)
		}
	}
	return flows, counters
}

// sameEvents checks that got and want hold the same events as many times
// each, comparing the keys of want (or keys, when given); a nil in want is
// a key that must be absent. Samples are not unique (a flow's packets are
// sampled again in each replay), so events are compared as multisets.
func sameEvents(t *testing.T, what string, got, want []map[string]any, keys ...string) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: %d events, the agent sent %d", what, len(got), len(want))
	}
	signature := func(e map[string]any, keys []string) string {
		m := map[string]any{}
		for _, k := range keys {
			m[k] = e[k]
		}
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	type expected struct {
		keys []string
		n    int
	}
	wanted := map[string]*expected{}
	for _, w := range want {
		ks := keys
		if len(ks) == 0 {
			ks = slices.Collect(maps.Keys(w))
		}
		sig := signature(w, ks)
		if wanted[sig] == nil {
			wanted[sig] = &expected{keys: ks}
		}
		wanted[sig].n++
	}
	for sig, w := range wanted {
		n := 0
		for _, g := range got {
			if signature(g, w.keys) == sig {
				n++
			}
		}
		if n != w.n {
			t.Errorf("%s: %d events for %s, the agent sent it %d times", what, n, sig, w.n)
		}
	}
}
