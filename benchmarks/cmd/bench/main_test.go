package main

import (
	"context"
	"io"
	"log"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flowgate/flowgate/benchmarks/internal/report"
)

func TestACheckpointSaysTheRunWentOn(t *testing.T) {
	// A run killed after a checkpoint leaves a report that says so, with
	// the box's calibration so far; the report written at its end does not
	// say so.
	dir := t.TempDir()
	ms := time.Millisecond
	b := &bench{cfg: config{out: dir}, log: log.New(io.Discard, "", 0),
		boxes: []report.BoxTiming{{Text: 40 * ms, Memory: 90 * ms}, {Text: 44 * ms, Memory: 80 * ms}, {Text: 42 * ms, Memory: 100 * ms}}}
	b.run = report.Run{Started: time.Date(2026, 5, 1, 12, 30, 0, 0, time.UTC), Repeats: 2, Steps: []report.Step{{
		Path: report.FlowPath("ipfix"), Tool: report.Flowgate, Target: 100_000, Offered: 100_000,
		Sent: 3_000_000, Delivered: 3_000_000, DeliveredRate: 99_000, P50Ms: -1, P99Ms: -1, Sustained: true,
	}}}
	read := func() string {
		t.Helper()
		md, err := os.ReadFile(filepath.Join(dir, "2026-05-01-1230.md"))
		if err != nil {
			t.Fatal(err)
		}
		return string(md)
	}
	const goingOn = "after flows IPFIX, while the run went on; a run that ends writes it again, so this one was killed before it ended"

	b.checkpoint("flows IPFIX")
	md := read()
	if !strings.Contains(md, goingOn) || !strings.Contains(md, "42.0 ms and 90.0 ms, the medians of the run's 3 timings") {
		t.Errorf("the report at a checkpoint:\n%s", md)
	}
	if _, err := b.writeReport(""); err != nil {
		t.Fatal(err)
	}
	if md := read(); strings.Contains(md, "while the run went on") || strings.Contains(md, "## Not measured") {
		t.Errorf("the report at the end still says the run went on:\n%s", md)
	}
}

func TestABacklogWorkedOffBeforeTheEndIsNotSustained(t *testing.T) {
	// sFlow at 425 000/s in the full run 2026-12-05-1653: everything came
	// out 1.2 s after the generator stopped, but a backlog had built up
	// mid-step: p50 2 284 ms, p99 2 722 ms. The p99 fails it, by little.
	ms := time.Millisecond
	s := report.Step{Target: 425_000, Offered: 424_988, Sent: 12_749_968, Delivered: 12_749_968, Drain: 1200 * ms, P50Ms: 2284, P99Ms: 2722}
	fg := &tool{name: report.Flowgate}
	if fg.drained(s, 1) || !fg.nearMiss(s) {
		t.Errorf("p99 %d ms, drain %v: sustained %t, near miss %t; want a near miss", s.P99Ms, s.Drain, fg.drained(s, 1), fg.nearMiss(s))
	}
	s.P99Ms = 4100
	if fg.nearMiss(s) {
		t.Errorf("p99 %d ms is a near miss; want a miss", s.P99Ms)
	}
	// Its repeat at 1 355 ms held; a peer, whose latency is not measured
	// (-1), is judged by its drain.
	s.P50Ms, s.P99Ms = 95, 1355
	peer := &tool{name: "nfacctd", writeEvery: time.Second}
	if !fg.drained(s, 1) || !peer.drained(report.Step{Target: 100_000, Offered: 100_000, Sent: 3_000_000, Delivered: 3_000_000,
		Drain: 2500 * ms, P50Ms: -1, P99Ms: -1}, 1) {
		t.Error("a step with its p99 within 2 s, or not measured, and its drain within the allowance is not sustained")
	}
}

func TestBackgroundEndWaitsForItsWork(t *testing.T) {
	var saw error
	end := background(context.Background(), func(ctx context.Context) {
		<-ctx.Done()
		saw = ctx.Err()
	})
	end()
	if saw != context.Canceled {
		t.Fatalf("after end, the work saw %v, want %v: end returned before the work did", saw, context.Canceled)
	}
	end() // a second end, as a deferred one after the first, returns at once
}

