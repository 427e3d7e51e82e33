package appliance_test

import (
	"encoding/binary"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/flowgate/flowgate/appliance/appliancetest"
	"github.com/flowgate/flowgate/internal/peers"
	"github.com/flowgate/flowgate/internal/testtraffic"
)

// flowExporter is a real exporter program and what its events look like.
type flowExporter struct {
	name     string
	flowType string
	// slackMs is how far its absolute times may be from the capture's.
	slackMs float64
	// partial is set for pmacctd: when stopped, it exports its flows
	// without the last packets its core had not handed to the plugin yet.
	partial bool
	// export exports the flows of a capture file to dst.
	export func(t *testing.T, pcap, dst string)
}

func softflowd(version int, extra ...string) flowExporter {
	types := map[int]string{5: "NETFLOW_V5", 9: "NETFLOW_V9", 10: "IPFIX"}
	slack := 2.0
	if version == 9 {
		slack = v9SlackMs
	}
	return flowExporter{fmt.Sprintf("softflowd v%d %v", version, extra), types[version], slack, false, func(t *testing.T, pcap, dst string) {
		peers.Softflowd(t, pcap, dst, version, append([]string{"-6"}, extra...)...)
	}}
}

func nfprobe(version int, keys map[string]string) flowExporter {
	types := map[int]string{9: "NETFLOW_V9", 10: "IPFIX"}
	return flowExporter{fmt.Sprintf("pmacctd nfprobe v%d %v", version, keys), types[version], 2, true, func(t *testing.T, pcap, dst string) {
		peers.Nfprobe(t, pcap, dst, version, keys)
	}}
}

// exportFrom has the exporter export the capture to the appliance through
// a relay sending from the local address from, and returns what tshark
// decodes of what it sent.
func (s *flowSetup) exportFrom(t *testing.T, x flowExporter, pcap, from string) peers.Decoded {
	t.Helper()
	relay := peers.NewRelayFrom(t, fmt.Sprintf("127.0.0.1:%d", s.port), from)
	x.export(t, pcap, relay.Addr)
	dec := peers.Tshark(t, relay.Flush(t))
	if len(dec.Flows) == 0 {
		t.Fatalf("%s exported no flows", x.name)
	}
	return dec
}

// restart stops the appliance cleanly and starts it again on the same
// configuration and store.
func (s *flowSetup) restart(t *testing.T) {
	t.Helper()
	if err := s.proc.Stop(20 * time.Second); err != nil {
		t.Fatalf("stopping flowgate: %v", err)
	}
	s.proc = appliancetest.Start(t, s.config)
}

// record has the exporter export the capture to a relay that sends it
// nowhere, and returns the datagrams and tshark's decoding of them.
func record(t *testing.T, x flowExporter, pcap string) ([][]byte, peers.Decoded) {
	t.Helper()
	sink, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		buf := make([]byte, 65535)
		for {
			if _, err := sink.Read(buf); err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() { sink.Close() })
	relay := peers.NewRelay(t, sink.LocalAddr().String())
	x.export(t, pcap, relay.Addr)
	datagrams := relay.Flush(t)
	dec := peers.Tshark(t, datagrams)
	if len(dec.Flows) == 0 {
		t.Fatalf("%s exported no flows", x.name)
	}
	return datagrams, dec
}

// flowsIn returns the records tshark decoded from datagrams [from, to).
func flowsIn(dec peers.Decoded, from, to int) peers.Decoded {
	var out peers.Decoded
	for _, f := range dec.Flows {
		if f.Datagram >= from && f.Datagram < to {
			out.Flows = append(out.Flows, f)
		}
	}
	return out
}

// withoutTemplates returns copies of v9 or IPFIX datagrams without their
// template sets, and without the data sets of options templates (option
// data: system init time, sampling): what a collector that lost what the
// exporter said before would be unable to decode. The v9 header's record
// count is left as it was: collectors read the sets.
func withoutTemplates(t *testing.T, datagrams [][]byte) [][]byte {
	t.Helper()
	be := binary.BigEndian
	options := map[uint16]bool{}
	forSets := func(d []byte, fn func(id uint16, set []byte) bool) []byte {
		hdr := 20
		if be.Uint16(d) == 10 {
			hdr = 16
		}
		out := append([]byte(nil), d[:hdr]...)
		for b := d[hdr:]; len(b) >= 4; {
			id, n := be.Uint16(b), int(be.Uint16(b[2:]))
			if n < 4 || n > len(b) {
				t.Fatalf("datagram with a bad set")
			}
			if fn(id, b[4:n]) {
				out = append(out, b[:n]...)
			}
			b = b[n:]
		}
		if be.Uint16(d) == 10 {
			be.PutUint16(out[2:], uint16(len(out)))
		}
		return out
	}
	// The ids of options templates, from every datagram.
	for _, d := range datagrams {
		forSets(d, func(id uint16, set []byte) bool {
			for len(set) >= 6 && (id == 1 || id == 3) {
				options[be.Uint16(set)] = true
				n := 6
				count := int(be.Uint16(set[2:]))
				if id == 1 { // v9: scope and option lengths in bytes
					n += count + int(be.Uint16(set[4:]))
				} else {
					for range count {
						if set[n]&0x80 != 0 {
							n += 4 // enterprise number
						}
						n += 4
					}
				}
				set = set[n:]
			}
			return false
		})
	}
	out := make([][]byte, len(datagrams))
	for i, d := range datagrams {
		out[i] = forSets(d, func(id uint16, _ []byte) bool { return id >= 256 && !options[id] })
	}
	return out
}

