package collect

import (
	"fmt"
	"log/slog"
	"net/netip"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	pb "github.com/flowgate/flowgate/proto"
	"github.com/flowgate/flowgate/route"
)

// routedSyslog is a syslog intake's receiving side, without a listener,
// with rules.
func routedSyslog(t testing.TB, own string, rules []route.Rule, subjects []string) *SyslogIntake {
	t.Helper()
	table, errs := route.Compile(route.Syslog, rules)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	if rules == nil {
		table = nil
	}
	cfg := DefaultSyslogConfig("Shared", "udp", 514)
	cfg.Subject = own
	im := NewMetrics(prometheus.NewRegistry(), slog.Default()).forIntake("Shared")
	return &SyslogIntake{cfg: cfg, m: im, router: newRouter(own, Routes{Table: table, Subjects: subjects}, im)}
}

func TestLogSinkRoutes(t *testing.T) {
	rules := []route.Rule{
		{Name: "asa", IntakeKey: "K1", Match: []route.Cond{{Field: "app_name", String: &route.StringMatch{Prefix: "%ASA-"}}}},
		{Name: "noise", Drop: true, Match: []route.Cond{{Field: "message", String: &route.StringMatch{Contains: "noise"}}}},
		{Name: "asa-again", IntakeKey: "K1", Match: []route.Cond{{Field: "hostname", Values: []string{"fw2"}}}},
	}
	for _, own := range []string{"own", ""} {
		si := routedSyslog(t, own, rules, []string{"k1", "", "k1"})
		s := si.newSink()
		from := netip.MustParseAddr("192.0.2.1")
		lines := []string{"<13>Dec  4 06:00:00 fw1 %ASA-6-1: a", "<13>Dec  4 06:00:00 h sshd: noise", "<13>Dec  4 06:00:00 fw2 x: b", "<13>Dec  4 06:00:00 h sshd: c"}
		var dests []int
		for _, l := range lines {
			dests = append(dests, s.add([]byte(l), from, time.Now()))
		}
		wantLast := 0
		if own == "" {
			wantLast = -1
		}
		if fmt.Sprint(dests) != fmt.Sprint([]int{1, -1, 1, wantLast}) || len(si.router.subjects) != 2 {
			t.Fatalf("own %q: destinations %v, subjects %q", own, dests, si.router.subjects)
		}
		// The records routed elsewhere are whole in their batch.
		got := s.batches[1].batch.Logs
		if len(got) != 2 || string(got[0].Msg) != "a" || string(got[1].Hostname) != "fw2" || string(got[1].Msg) != "b" {
			t.Errorf("routed batch: %v", got)
		}
		if n := len(s.batches[0].batch.Logs); n != 1+wantLast {
			t.Errorf("own batch holds %d records", n)
		}
	}
}

// TestFlowRouteNeverSharesARecord: the decoder reuses the records past the
// end of its batch; one moved to another batch must not be among them.
func TestFlowRouteNeverSharesARecord(t *testing.T) {
	table, errs := route.Compile(route.Flow, []route.Rule{
		{Name: "web", IntakeKey: "K1", Match: []route.Cond{{Field: "port", Values: []string{"443"}}}},
		{Name: "dns", Drop: true, Match: []route.Cond{{Field: "port", Values: []string{"53"}}}},
	})
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	im := NewMetrics(prometheus.NewRegistry(), slog.Default()).forIntake("R")
	fi := &FlowIntake{m: im, router: newRouter("own", Routes{Table: table, Subjects: []string{"k1", ""}}, im)}
	b := &flowBatcher{fi: fi, routed: make([]pb.Batch, 2)}
	ports := []uint32{443, 53, 80, 443, 22, 53, 443}
	for _, p := range ports {
		b.batch.Flows = append(b.batch.Flows, &pb.Flow{DstPort: p})
	}
	b.route(0)
	var kept []uint32
	for _, f := range b.batch.Flows {
		kept = append(kept, f.DstPort)
	}
	if fmt.Sprint(kept) != "[80 22]" || len(b.routed[1].Flows) != 3 {
		t.Fatalf("kept %v, routed %d", kept, len(b.routed[1].Flows))
	}
	seen := map[*pb.Flow]bool{}
	for _, f := range b.batch.Flows[:cap(b.batch.Flows)] {
		if f != nil && seen[f] {
			t.Fatal("a record twice in the decoder's batch")
		}
		seen[f] = true
	}
	for _, f := range b.routed[1].Flows {
		if seen[f] {
			t.Fatalf("record to port %d is both routed and reusable by the decoder", f.DstPort)
		}
	}
}

