package appliance_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/flowgate/flowgate/appliance/appliancetest"
	"github.com/flowgate/flowgate/collect"
	"github.com/flowgate/flowgate/internal/apptest"
	"github.com/flowgate/flowgate/internal/intaketest"
	"github.com/flowgate/flowgate/internal/peers"
	"github.com/flowgate/flowgate/internal/testtraffic"
)

const statsKey = "StatsTestIntakeKey0123456789ab"

// monitored is an appliance with a netflow intake, a tcp syslog intake and
// a stats intake, all shipping to one local HTTPS intake.
type monitored struct {
	intake               *intaketest.HTTPS
	proc                 *appliancetest.App
	flowPort, syslogPort int
	pcap                 string
}

func startMonitored(t *testing.T, statsInterval string, stallAfter time.Duration, refuse bool) *monitored {
	t.Helper()
	m := &monitored{intake: intaketest.NewHTTPS(t), flowPort: apptest.FreePort(t, "udp"), syslogPort: apptest.FreePort(t, "tcp")}
	if refuse {
		m.intake.Refuse(func(int) (int, string) { return http.StatusServiceUnavailable, "" })
	}
	m.pcap, _ = testtraffic.WriteCapture(t, 40, 11)
	cfg := fmt.Sprintf(`intakes:
  - name: Routers
    protocol: netflow
    port: %d
    intake_key: %s
  - name: Firewall
    protocol: tcp
    port: %d
    max_connections: 1
    intake_key: %s
    routes: [{name: quiet, match: {app_name: never-sent}, drop: true}]
  - name: Monitoring
    stats: true
    interval: %s
    intake_key: %s
output:
  transport: https
  endpoint: %s
  ca_file: %s
`, m.flowPort, testKey, m.syslogPort, testKey, statsInterval, statsKey, m.intake.URL, m.intake.CAFile)
	m.proc = appliancetest.Start(t, apptest.WriteConfig(t, t.TempDir(), cfg, "127.0.0.1:0", apptest.StallAfter(stallAfter)))
	return m
}

// exportFlows has softflowd export the capture to the netflow intake.
func (m *monitored) exportFlows(t *testing.T) peers.Export {
	t.Helper()
	exp := peers.Softflowd(t, m.pcap, fmt.Sprintf("127.0.0.1:%d", m.flowPort), 9)
	if exp.Flows == 0 {
		t.Fatalf("softflowd exported nothing: %s", exp)
	}
	return exp
}

// TestReadinessNamesAStalledOutput has the intake answer 503 to every
// request: once data has waited stall_after, /readyz says which output is
// stalled and why; when the intake accepts again, it is ready again. The
// same appliance's /metrics holds every metric the README lists.
func TestReadinessNamesAStalledOutput(t *testing.T) {
	t.Parallel()
	m := startMonitored(t, "1h", time.Second, true)
	exp := m.exportFlows(t)
	var body string
	if !apptest.Eventually(30*time.Second, func() bool {
		var status int
		status, body = m.proc.Get("/readyz")
		return status == http.StatusServiceUnavailable
	}) {
		t.Fatalf("/readyz never said the output is stalled: %s", body)
	}
	for _, want := range []string{`output of "Routers": stalled: no batch accepted for`, "status 503"} {
		if !strings.Contains(body, want) {
			t.Errorf("/readyz does not say %q:\n%s", want, body)
		}
	}
	if strings.Contains(body, `"Firewall"`) || strings.Contains(body, testKey) {
		t.Errorf("/readyz names an output with nothing waiting, or a key:\n%s", body)
	}
	if st, _ := m.proc.Get("/healthz"); st != http.StatusOK {
		t.Errorf("/healthz %d while stalled: the process is alive", st)
	}

	// The lazily created children: a frame over 250 KiB (dropped), a
	// second connection over max_connections (refused).
	first, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", m.syslogPort))
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	if _, err := fmt.Fprintf(first, "<13>big %s\n", strings.Repeat("x", 260<<10)); err != nil {
		t.Fatal(err)
	}
	// The first connection holds the only slot once its frame is counted;
	// a second one dialled before could take the slot from it.
	if !apptest.Eventually(30*time.Second, func() bool {
		return m.proc.Metric("flowgate_dropped_events_total", `reason="oversize"`) == 1
	}) {
		t.Fatal("the oversize frame was not counted")
	}
	if !apptest.Eventually(30*time.Second, func() bool {
		second, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", m.syslogPort))
		if err == nil {
			second.Close()
		}
		return m.proc.Metric("flowgate_refused_connections_total") > 0
	}) {
		t.Fatal("the connection over max_connections was not counted as refused")
	}
	checkREADMEMetrics(t, &m.proc.Monitor)

	m.intake.Refuse(func(int) (int, string) { return 0, "" })
	m.intake.WaitEvents(t, exp.Flows, 60*time.Second)
	m.proc.WaitReady(30 * time.Second)
	if got := m.proc.Metric("flowgate_ship_resumed_total", `intake="Routers"`); got < 1 {
		t.Errorf("flowgate_ship_resumed_total %v after the intake came back", got)
	}
}