// TestTemplatesKept: data whose templates (and option data) came before a
// change of the exporter's source port, or before flowgate restarted,
// decodes at once, with the absolute times and rates option data gave.
func TestTemplatesKept(t *testing.T) {
	t.Parallel()
	for _, x := range []flowExporter{softflowd(10, "-s", "3"), nfprobe(9, nil)} {
		t.Run(x.name, func(t *testing.T) {
			t.Parallel()
			s := newFlowSetup(t, 300)
			datagrams, dec := record(t, x, s.pcap)
			if len(datagrams) < 3 {
				t.Fatalf("%s sent %d datagrams: too few to split", x.name, len(datagrams))
			}
			dst := fmt.Sprintf("127.0.0.1:%d", s.port)
			stripped := withoutTemplates(t, datagrams)
			third := len(datagrams) / 3
			rate := 0
			if x.flowType == "IPFIX" {
				rate = 3
			}
			check := func(events []map[string]any, upTo int) {
				t.Helper()
				want := flowsIn(dec, 0, upTo)
				if len(events) != len(want.Flows) {
					t.Fatalf("intake got %d events, the exporter sent %d records", len(events), len(want.Flows))
				}
				checkEvents(t, events, want, s.flows, expect{flowType: x.flowType, slackMs: x.slackMs, partial: x.partial, rate: rate})
				if m := s.proc.Metric("flowgate_template_missing_total"); m != 0 {
					t.Fatalf("flowgate_template_missing_total = %v", m)
				}
			}

			// The first third with its templates, the second at once from
			// another source port without them: the port's sockets keep
			// one exporter on one socket, whatever its source port, so the
			// second part is not read before the first.
			first := peers.Send(t, "127.0.0.1", dst, datagrams[:third])
			second := peers.Send(t, "127.0.0.1", dst, stripped[third:2*third])
			if first.Port() == second.Port() {
				t.Fatalf("both parts sent from port %d", first.Port())
			}
			check(s.settle(t, len(flowsIn(dec, 0, 2*third).Flows)), 2*third)

			// The rest after a restart, without templates.
			s.restart(t)
			peers.Send(t, "127.0.0.1", dst, stripped[2*third:])
			check(s.settle(t, len(dec.Flows)), len(datagrams))
		})
	}
}

// TestTemplateIDsOfTwoExporters: softflowd and pmacctd both number their
// NetFlow v9 templates from 1024, with different fields. Sent to one port
// from two addresses, each exporter's data decodes with its own
// templates, even data that comes after the other exporter redefined the
// same template id for itself.
func TestTemplateIDsOfTwoExporters(t *testing.T) {
	t.Parallel()
	s := newFlowSetup(t, 200)
	a, b := softflowd(9), nfprobe(9, nil)
	pcapB, flowsB := testtraffic.WriteCapture(t, 200, 11)
	pcapA2, flowsA2 := testtraffic.WriteCapture(t, 200, 12)

	decA := s.exportFrom(t, a, s.pcap, "127.0.0.2")
	decB := s.exportFrom(t, b, pcapB, "127.0.0.3")
	s.settle(t, len(decA.Flows)+len(decB.Flows))
	later, decA2 := record(t, a, pcapA2)
	peers.Send(t, "127.0.0.2", fmt.Sprintf("127.0.0.1:%d", s.port), withoutTemplates(t, later))

	events := s.settle(t, len(decA.Flows)+len(decB.Flows)+len(decA2.Flows))
	byExporter := map[string][]map[string]any{}
	for _, e := range events {
		addr, _ := e["exporterIPv4Address"].(string)
		byExporter[addr] = append(byExporter[addr], e)
	}
	decA.Flows = append(decA.Flows, decA2.Flows...)
	if n := len(byExporter["127.0.0.2"]); n != len(decA.Flows) {
		t.Fatalf("softflowd: %d events for %d records", n, len(decA.Flows))
	}
	if n := len(byExporter["127.0.0.3"]); n != len(decB.Flows) {
		t.Fatalf("pmacctd: %d events for %d records", n, len(decB.Flows))
	}
	checkEvents(t, byExporter["127.0.0.2"], decA, append(append([]testtraffic.Flow(nil), s.flows...), flowsA2...),
		expect{flowType: a.flowType, slackMs: a.slackMs, exporter: "127.0.0.2"})
	checkEvents(t, byExporter["127.0.0.3"], decB, flowsB, expect{flowType: b.flowType, slackMs: b.slackMs, partial: b.partial, exporter: "127.0.0.3"})
	if m := s.proc.Metric("flowgate_template_missing_total"); m != 0 {
		t.Fatalf("flowgate_template_missing_total = %v", m)
	}
}

