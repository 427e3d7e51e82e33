package config

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	pb "github.com/flowgate/flowgate/proto"
	"github.com/flowgate/flowgate/route"
)

// routesFile is the recipe: one shared port, four destinations,
// a drop rule, the same rules reused on tcp by a YAML anchor.
const routesFile = `intakes:
  - name: Shared
    protocol: udp
    port: 514
    intake_key: CATCHALL_KEY_0001
    routes: &shared514
      - name: paloalto
        match: {source: [192.168.10.5, 10.1.0.0/16]}
        intake_key: KEY_PALOALTO_0001
      - name: asa
        match: {app_name: {prefix: "%ASA-"}}
        intake_key: KEY_ASA_00000001
      - name: switches
        match: {hostname: {prefix: "sw-", ignore_case: true}}
        intake_key: KEY_SWITCH_000001
      - name: logoff-noise
        match: {message: {regex: 'EventID"?:\s*4634'}, app_name: {equals: Microsoft-Windows-Security-Auditing}}
        drop: true
  - name: SharedTCP
    protocol: tcp
    port: 514
    routes: *shared514
  - name: Routers
    protocol: netflow
    port: 2055
    intake_key: KEY_FLOWS_0000001
    routes:
      - {name: dns, match: {protocol: 17, port: 53}, drop: true}
      - {name: east-west, match: {source: 10.0.0.0/8, destination: 10.0.0.0/8}, drop: true}
`

func TestRoutesLoadAndMatch(t *testing.T) {
	c, err := Parse([]byte(routesFile), "routes.yaml", t.TempDir(), env())
	if err != nil {
		t.Fatal(err)
	}
	shared, tcp, routers := c.Intakes[0], c.Intakes[1], c.Intakes[2]
	if shared.Table.Len() != 4 || tcp.Table.Len() != 4 || routers.Table.Len() != 2 {
		t.Fatalf("rules: %d %d %d, want 4 4 2", shared.Table.Len(), tcp.Table.Len(), routers.Table.Len())
	}
	if tcp.IntakeKey != "" || tcp.Routes[1].Line != 10 {
		t.Errorf("anchored routes: key %q, line of asa %d (want 10)", tcp.IntakeKey, tcp.Routes[1].Line)
	}
	sender := func(s string) []byte { return netip.MustParseAddr(s).AsSlice() }
	for _, tc := range []struct {
		log  *pb.Log
		want int
	}{
		{&pb.Log{Sender: sender("10.1.2.3"), AppName: []byte("%ASA-4-1")}, 0},
		{&pb.Log{Sender: sender("10.2.2.3"), AppName: []byte("%ASA-4-1")}, 1},
		{&pb.Log{Sender: sender("10.2.2.3"), Hostname: []byte("SW-core")}, 2},
		{&pb.Log{AppName: []byte("Microsoft-Windows-Security-Auditing"), Msg: []byte(`{"EventID": 4634}`)}, 3},
		{&pb.Log{AppName: []byte("Microsoft-Windows-Security-Auditing"), Msg: []byte(`{"EventID": 4624}`)}, route.None},
	} {
		if got := tcp.Table.Log(tc.log); got != tc.want {
			t.Errorf("%v: rule %d, want %d", tc.log, got, tc.want)
		}
	}
	dns := &pb.Flow{Proto: 17, SrcPort: 53, DstPort: 40000}
	ew := &pb.Flow{Proto: 6, SrcAddr: sender("10.0.0.1"), DstAddr: sender("10.9.9.9")}
	out := &pb.Flow{Proto: 6, SrcAddr: sender("10.0.0.1"), DstAddr: sender("8.8.8.8")}
	if routers.Table.Flow(dns) != 0 || routers.Table.Flow(ew) != 1 || routers.Table.Flow(out) != route.None {
		t.Error("flow rules do not take the flows they should")
	}
}