// metricNameRe finds metric names in the README's Monitoring section.
var metricNameRe = regexp.MustCompile("`(flowgate_[a-z0-9_]+)")

// checkREADMEMetrics checks that every metric the README's Monitoring
// section lists is served, so that the list cannot rot.
func checkREADMEMetrics(t *testing.T, p *apptest.Monitor) {
	t.Helper()
	readme, err := os.ReadFile(filepath.Join("..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	text := string(readme)
	start := strings.Index(text, "\n## Monitoring")
	if start < 0 {
		t.Fatal("README has no Monitoring section")
	}
	section := text[start+1:]
	if end := strings.Index(section, "\n## "); end >= 0 {
		section = section[:end]
	}
	status, body := p.Get("/metrics")
	if status != http.StatusOK {
		t.Fatalf("/metrics: %d", status)
	}
	served := map[string]bool{}
	sc := bufio.NewScanner(strings.NewReader(body))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) > 2 && f[0] == "#" && f[1] == "TYPE" {
			served[f[2]] = true
		}
	}
	listed := 0
	for _, m := range metricNameRe.FindAllStringSubmatch(section, -1) {
		listed++
		// Served by a local HTTP intake, which this configuration has not
		// (TestMetricsByTheConventions has one).
		if strings.HasPrefix(m[1], "flowgate_http_intake_") {
			continue
		}
		if !served[m[1]] {
			t.Errorf("README lists %s, /metrics does not serve it", m[1])
		}
	}
	if listed < 30 {
		t.Fatalf("README's Monitoring section lists %d metrics", listed)
	}
	for name := range served {
		if !strings.Contains(section, "`"+name) {
			t.Errorf("/metrics serves %s, the README does not list it", name)
		}
	}
}

// impstats is one event of a stats intake, with the fields the
// forwarder-logs parser reads.
type impstats struct {
	Name      string `json:"name"`
	Origin    string `json:"origin"`
	Submitted *int64 `json:"submitted"`
	Enqueued  *int64 `json:"enqueued"`
	Processed *int64 `json:"processed"`
	BytesSent *int64 `json:"bytes.sent"`
	Matched   *int64 `json:"matched"`
	UTime     *int64 `json:"utime"`
	MaxRSS    *int64 `json:"maxrss"`
}