// TestSampledExporters: rates from option data (a sampler id's, with
// pmacctd; the domain's, with softflowd), from the configuration when the
// exporter states none, or overriding what it states, scale the counters
// and are stated in samplingPacketInterval; exporter and interface names
// come from the configuration.
func TestSampledExporters(t *testing.T) {
	t.Parallel()
	s := newFlowSetupWith(t, 200, `    exporters:
      - address: 127.0.0.2
        name: edge-paris-1
        sampling_rate: 10
        interfaces: {0: ge-0/0/0}
      - address: 127.0.0.3
        sampling_rate: 3
        sampling_override: true
`)
	for i, tc := range []struct {
		x    flowExporter
		from string
		rate int
		keys map[string]any
	}{
		{nfprobe(10, map[string]string{"sampling_rate": "4"}), "127.0.0.4", 4, nil},
		{softflowd(9, "-s", "5"), "127.0.0.5", 5, nil},
		// pmacctd sends no rate when it does not sample: the configured one
		// applies. It reads its capture file on no interface: ifIndex 0.
		{nfprobe(9, nil), "127.0.0.2", 10,
			map[string]any{"exporterName": "edge-paris-1", "interfaceName": "ge-0/0/0", "egressInterfaceName": "ge-0/0/0"}},
		{softflowd(10, "-s", "5"), "127.0.0.3", 3, nil},
	} {
		t.Run(tc.x.name, func(t *testing.T) {
			pcap, flows := testtraffic.WriteCapture(t, 200, uint64(20+i))
			before := len(s.intake.Events())
			dec := s.exportFrom(t, tc.x, pcap, tc.from)
			events := s.settle(t, before+len(dec.Flows))
			var mine []map[string]any
			for _, e := range events {
				if e["exporterIPv4Address"] == tc.from {
					mine = append(mine, e)
				}
			}
			if len(mine) != len(dec.Flows) {
				t.Fatalf("%d events for %d records", len(mine), len(dec.Flows))
			}
			checkEvents(t, mine, dec, flows, expect{flowType: tc.x.flowType, slackMs: tc.x.slackMs, partial: tc.x.partial,
				exporter: tc.from, rate: tc.rate, keys: tc.keys})
		})
	}
}

// TestExporterLossCounted: a datagram lost on the way shows in the
// exporter's sequence numbers, counted per exporter: datagrams for NetFlow
// v9, records for IPFIX.
func TestExporterLossCounted(t *testing.T) {
	t.Parallel()
	s := newFlowSetup(t, 300)
	dst := fmt.Sprintf("127.0.0.1:%d", s.port)
	for _, tc := range []struct {
		x      flowExporter
		from   string
		metric string
	}{
		{softflowd(9), "127.0.0.2", "flowgate_exporter_lost_datagrams_total"},
		{softflowd(10), "127.0.0.3", "flowgate_exporter_lost_records_total"},
	} {
		datagrams, dec := record(t, tc.x, s.pcap)
		if len(datagrams) < 4 {
			t.Fatalf("%s sent %d datagrams: too few", tc.x.name, len(datagrams))
		}
		const skipped = 2
		before := len(s.intake.Events())
		peers.Send(t, tc.from, dst, append(append([][]byte(nil), datagrams[:skipped]...), datagrams[skipped+1:]...))
		sent := len(dec.Flows) - len(flowsIn(dec, skipped, skipped+1).Flows)
		s.settle(t, before+sent)
		want := 1
		if tc.x.flowType == "IPFIX" {
			want = len(flowsIn(dec, skipped, skipped+1).Flows)
		}
		label := fmt.Sprintf(`exporter="%s"`, tc.from)
		lost := s.proc.Metric("flowgate_exporter_lost_datagrams_total", label) + s.proc.Metric("flowgate_exporter_lost_records_total", label)
		if got := s.proc.Metric(tc.metric, label); got != float64(want) || lost != got {
			t.Errorf("%s: %s{%s} = %v (both losses %v), want %d", tc.x.name, tc.metric, label, got, lost, want)
		}
	}
}