func TestTheLatencyStepRunsAgainWhenItMissedOnSlowBoxesOnly(t *testing.T) {
	step := func(rate, box float64, p99 int64) report.Step {
		return report.Step{Path: report.PathSyslog, Tool: report.Flowgate, Target: rate, Offered: rate, Sent: 100, Delivered: 100,
			Sustained: true, Box: box, P99Ms: p99}
	}
	failed := func(rate, box float64) report.Step {
		s := step(rate, box, 2998)
		s.Sustained = false
		return s
	}
	run := func(below ...report.Step) *report.Run {
		return &report.Run{Repeats: 2, Steps: append([]report.Step{step(500_000, 1, 900), step(500_000, 1, 900)}, below...)}
	}
	for _, c := range []struct {
		name  string
		steps []report.Step
		want  bool
	}{
		{"missed on a slow box", []report.Step{step(400_000, 0.77, 1209)}, true},
		{"missed on two slow boxes", []report.Step{step(400_000, 0.77, 1209), step(400_000, 0.85, 1100)}, true},
		{"missed on a slow box, met on one at speed", []report.Step{step(400_000, 0.77, 1209), step(400_000, 0.98, 600)}, false},
		{"missed on a box at speed", []report.Step{step(400_000, 0.95, 1209)}, false},
		{"missed on a slow box, then on one at speed", []report.Step{step(400_000, 0.77, 1209), step(400_000, 0.95, 1100)}, false},
		{"met on a slow box", []report.Step{step(400_000, 0.77, 600)}, false},
		{"held on a slow box, missed at speed", []report.Step{step(400_000, 0.77, 1209), failed(400_000, 0.95)}, false},
		{"not held, on slow boxes only", []report.Step{failed(400_000, 0.80), failed(400_000, 0.87)}, true},
		{"not run", nil, false},
	} {
		if got := owedAtSpeed(run(c.steps...), report.PathSyslog, report.Flowgate, 400_000, missedLatency); got != c.want {
			t.Errorf("%s: owedAtSpeed %v, want %v", c.name, got, c.want)
		}
	}
}

func TestTheCPUStepsRunAgainWhenEveryOneRanOnASlowBox(t *testing.T) {
	// A peer's steps: its latency is not measured.
	at := func(rate, box float64, sustained bool) report.Step {
		return report.Step{Path: report.FlowPath("ipfix"), Tool: "nfacctd", Target: rate, Offered: rate, Sent: 100,
			Delivered: 100, Sustained: sustained, Box: box, P50Ms: -1, P99Ms: -1, CPUPerEvent: 4}
	}
	step := func(box float64, sustained bool) report.Step { return at(200_000, box, sustained) }
	for _, c := range []struct {
		name  string
		steps []report.Step
		want  bool
	}{
		{"both on a slow box", []report.Step{step(0.85, true), step(0.87, true)}, true},
		{"one on a box at speed", []report.Step{step(0.85, true), step(0.97, true)}, false},
		{"both at speed", []report.Step{step(0.97, true), step(0.98, true)}, false},
		{"held on a slow box, missed at speed", []report.Step{step(0.85, true), step(0.97, false)}, false},
		{"missed on slow boxes only", []report.Step{step(0.80, false), step(0.87, false)}, true},
		{"missed at speed", []report.Step{step(0.97, false)}, false},
		{"not run", nil, false},
	} {
		// The best rate, held above.
		r := &report.Run{Repeats: 2, Steps: append([]report.Step{at(300_000, 1, true), at(300_000, 1, true)}, c.steps...)}
		if got := owedAtSpeed(r, report.FlowPath("ipfix"), "nfacctd", 200_000, nil); got != c.want {
			t.Errorf("%s: owedAtSpeed %v, want %v", c.name, got, c.want)
		}
	}
}
