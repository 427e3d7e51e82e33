package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/flowgate/flowgate/benchmarks/internal/procstat"
	"github.com/flowgate/flowgate/benchmarks/internal/report"
)

// The paths -routes adds to the report.
const (
	pathSyslogRules  = "syslog, 20 rules"
	pathAggregateOff = "flows, aggregate off"
	pathAggregateOn  = "flows, aggregate on"
)

// twentyRules are 20 mixed rules (addresses, prefix, equals ignoring case,
// contains, two regexes, one of them case-insensitive) that take none of
// loggen's messages: each is tried against all of them, the worst case.
func twentyRules() string {
	var b strings.Builder
	b.WriteString("    routes:\n")
	for i := range 5 {
		fmt.Fprintf(&b, "      - {name: net%d, match: {source: 192.168.%d.0/24}, intake_key: routed-key-%d}\n", i, i, i)
		fmt.Fprintf(&b, "      - {name: ftd%d, match: {app_name: {prefix: \"%%FTD-%d-\"}}, intake_key: routed-key-%d}\n", i, i, i)
		fmt.Fprintf(&b, "      - {name: sw%d, match: {hostname: {equals: SW-%d, ignore_case: true}}, intake_key: routed-key-%d}\n", i, i, i)
	}
	for i := range 3 {
		fmt.Fprintf(&b, "      - {name: acl%d, match: {message: {contains: \"denied by acl %d\"}}, drop: true}\n", i, i)
	}
	b.WriteString("      - {name: logoff, match: {message: {regex: 'EventID\"?:\\s*4634'}}, drop: true}\n")
	b.WriteString("      - {name: logon2, match: {message: {regex: '(?i)logon\\s+type\\s*[:=]\\s*2'}}, drop: true}\n")
	return b.String()
}

// aggregateOn sums flows by destination, port and protocol over a second.
const aggregateOn = "    aggregate: {window: 1s, keys: [destinationIPv4Address, destinationTransportPort, protocolIdentifier]}\n"

// measureRoutes measures what routes and aggregation cost flowgate, each
// against its plain run in the same run of the harness: the syslog path's
// best rate with twentyRules, and flowgate's CPU per received flow at one
// rate with aggregation off and on.
func (b *bench) measureRoutes(ctx context.Context, t *tool) error {
	plain := b.run.Best(report.PathSyslog, report.Flowgate)
	if plain == nil {
		if _, err := b.search(ctx, t, report.PathSyslog, "tcp", b.cfg.syslogRate); err != nil {
			return err
		}
		if plain = b.run.Best(report.PathSyslog, report.Flowgate); plain == nil {
			b.skip("syslog with 20 rules: no rate sustained without rules")
			return nil
		}
	}
	// Both searched again from the same rate, with the same steps to find
	// their ceiling; the rules' steps run as syslog steps, then are
	// labelled.
	start := plain.Target
	if _, err := b.search(ctx, t, report.PathSyslog, "tcp", start); err != nil {
		return err
	}
	first := len(b.run.Steps)
	b.intakeExtra = twentyRules()
	_, err := b.search(ctx, t, report.PathSyslog, "tcp", start)
	b.intakeExtra = ""
	for i := first; i < len(b.run.Steps); i++ {
		b.run.Steps[i].Path = pathSyslogRules
	}
	if err != nil {
		return err
	}
	plain = b.run.Best(report.PathSyslog, report.Flowgate)
	if ruled := b.run.Best(pathSyslogRules, report.Flowgate); ruled != nil {
		b.log.Printf("syslog with 20 rules: %.0f/s sustained, %.2f of %.0f/s without", ruled.Target, ruled.Target/plain.Target, plain.Target)
	}
	// CPU per message where both sustained the same rate: what the
	// rules cost when the generator, not flowgate, is the limit.
	for i := len(b.run.Steps) - 1; i >= first; i-- {
		r := b.run.Steps[i]
		for _, p := range b.run.Steps[:first] {
			if p.Path == report.PathSyslog && p.Sustained && r.Sustained && p.Target == r.Target && !p.Profiled {
				b.log.Printf("syslog at %.0f/s: %.2f µs CPU per message without rules, %.2f with 20", r.Target, p.CPUPerEvent, r.CPUPerEvent)
				break
			}
		}
	}

	rate := b.cfg.start
	for _, c := range []struct{ path, extra string }{{pathAggregateOff, ""}, {pathAggregateOn, aggregateOn}} {
		s, err := b.flowCPU(ctx, t, c.path, c.extra, rate)
		if err != nil {
			return err
		}
		b.run.Steps = append(b.run.Steps, s)
		b.log.Printf("%s at %.0f/s: %d of %d flows received, %.2f µs CPU per received flow; %s", c.path, rate, s.Delivered, s.Sent, s.CPUPerEvent, s.Note)
	}
	return nil
}