// benchmarkSink measures the receiving side of a syslog event: parsing
// into the batch and routing.
func benchmarkSink(b *testing.B, rules []route.Rule, subjects []string) {
	si := routedSyslog(b, "own", rules, subjects)
	s := si.newSink()
	from := netip.MustParseAddr("172.20.1.3")
	frames := [][]byte{
		[]byte("<166>Dec  4 06:00:00 fw1 %ASA-6-302013: Built outbound TCP connection 1234 for outside:203.0.113.9/443"),
		[]byte(`<14>1 2026-12-04T06:00:00Z dc01 Microsoft-Windows-Security-Auditing 4242 - - {"EventID": 4624, "LogonType": 3, "TargetUserName": "svc"}`),
		[]byte("<187>Dec  4 06:00:00 core-3 kernel: link down on port Gi1/0/24"),
		[]byte("<134>1 2026-12-04T06:00:00Z web01 nginx 99 - - 203.0.113.9 - - GET /index.html 200 512"),
	}
	now := time.Now()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		s.add(frames[i%len(frames)], from, now)
		if i%256 == 255 {
			for _, bt := range s.batches {
				bt.reset()
			}
		}
	}
}

// twentyRules are 20 mixed rules, two of them regexes, that take none of
// benchmarkSink's events: each event is tried against all of them.
func twentyRules() ([]route.Rule, []string) {
	var rules []route.Rule
	add := func(field string, c route.Cond) {
		c.Field = field
		rules = append(rules, route.Rule{Name: fmt.Sprint("r", len(rules)), IntakeKey: "K", Match: []route.Cond{c}})
	}
	for i := range 5 {
		add("source", route.Cond{Values: []string{fmt.Sprintf("192.168.%d.0/24", i)}})
		add("app_name", route.Cond{String: &route.StringMatch{Prefix: fmt.Sprintf("%%FTD-%d-", i)}})
		add("hostname", route.Cond{String: &route.StringMatch{Equals: fmt.Sprintf("SW-%d", i), IgnoreCase: true}})
	}
	for i := range 3 {
		add("message", route.Cond{String: &route.StringMatch{Contains: fmt.Sprintf("denied by acl %d", i)}})
	}
	add("message", route.Cond{String: &route.StringMatch{Regex: `EventID"?:\s*4634`}})
	add("message", route.Cond{String: &route.StringMatch{Regex: `(?i)logon\s+type\s*[:=]\s*2`}})
	subjects := make([]string, len(rules))
	for i := range subjects {
		subjects[i] = "routed"
	}
	return rules, subjects
}

func BenchmarkSyslogReceiveNoRules(b *testing.B) { benchmarkSink(b, nil, nil) }

func BenchmarkSyslogReceive20Rules(b *testing.B) {
	rules, subjects := twentyRules()
	benchmarkSink(b, rules, subjects)
}

// BenchmarkSyslogReceiveRouted: every event taken by the first rule, and
// so parsed a second time into its own batch.
func BenchmarkSyslogReceiveRouted(b *testing.B) {
	benchmarkSink(b, []route.Rule{{Name: "all", IntakeKey: "K", Match: []route.Cond{{Field: "source", Values: []string{"0.0.0.0/0"}}}}}, []string{"routed"})
}
