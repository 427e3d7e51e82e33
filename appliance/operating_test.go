package appliance_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/flowgate/flowgate/appliance"
	"github.com/flowgate/flowgate/appliance/appliancetest"
	"github.com/flowgate/flowgate/internal/apptest"
	"github.com/flowgate/flowgate/internal/intaketest"
	"github.com/flowgate/flowgate/internal/testtraffic"
)

// waitLog waits for a log line matching re and returns it.
func waitLog(t *testing.T, a *appliancetest.App, re string, timeout time.Duration) string {
	t.Helper()
	r := regexp.MustCompile(re)
	var line string
	if !apptest.Eventually(timeout, func() bool {
		line = r.FindString(a.Stderr.String())
		return line != ""
	}) {
		t.Fatalf("no log line matches %s:\n%s", re, a.Stderr.String())
	}
	return line
}

// An outage told by the log: what waits at start, the output accepting
// again after failed attempts, the backlog draining with its rate and time
// left, then a reload saying which intakes changed and how.
func TestLogsTellTheOutage(t *testing.T) {
	t.Parallel()
	in := intaketest.NewHTTPS(t)
	in.Refuse(func(int) (int, string) { return 503, "" })
	port := apptest.FreePort(t, "udp")
	dir := t.TempDir()
	// A small queue makes small batches: the backlog drains over many.
	intake := func(name string, port int, key string) string {
		return netflowIntake(name, port, key, in) + "    queue_size: 1000\n"
	}
	path := apptest.WriteConfig(t, dir, "intakes:\n"+intake("A", port, testKey), "127.0.0.1:0")
	first := appliancetest.Start(t, path)
	stream := testtraffic.NewV5Stream(t, port, 1)
	stream.Send(6000)
	if !apptest.Eventually(20*time.Second, func() bool { return first.Metric("flowgate_buffered_events_total", `intake="A"`) == 6000 }) {
		t.Fatalf("buffered %v of 6000", first.Metric("flowgate_buffered_events_total", `intake="A"`))
	}
	if err := first.Stop(60 * time.Second); err != nil {
		t.Fatal(err)
	}

	a := appliancetest.StartWith(t, path, appliance.Options{ProgressEvery: 300 * time.Millisecond})
	waitLog(t, a, `waiting in the buffer for \\"A\\": \d+ messages \(up to [0-9.]+ k? ?events, [0-9.]+ [kM]? ?bytes\), the oldest [0-9.]+m?s old`, 10*time.Second)
	refused := in.Refused()
	if !apptest.Eventually(30*time.Second, func() bool { return in.Refused() > refused }) {
		t.Fatal("the intake was not tried")
	}
	in.Delay(400 * time.Millisecond)
	in.Refuse(func(int) (int, string) { return 0, "" })
	waitLog(t, a, `output of \\"A\\" accepted again after [0-9.]+m?s and [1-9]\d* failed attempts; \d+ buffer messages waiting`, 60*time.Second)
	waitLog(t, a, `backlog of \\"A\\" draining at \d+ buffer messages/s; \d+ messages \([0-9.]+ [kM]? ?bytes\) left, empty in about [0-9.]+m?s`, 60*time.Second)
	waitLog(t, a, `backlog of \\"A\\" shipped: nothing waits`, 60*time.Second)
	if dups := stream.Check(t, in.WaitEvents(t, 6000, 30*time.Second)); dups > 0 {
		t.Logf("%d duplicates (batches in flight at the first stop)", dups)
	}

	// A reload: A moves port and key, B comes.
	in.Delay(0)
	newKey := "ChangedTestIntakeKey0123456789xy"
	port2, portB := apptest.FreePort(t, "udp"), apptest.FreePort(t, "udp")
	apptest.WriteConfig(t, dir, "intakes:\n"+intake("A", port2, newKey)+intake("B", portB, testKey), "127.0.0.1:0")
	if err := a.Reload(); err != nil {
		t.Fatal(err)
	}
	changed := waitLog(t, a, `intake \\"A\\" changed: [^"]*`, 5*time.Second)
	for _, want := range []string{fmt.Sprintf("port %d → %d", port, port2), "intake_key "} {
		if !strings.Contains(changed, want) {
			t.Errorf("the reload's line %q does not say %q", changed, want)
		}
	}
	waitLog(t, a, fmt.Sprintf(`intake \\"B\\" added: netflow port %d, output https `, portB), 5*time.Second)
	apptest.WriteConfig(t, dir, "intakes:\n"+intake("A", port2, newKey), "127.0.0.1:0")
	if err := a.Reload(); err != nil {
		t.Fatal(err)
	}
	waitLog(t, a, fmt.Sprintf(`intake \\"B\\" removed \(was netflow port %d\)`, portB), 5*time.Second)
	if log := a.Stderr.String(); strings.Contains(log, newKey) || strings.Contains(log, testKey) {
		t.Errorf("the log shows an intake key in full")
	}
}

// dashboardMetricRe finds metric names in the dashboard's queries.
var dashboardMetricRe = regexp.MustCompile(`\b((?:flowgate|go|process)_[a-z0-9_]+)`)