// flowCPU runs flowgate with extra in its intake at one flow rate and
// measures its CPU per received flow (flowgate_decoded_events_total)
// until what it stored is shipped: aggregated events carry no flow's
// identity, so the sink cannot count them as it counts flows.
func (b *bench) flowCPU(ctx context.Context, t *tool, path, extra string, rate float64) (report.Step, error) {
	s := report.Step{Path: path, Tool: t.name, Target: rate, P50Ms: -1, P99Ms: -1}
	e := &stepEnv{run: b.nextRun, proto: "netflow", rate: rate}
	b.nextRun++
	e.dir = filepath.Join(b.work, fmt.Sprintf("step-%03d-%s-aggregate-%.0f", e.run, t.name, rate))
	if err := os.MkdirAll(e.dir, 0o755); err != nil {
		return s, err
	}
	if !b.cfg.keep {
		defer os.RemoveAll(e.dir)
	}
	var err error
	if e.port, err = freePort("udp"); err != nil {
		return s, err
	}
	if e.httpPort, err = freePort("tcp"); err != nil {
		return s, err
	}
	removeGroup, err := b.cgroup(e)
	if err != nil {
		return s, err
	}
	defer removeGroup()
	b.intakeExtra = extra
	err = t.launch(ctx, e)
	b.intakeExtra = ""
	if e.proc != nil {
		defer e.proc.stop(stopSignal, 30*time.Second)
	}
	if err != nil {
		return s, err
	}
	pid := e.proc.pid()
	cpu0, err := e.cpu()
	if err != nil {
		return s, err
	}
	sum, err := b.generate(ctx, e, report.FlowPath(string(b.format)), rate)
	if err != nil {
		return s, err
	}
	s.Offered, s.Sent = sum.Rate, uint64(sum.Events)
	// Done when every flow was received and what was stored is shipped,
	// and nothing more was stored for two seconds (a window flushed);
	// or when nothing changes for drainIdle.
	var received, stored, shipped float64
	lastChange := time.Now()
	for deadline := time.Now().Add(max(30*time.Second, b.cfg.duration)); time.Now().Before(deadline); {
		text, err := flowgateMetrics(e)
		if err != nil {
			return s, err
		}
		r, st, sh := metric(text, "flowgate_decoded_events_total"), metric(text, "flowgate_buffered_events_total"), metric(text, "flowgate_shipped_events_total")
		if r != received || st != stored || sh != shipped {
			received, stored, shipped, lastChange = r, st, sh, time.Now()
		}
		idle := time.Since(lastChange)
		if (received >= float64(sum.Events) && shipped == stored && idle > 2*time.Second) || idle > drainIdle {
			break
		}
		select {
		case <-ctx.Done():
			return s, ctx.Err()
		case <-time.After(drainPoll):
		}
	}
	cpu1, err := e.cpu()
	if err != nil {
		return s, err
	}
	if e.proc.exited() {
		return s, fmt.Errorf("%s exited during the step: %s", e.proc.name, e.proc.stderr.lastLines(5))
	}
	s.PeakRSS, _ = procstat.PeakRSS(pid)
	s.Delivered = uint64(received)
	if received > 0 {
		s.CPUPerEvent = float64((cpu1 - cpu0).Microseconds()) / received
	}
	s.Sustained = s.Delivered == s.Sent && shipped == stored
	s.Note = fmt.Sprintf("one rate; delivered = flows received, CPU per received flow; %.0f events stored and %.0f shipped", stored, shipped)
	return s, nil
}

// flowgateMetrics reads the text of flowgate's /metrics.
func flowgateMetrics(e *stepEnv) (string, error) {
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", e.httpPort))
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	return string(body), err
}
