package httpd

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flowgate/flowgate/collect"
)

// TestStatusRules: /status.json gives each intake's rules with what they
// took, read from the rule counters, and the page has a table to show them.
func TestStatusRules(t *testing.T) {
	reg := prometheus.NewRegistry()
	matched := prometheus.NewCounterVec(prometheus.CounterOpts{Name: collect.MetricRouteMatchedTotal, Help: "rules"}, []string{"intake", "rule"})
	reg.MustRegister(matched)
	matched.WithLabelValues("Shared", "asa").Add(3)
	matched.WithLabelValues("Shared", "logoff-noise").Add(7)
	matched.WithLabelValues("Other", "asa").Add(1)
	s, err := New("127.0.0.1:0", reg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	s.ServeStatus(StatusSources{Gatherer: reg, Intakes: func() []IntakeInfo {
		return []IntakeInfo{{Name: "Shared", Protocol: "udp", Port: 514}, {Name: "Plain", Protocol: "tcp", Port: 601}}
	}})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	base := "http://" + s.Addr().String()
	status, body := get(t, base+"/status.json")
	if status != http.StatusOK {
		t.Fatalf("/status.json: %d", status)
	}
	var st Status
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		t.Fatal(err)
	}
	if len(st.Intakes) != 2 {
		t.Fatalf("intakes: %+v", st.Intakes)
	}
	want := []collect.RuleCount{{Rule: "asa", Matched: 3}, {Rule: "logoff-noise", Matched: 7}}
	if got := st.Intakes[0].Rules; !slices.Equal(got, want) {
		t.Errorf("Shared's rules: %+v, want %+v", got, want)
	}
	if got := st.Intakes[1].Rules; got == nil || len(got) != 0 {
		t.Errorf("Plain's rules: %#v, want an empty list", got)
	}
	if !strings.Contains(body, `"rules":[{"rule":"asa","matched":3}`) {
		t.Errorf("/status.json does not spell the rules as the page reads them: %s", body)
	}
	if _, page := get(t, base+"/"); !strings.Contains(page, `id="rules"`) || !strings.Contains(page, "rules(st)") {
		t.Error("the page has no rules table")
	}
}