// /metrics by the conventions: the standard go_ and process_ names,
// flowgate_build_info, every counter of the README's table (and each of
// its reasons) from the start, and every name the Grafana dashboard's
// queries use.
func TestMetricsByTheConventions(t *testing.T) {
	t.Parallel()
	in := intaketest.NewHTTPS(t)
	in.Refuse(func(n int) (int, string) {
		if n == 1 {
			return 503, ""
		}
		return 0, ""
	})
	flows, syslog := apptest.FreePort(t, "udp"), apptest.FreePort(t, "tcp")
	a := newApp(t, "intakes:\n"+netflowIntake("Routers", flows, testKey, in)+
		// A rule that never matches: flowgate_route_matched_total is served
		// for the intakes that have rules.
		fmt.Sprintf("  - name: Firewall\n    protocol: tcp\n    port: %d\n    intake_key: %s\n    output: %s\n    routes: [{name: quiet, match: {app_name: never-sent}, drop: true}]\n", syslog, testKey, in.Output())+
		// The http intakes' counters are served for the http intakes.
		fmt.Sprintf("  - {name: Apps, protocol: http, port: %d, bind: 127.0.0.1, plain_http: true, intake_keys: [%s], output: %s}\n", apptest.FreePort(t, "tcp"), testKey, in.Output()))
	served := func() map[string][]string {
		status, body := a.Get("/metrics")
		if status != http.StatusOK {
			t.Fatalf("/metrics: %d", status)
		}
		m := map[string][]string{}
		sc := bufio.NewScanner(strings.NewReader(body))
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			line := sc.Text()
			if f := strings.Fields(line); len(f) > 2 && f[0] == "#" && f[1] == "TYPE" {
				m[f[2]] = m[f[2]]
			} else if name, labels, ok := strings.Cut(line, "{"); ok && !strings.HasPrefix(line, "#") {
				m[name] = append(m[name], labels)
			}
		}
		return m
	}

	// Before any traffic.
	start := served()
	for _, name := range []string{"go_goroutines", "go_gc_gomemlimit_bytes", "process_resident_memory_bytes", "process_open_fds"} {
		if _, ok := start[name]; !ok {
			t.Errorf("/metrics does not serve %s", name)
		}
	}
	for name := range start {
		if strings.HasPrefix(name, "flowgate_go_") || strings.HasPrefix(name, "flowgate_process_") {
			t.Errorf("/metrics serves %s: the standard name has no flowgate_ prefix", name)
		}
	}
	info := strings.Join(start[appliance.MetricBuildInfo], " ")
	if !strings.Contains(info, `version="test"`) || !strings.Contains(info, `goversion="`+runtime.Version()+`"`) || !strings.Contains(info, `revision="`) {
		t.Errorf("flowgate_build_info: %q", info)
	}
	readme, err := os.ReadFile(filepath.Join("..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	rows := 0
	for _, row := range strings.Split(string(readme), "\n") {
		m := regexp.MustCompile("^\\| `(flowgate_[a-z0-9_]+)\\{([a-z,]+)\\}` \\| counter \\| (.*)").FindStringSubmatch(row)
		if m == nil || strings.Contains(m[2], "exporter") || strings.Contains(m[2], "code") || strings.HasPrefix(m[1], "flowgate_ship_failures") {
			continue // by exporter, by the intake's answer or by status code: known once seen
		}
		rows++
		samples := strings.Join(start[m[1]], " ")
		if !strings.Contains(samples, `intake="`) {
			t.Errorf("%s is not served at start", m[1])
			continue
		}
		if !strings.Contains(m[2], "reason") {
			continue
		}
		for _, r := range regexp.MustCompile("`([a-z_]+)`").FindAllStringSubmatch(m[3], -1) {
			if !strings.Contains(samples, `reason="`+r[1]+`"`) {
				t.Errorf("%s{reason=%q} is not served at start", m[1], r[1])
			}
		}
	}
	if rows < 15 {
		t.Fatalf("read %d counters of the README's table", rows)
	}

	// A flow and a refused batch: what is known once seen.
	testtraffic.NewV5Stream(t, flows, 1).Send(10)
	in.WaitEvents(t, 10, 60*time.Second)
	board, err := os.ReadFile(filepath.Join("..", "deploy", "grafana", "flowgate-dashboard.json"))
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Panels []struct {
			Title   string
			Targets []struct{ Expr string }
		}
	}
	if err := json.Unmarshal(board, &d); err != nil {
		t.Fatalf("dashboard: %v", err)
	}
	now, used := served(), 0
	for _, p := range d.Panels {
		for _, q := range p.Targets {
			for _, m := range dashboardMetricRe.FindAllStringSubmatch(q.Expr, -1) {
				used++
				name := m[1]
				if _, ok := now[name]; !ok {
					name = strings.TrimSuffix(name, "_bucket")
				}
				if _, ok := now[name]; !ok {
					t.Errorf("panel %q queries %s, which /metrics does not serve", p.Title, m[1])
				}
			}
		}
	}
	if used < 20 {
		t.Fatalf("the dashboard's queries use %d metrics", used)
	}
}