// TestStatsIntakeShipsImpstatsDeltas has softflowd export flows to an
// appliance with a stats intake reporting every second: its events reach
// the intake with the stats intake's key, in impstats' shapes, and their
// counters are deltas that add up to the appliance's own counts.
func TestStatsIntakeShipsImpstatsDeltas(t *testing.T) {
	t.Parallel()
	m := startMonitored(t, "1s", 2*time.Minute, false)
	exp := m.exportFlows(t)
	m.intake.WaitEvents(t, exp.Flows, 60*time.Second)
	if !apptest.Eventually(20*time.Second, func() bool {
		return m.proc.Metric("flowgate_shipped_events_total", `intake="Routers"`) == float64(exp.Flows)
	}) {
		t.Fatalf("shipped %v of %d flows", m.proc.Metric("flowgate_shipped_events_total", `intake="Routers"`), exp.Flows)
	}
	shippedBytes := m.proc.Metric("flowgate_shipped_bytes_total", `intake="Routers"`)

	sums := map[string]int64{}
	var last map[string]impstats
	var reports int
	if !apptest.Eventually(30*time.Second, func() bool {
		sums, last, reports = map[string]int64{}, map[string]impstats{}, 0
		for _, e := range m.intake.Events() {
			if e.Key != statsKey {
				continue
			}
			var s impstats
			if err := json.Unmarshal([]byte(e.Event), &s); err != nil {
				t.Fatalf("stats event is not JSON: %v: %s", err, e.Event)
			}
			last[s.Name] = s
			switch {
			case s.Submitted != nil:
				sums[s.Name+" submitted"] += *s.Submitted
			case s.Enqueued != nil:
				sums[s.Name+" enqueued"] += *s.Enqueued
			case s.Processed != nil:
				sums[s.Name+" processed"] += *s.Processed
			case s.BytesSent != nil:
				sums[s.Name+" bytes.sent"] += *s.BytesSent
			case s.Matched != nil:
				sums[s.Name+" matched"] += *s.Matched
			case s.Name == "resource-usage":
				reports++
			}
		}
		in := last[fmt.Sprintf("input-Routers(*/%d/IPv4)", m.flowPort)]
		out := last["output-Routers"]
		// Counts complete, and a later report with nothing new: deltas.
		return sums["output-Routers processed"] == int64(exp.Flows) && in.Submitted != nil && *in.Submitted == 0 &&
			out.Processed != nil && *out.Processed == 0
	}) {
		t.Fatalf("stats after %d reports: %v (want %d flows submitted, enqueued and processed, then 0s)", reports, sums, exp.Flows)
	}
	want := map[string]int64{
		fmt.Sprintf("input-Routers(*/%d/IPv4) submitted", m.flowPort): int64(exp.Flows),
		"ruleset-Routers enqueued":                                    int64(exp.Flows),
		"output-Routers processed":                                    int64(exp.Flows),
		fmt.Sprintf("input-Firewall(%d) submitted", m.syslogPort):     0,
		"route-Firewall-quiet matched":                                0,
	}
	for k, v := range want {
		if got, ok := sums[k]; !ok || got != v {
			t.Errorf("%s: %d over all reports (present: %v), want %d", k, got, ok, v)
		}
	}
	host, port, _ := net.SplitHostPort(strings.TrimPrefix(m.intake.URL, "https://"))
	if got := sums["TCP-"+host+"-"+port+" bytes.sent"]; got < int64(shippedBytes) {
		t.Errorf("omfwd bytes.sent %d, Routers alone shipped %v bytes", got, shippedBytes)
	}
	origins := map[string]string{"ruleset-Routers": "core.queue", "output-Routers": "core.action",
		"output-Monitoring": "core.action", "resource-usage": "impstats",
		fmt.Sprintf("input-Firewall(%d)", m.syslogPort): "imtcp", "route-Firewall-quiet": "flowgate.route"}
	for name, origin := range origins {
		if got := last[name].Origin; got != origin {
			t.Errorf("%s: origin %q, want %q", name, got, origin)
		}
	}
	if ru := last["resource-usage"]; ru.UTime == nil || *ru.UTime <= 0 || ru.MaxRSS == nil || *ru.MaxRSS <= 0 {
		t.Errorf("resource-usage: %+v", ru)
	}
}

