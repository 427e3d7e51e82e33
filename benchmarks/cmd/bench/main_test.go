package main

import (
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