func TestBadRoutesRefusedWithTheirLine(t *testing.T) {
	head := "intakes:\n  - name: S\n    protocol: udp\n    port: 514\n    intake_key: CATCHALL_KEY_0001\n    routes:\n"
	for _, tc := range []struct{ rules, want string }{
		{"      - {name: a, match: {message: {regex: '(['}}, drop: true}\n", "line 7: route \"a\": message: invalid regex"},
		{"      - {name: a, match: {app_nme: x}, drop: true}\n", "line 7: route \"a\": app_nme: unknown field"},
		{"      - {name: a, match: {source: 10.0.0.0/33}, drop: true}\n", `"10.0.0.0/33" is not an address or a CIDR`},
		{"      - {name: a, match: {source: 10.0.0.1}}\n", "line 7: route \"a\" of intake \"S\": intake_key or drop: true is missing"},
		{"      - {name: a, match: {source: 10.0.0.1}, drop: true, intake_key: KEY_ABCDEFGH}\n", "not both"},
		{"      - {name: a, match: {hostname: {prefx: sw-}}, drop: true}\n", `unknown key "prefx"`},
		{"      - {name: a, match: {severity: loud}, drop: true}\n", `"loud" is not a number or a name`},
		{"      - {name: a, match: {source: 10.0.0.1}, drop: true}\n      - {name: a, match: {source: 10.0.0.2}, drop: true}\n", "line 8: route \"a\" of intake \"S\": name already used by the route at line 7"},
		{"      - {name: a, drop: true}\n", "match is missing"},
		{"      - {name: a, match: {source: 10.0.0.1}, drop: true, dorp: true}\n", `unknown key "dorp"`},
	} {
		_, err := Parse([]byte(head+tc.rules), "r.yaml", t.TempDir(), env())
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q", tc.rules, err, tc.want)
		}
	}
	stats := "intakes:\n  - name: M\n    stats: true\n    intake_key: CATCHALL_KEY_0001\n    routes:\n      - {name: a, match: {source: 10.0.0.1}, drop: true}\n"
	if _, err := Parse([]byte(stats), "r.yaml", t.TempDir(), env()); err == nil || !strings.Contains(err.Error(), "not to a stats intake") {
		t.Errorf("drop rule on a stats intake: %v", err)
	}
}

// TestSameRoutesWhereverWritten: a reload keeps an intake whose rules did
// not change, though lines above them did; a changed value is a change.
func TestSameRoutesWhereverWritten(t *testing.T) {
	a, err := Parse([]byte(routesFile), "a.yaml", t.TempDir(), env())
	if err != nil {
		t.Fatal(err)
	}
	b, err := Parse([]byte("# a comment\n\n"+routesFile), "b.yaml", t.TempDir(), env())
	if err != nil {
		t.Fatal(err)
	}
	c, err := Parse([]byte(strings.Replace(routesFile, "4634", "4647", 1)), "c.yaml", t.TempDir(), env())
	if err != nil {
		t.Fatal(err)
	}
	for i := range a.Intakes {
		if !SameRoutes(a.Intakes[i].Routes, b.Intakes[i].Routes) {
			t.Errorf("intake %s: moved rules seen as changed", a.Intakes[i].Name)
		}
	}
	if SameRoutes(a.Intakes[0].Routes, c.Intakes[0].Routes) || !SameRoutes(a.Intakes[2].Routes, c.Intakes[2].Routes) {
		t.Error("a changed regex not seen, or seen where it did not change")
	}
}

func TestAggregateRefusals(t *testing.T) {
	for _, tc := range []struct{ intake, want string }{
		{"    protocol: netflow\n    port: 2055\n    aggregate: {window: 60s, keys: [sourceIPv4Adress]}\n", `key "sourceIPv4Adress" is not one flows can be summed by`},
		{"    protocol: netflow\n    port: 2055\n    aggregate: {window: 10ms, keys: [protocolIdentifier]}\n", "aggregate.window 10ms is not between 1s and 1h0m0s"},
		{"    protocol: netflow\n    port: 2055\n    aggregate: {window: 60s}\n", "keys is missing"},
		{"    protocol: udp\n    port: 514\n    aggregate: {window: 60s, keys: [protocolIdentifier]}\n", "aggregate applies to netflow and sflow intakes only"},
		{"    protocol: netflow\n    port: 2055\n    aggregate: {window: 60s, keys: [protocolIdentifier], windw: 1s}\n", `unknown key "windw"`},
	} {
		file := "intakes:\n  - name: R\n    intake_key: CATCHALL_KEY_0001\n" + tc.intake
		_, err := Parse([]byte(file), "a.yaml", t.TempDir(), env())
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.intake, err, tc.want)
		}
	}
	ok := "intakes:\n  - name: R\n    intake_key: CATCHALL_KEY_0001\n    protocol: sflow\n    port: 6343\n    aggregate: {window: 1m, keys: [sourceIPv4Address, destinationIPv4Address]}\n"
	c, err := Parse([]byte(ok), "a.yaml", t.TempDir(), env())
	if err != nil || c.Intakes[0].Flow.Aggregate.Window != time.Minute {
		t.Errorf("a good aggregate block: %v", err)
	}
}