// TestStatusPageShowsTheNumbers loads the status page in Debian's headless
// Chromium after softflowd exported flows, and reads the numbers it
// shows: they are those of /status.json and /metrics.
func TestStatusPageShowsTheNumbers(t *testing.T) {
	t.Parallel()
	peers.Require(t, "chromium")
	m := startMonitored(t, "1h", 2*time.Minute, false)
	exp := m.exportFlows(t)
	if !apptest.Eventually(30*time.Second, func() bool {
		return m.proc.Metric("flowgate_shipped_events_total", `intake="Routers"`) == float64(exp.Flows)
	}) {
		t.Fatalf("shipped %v of %d flows", m.proc.Metric("flowgate_shipped_events_total", `intake="Routers"`), exp.Flows)
	}
	// Two lines for the Firewall's drop rule: its row shows them.
	peers.Logger(t, m.syslogPort, peers.LoggerOptions{Format: "rfc3164", TCP: true, Tag: "never-sent"}, "quiet 1", "quiet 2")
	if !apptest.Eventually(30*time.Second, func() bool {
		return m.proc.Metric(collect.MetricRouteMatchedTotal, `intake="Firewall"`, `rule="quiet"`) == 2
	}) {
		t.Fatalf("the rule quiet matched %v, want 2", m.proc.Metric(collect.MetricRouteMatchedTotal, `intake="Firewall"`, `rule="quiet"`))
	}
	status, page := m.proc.Get("/")
	if status != http.StatusOK {
		t.Fatalf("/: %d", status)
	}
	// Self-contained: nothing is loaded from elsewhere.
	if loads := regexp.MustCompile(`(?i)(src|href)\s*=|@import|url\(`).FindAllString(page, -1); len(loads) > 0 {
		t.Errorf("the page loads other resources: %v", loads)
	}

	dom := dumpDOM(t, "http://"+m.proc.HTTP+"/")
	var st struct {
		Intakes []struct {
			Name    string  `json:"name"`
			Decoded float64 `json:"decoded"`
			Shipped float64 `json:"shipped"`
		} `json:"intakes"`
		Exporters []struct {
			Exporter  string            `json:"exporter"`
			Flows     float64           `json:"flows"`
			Templates []json.RawMessage `json:"templates"`
		} `json:"exporters"`
	}
	_, body := m.proc.Get("/status.json")
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		t.Fatalf("/status.json: %v", err)
	}
	shown := func(row, field string) string {
		t.Helper()
		re := regexp.MustCompile(`<tr ` + row + `[^>]*>(?s:.*?)</tr>`)
		tr := re.FindString(dom)
		if tr == "" {
			t.Fatalf("the page shows no row %s:\n%s", row, dom)
		}
		cell := regexp.MustCompile(`<td[^>]* data-field="` + field + `"[^>]*>([^<]*)</td>`).FindStringSubmatch(tr)
		if cell == nil {
			t.Fatalf("row %s has no %s cell: %s", row, field, tr)
		}
		return cell[1]
	}
	decoded := fmt.Sprint(m.proc.Metric("flowgate_decoded_events_total", `intake="Routers"`))
	if got := shown(`data-intake="Routers"`, "decoded"); got != decoded || decoded != fmt.Sprint(exp.Flows) {
		t.Errorf("page shows %s decoded, /metrics %s, softflowd exported %d", got, decoded, exp.Flows)
	}
	if got := shown(`data-intake="Routers"`, "shipped"); got != fmt.Sprint(exp.Flows) {
		t.Errorf("page shows %s shipped, want %d", got, exp.Flows)
	}
	if len(st.Intakes) != 3 || st.Intakes[0].Name != "Routers" || st.Intakes[0].Decoded != float64(exp.Flows) {
		t.Errorf("/status.json intakes: %+v", st.Intakes)
	}
	if len(st.Exporters) != 1 || st.Exporters[0].Exporter != "127.0.0.1" || st.Exporters[0].Flows != float64(exp.Flows) || len(st.Exporters[0].Templates) == 0 {
		t.Fatalf("/status.json exporters: %+v", st.Exporters)
	}
	row := `data-exporter="127.0.0.1"`
	if got := shown(row, "flows"); got != fmt.Sprint(exp.Flows) {
		t.Errorf("page shows %s flows for the exporter, want %d", got, exp.Flows)
	}
	if got := shown(row, "packets"); got != fmt.Sprint(m.proc.Metric("flowgate_exporter_packets_total", `exporter="127.0.0.1"`)) || got != fmt.Sprint(exp.Datagrams) {
		t.Errorf("page shows %s datagrams from the exporter, softflowd sent %d", got, exp.Datagrams)
	}
	if got := shown(row, "templates"); !regexp.MustCompile(`^\d+: \d+`).MatchString(got) {
		t.Errorf("page shows templates %q", got)
	}
	if got := shown(`data-intake="Firewall" data-rule="quiet"`, "matched"); got != "2" {
		t.Errorf("page shows %q matched for the rule quiet, want 2", got)
	}
	right := regexp.MustCompile(`data-intakes-right="(\d+)"`).FindStringSubmatch(dom)
	if right == nil {
		t.Errorf("the page did not say where its intakes table ends")
	} else if w, _ := strconv.Atoi(right[1]); w > statusPageWidth {
		t.Errorf("the intakes table ends at %d px, past a %d-pixel window", w, statusPageWidth)
	}
	for _, col := range []string{"drain_rate", "time_left"} {
		if shown(`data-intake="Routers"`, col) == "" {
			t.Errorf("the intakes table has an empty %s", col)
		}
	}
	if !strings.Contains(dom, `<svg`) || !strings.Contains(dom, `id="ready" class="state ok">ready<`) {
		t.Errorf("the page has no chart or no ready state")
	}
}

// statusPageWidth is the window the status page must fit: a laptop's.
const statusPageWidth = 1280

// dumpDOM loads url in headless Chromium, in a window statusPageWidth
// pixels wide, and returns the DOM once the page's scripts have run.
func dumpDOM(t *testing.T, url string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
		"--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--disable-dev-shm-usage", "--user-data-dir="+t.TempDir(), "--virtual-time-budget=5000",
		fmt.Sprintf("--window-size=%d,900", statusPageWidth), "--dump-dom", url)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("chromium: %v\n%s", err, stderr.String())
	}
	dom := string(out)
	if !strings.Contains(dom, "data-loaded=") {
		t.Fatalf("the page did not load /status.json:\n%s\n%s", dom, stderr.String())
	}
	return dom
}
