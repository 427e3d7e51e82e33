package route

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/flowgate/flowgate/decoder/syslog"
	pb "github.com/flowgate/flowgate/proto"
)

func addr(s string) []byte { return netip.MustParseAddr(s).AsSlice() }

func mustCompile(t testing.TB, kind Kind, rules ...Rule) *Table {
	t.Helper()
	tb, errs := Compile(kind, rules)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	return tb
}

func one(field string, values ...string) Rule {
	return Rule{Name: field, Drop: true, Match: []Cond{{Field: field, Values: values}}}
}

func text(field string, sm StringMatch) Rule {
	return Rule{Name: field, Drop: true, Match: []Cond{{Field: field, String: &sm}}}
}

// parse is a syslog line as the receiver parses it.
func parse(line, sender string) *pb.Log {
	l := &pb.Log{}
	syslog.Parse(l, []byte(line), time.Date(2026, 12, 4, 0, 0, 0, 0, time.UTC))
	l.Sender = addr(sender)
	return l
}

func TestSyslogMatchers(t *testing.T) {
	asa := parse("<166>Dec  4 06:00:00 fw1 %ASA-6-302013: Built outbound TCP connection", "192.168.10.7")
	win := parse(`<14>1 2026-12-04T06:00:00Z dc01 Microsoft-Windows-Security-Auditing 4242 LOGOFF - {"EventID": 4634, "LogonType": 3}`, "10.1.2.3")
	sw := parse("<187>Dec  4 06:00:00 SW-core-1 kernel: link down", "2001:db8::5")
	for _, tc := range []struct {
		rule Rule
		log  *pb.Log
		want bool
	}{
		{one("source", "192.168.10.7"), asa, true},
		{one("source", "192.168.10.0/24", "10.0.0.0/8"), win, true},
		{one("source", "192.168.10.5"), asa, false},
		{one("source", "2001:db8::/32"), sw, true},
		{one("source", "::ffff:192.168.10.7"), asa, true},
		{text("app_name", StringMatch{Prefix: "%ASA-"}), asa, true},
		{text("app_name", StringMatch{Prefix: "%asa-"}), asa, false},
		{text("app_name", StringMatch{Prefix: "%asa-", IgnoreCase: true}), asa, true},
		{text("hostname", StringMatch{Prefix: "sw-", IgnoreCase: true}), sw, true},
		{text("hostname", StringMatch{Equals: "dc01"}), win, true},
		{text("hostname", StringMatch{Equals: "DC01", IgnoreCase: true}), win, true},
		{text("message", StringMatch{Contains: "outbound"}), asa, true},
		{text("message", StringMatch{Contains: "OUTBOUND", IgnoreCase: true}), asa, true},
		{text("message", StringMatch{Contains: "inbound"}), asa, false},
		{text("message", StringMatch{Regex: `EventID"?:\s*4634`}), win, true},
		{text("message", StringMatch{Regex: `eventid"?:\s*4634`, IgnoreCase: true}), win, true},
		{text("message", StringMatch{Regex: `EventID"?:\s*4624`}), win, false},
		{text("msgid", StringMatch{Equals: "LOGOFF"}), win, true},
		{text("procid", StringMatch{Equals: "4242"}), win, true},
		{one("app_name", "sshd", "kernel"), sw, true},
		{one("app_name", "sshd", "cron"), sw, false},
		{one("facility", "local7"), sw, true},
		{one("facility", "20"), asa, true},
		{one("severity", "err"), sw, true},
		{one("severity", "0-2"), sw, false},
		{one("severity", "info"), asa, true},
	} {
		tb := mustCompile(t, Syslog, tc.rule)
		if got := tb.Log(tc.log) == 0; got != tc.want {
			t.Errorf("%s on %q: %v, want %v", tc.rule.Describe(strings.ToUpper), tc.log.Msg, got, tc.want)
		}
	}
}

func TestFirstMatchWinsAndAllConditionsHold(t *testing.T) {
	tb := mustCompile(t, Syslog,
		Rule{Name: "both", Drop: true, Match: []Cond{
			{Field: "app_name", String: &StringMatch{Equals: "Microsoft-Windows-Security-Auditing"}},
			{Field: "message", String: &StringMatch{Regex: `EventID"?:\s*4634`}}}},
		Rule{Name: "win", IntakeKey: "K", Match: []Cond{{Field: "app_name", String: &StringMatch{Prefix: "Microsoft-"}}}},
	)
	if got := tb.Log(parse(`<14>1 2026-12-04T06:00:00Z dc01 Microsoft-Windows-Security-Auditing - - - {"EventID": 4634}`, "10.0.0.1")); got != 0 {
		t.Errorf("logoff: rule %d, want 0", got)
	}
	if got := tb.Log(parse(`<14>1 2026-12-04T06:00:00Z dc01 Microsoft-Windows-Security-Auditing - - - {"EventID": 4624}`, "10.0.0.1")); got != 1 {
		t.Errorf("logon: rule %d, want 1", got)
	}
	if got := tb.Log(parse(`<14>1 2026-12-04T06:00:00Z dc01 sshd - - - hello`, "10.0.0.1")); got != None {
		t.Errorf("sshd: rule %d, want None", got)
	}
}

func TestFlowMatchers(t *testing.T) {
	f := &pb.Flow{SrcAddr: addr("10.1.1.1"), DstAddr: addr("192.0.2.53"), Exporter: addr("172.16.0.1"),
		SrcPort: 40000, DstPort: 53, Proto: 17, InIf: 3, OutIf: 7, Vlan: 42, ExporterName: "edge-1"}
	for _, tc := range []struct {
		rule Rule
		want bool
	}{
		{one("source", "10.0.0.0/8"), true},
		{one("destination", "10.0.0.0/8"), false},
		{one("exporter", "172.16.0.1"), true},
		{one("port", "53"), true},
		{one("port", "1-1023"), true},
		{one("source_port", "53"), false},
		{one("destination_port", "53"), true},
		{one("protocol", "6", "17"), true},
		{one("protocol", "6"), false},
		{one("ingress_interface", "3"), true},
		{one("egress_interface", "3"), false},
		{one("vlanId", "42"), true},
		{one("destinationTransportPort", "53"), true},
		{one("sourceIPv4Address", "10.1.1.1"), true},
		{text("exporterName", StringMatch{Prefix: "EDGE", IgnoreCase: true}), true},
	} {
		tb := mustCompile(t, Flow, tc.rule)
		if got := tb.Flow(f) == 0; got != tc.want {
			t.Errorf("%s: %v, want %v", tc.rule.Describe(strings.ToUpper), got, tc.want)
		}
	}
}

func TestCompileErrors(t *testing.T) {
	for _, tc := range []struct {
		kind Kind
		cond Cond
		want string
	}{
		{Syslog, Cond{Field: "message", String: &StringMatch{Regex: "(["}}, "invalid regex"},
		{Syslog, Cond{Field: "protocol", Values: []string{"6"}}, "unknown field"},
		{Flow, Cond{Field: "app_name", Values: []string{"x"}}, "unknown field"},
		{Flow, Cond{Field: "source", Values: []string{"10.0.0.0/40"}}, "not an address or a CIDR"},
		{Flow, Cond{Field: "source", Values: []string{"ten"}}, "not an address or a CIDR"},
		{Flow, Cond{Field: "port", Values: []string{"http"}}, "not a number or a range"},
		{Flow, Cond{Field: "port", Values: []string{"9-1"}}, "not a number or a range"},
		{Syslog, Cond{Field: "hostname", String: &StringMatch{Prefix: "a", Contains: "b"}}, "exactly one"},
		{Syslog, Cond{Field: "source", String: &StringMatch{Prefix: "10."}}, "not a text matcher"},
	} {
		_, errs := Compile(tc.kind, []Rule{{Name: "r", Drop: true, Line: 7, Match: []Cond{tc.cond}}})
		if len(errs) != 1 || !strings.Contains(errs[0].Error(), tc.want) || !strings.HasPrefix(errs[0].Error(), "line 7: ") {
			t.Errorf("%+v: %v, want one error at line 7 with %q", tc.cond, errs, tc.want)
		}
	}
}

// TestNoAllocationWithoutRegex holds the hot path to its promise.
func TestNoAllocationWithoutRegex(t *testing.T) {
	tb := mustCompile(t, Syslog, benchRules()[:15]...)
	l := parse("<166>Dec  4 06:00:00 fw1 %ASA-6-302013: Built outbound TCP connection", "192.168.10.7")
	if n := testing.AllocsPerRun(100, func() { tb.Log(l) }); n != 0 {
		t.Errorf("%v allocations per event", n)
	}
}

// benchRules are 20 rules of every kind of matcher, the last ones regex.
func benchRules() []Rule {
	var rules []Rule
	for i := range 5 {
		rules = append(rules, one("source", fmt.Sprintf("192.168.%d.0/24", 100+i), fmt.Sprintf("10.%d.0.0/16", 100+i)))
		rules = append(rules, text("app_name", StringMatch{Prefix: fmt.Sprintf("%%FTD-%d-", i)}))
		rules = append(rules, text("hostname", StringMatch{Equals: fmt.Sprintf("SW-%d", i), IgnoreCase: true}))
	}
	for i := range 3 {
		rules = append(rules, text("message", StringMatch{Contains: fmt.Sprintf("denied by acl %d", i)}))
	}
	rules = append(rules, text("message", StringMatch{Regex: `EventID"?:\s*4634`}),
		text("message", StringMatch{Regex: `(?i)logon\s+type\s*[:=]\s*3`}))
	for i := range rules {
		rules[i].Name = fmt.Sprint("r", i)
	}
	return rules
}

// BenchmarkSyslog20Rules is the cost per event of 20 mixed rules over a
// mix of events: some taken early, some late, most by none.
func BenchmarkSyslog20Rules(b *testing.B) {
	tb := mustCompile(b, Syslog, benchRules()...)
	logs := []*pb.Log{
		parse("<166>Dec  4 06:00:00 fw1 %ASA-6-302013: Built outbound TCP connection 1234 for outside:203.0.113.9/443", "192.168.10.7"),
		parse(`<14>1 2026-12-04T06:00:00Z dc01 Microsoft-Windows-Security-Auditing 4242 - - {"EventID": 4634, "LogonType": 3, "TargetUserName": "svc"}`, "172.20.1.3"),
		parse("<187>Dec  4 06:00:00 sw-3 kernel: link down on port Gi1/0/24", "172.20.1.4"),
		parse("<134>1 2026-12-04T06:00:00Z web01 nginx 99 - - 203.0.113.9 - - GET /index.html 200 512", "10.101.4.4"),
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		tb.Log(logs[i%len(logs)])
	}
}
