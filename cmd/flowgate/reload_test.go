package main

import (
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/flowgate/flowgate/internal/apptest"
	"github.com/flowgate/flowgate/internal/intaketest"
	"github.com/flowgate/flowgate/internal/testtraffic"
)

const statsKey = "StatsTestIntakeKey0123456789ab"

// statsReports counts the stats reports among events: each report has one
// resource-usage event.
func statsReports(events []intaketest.Event) int {
	n := 0
	for _, e := range events {
		if e.Key == statsKey && strings.Contains(e.Event, `"resource-usage"`) {
			n++
		}
	}
	return n
}

// A reload that waits (here on a shipper whose batch the intake holds)
// holds up nobody else: the stats intake keeps reporting, /metrics and
// /status.json keep answering. The readers once took the lock a reload
// holds; a stats intake stopped by that reload while it gathered the
// metrics deadlocked the appliance.
func TestReadersDoNotWaitForAReload(t *testing.T) {
	t.Parallel()
	held, stable := intaketest.NewHTTPS(t), intaketest.NewHTTPS(t)
	release := make(chan struct{})
	arrived := make(chan struct{}, 1)
	held.RefuseEvents(func([]string) int {
		select {
		case arrived <- struct{}{}:
		default:
		}
		<-release
		return 0
	})
	released := false
	defer func() {
		if !released {
			close(release)
		}
	}()
	port := apptest.FreePort(t, "udp")
	stats := "  - name: Monitoring\n    stats: true\n    interval: 1s\n    intake_key: " + statsKey +
		"\n    output: {transport: https, endpoint: \"" + stable.URL + "\", ca_file: \"" + stable.CAFile + "\"}\n"
	tail := "shutdown:\n  grace: 60s\n  timeout: 90s\n"
	a := newApp(t, "intakes:\n"+netflowIntake("Routers", port, testKey, held)+stats+tail)
	testtraffic.NewV5Stream(t, port, 1).Send(100)
	select {
	case <-arrived:
	case <-time.After(30 * time.Second):
		t.Fatal("no batch reached the intake")
	}

	// Routers moves to the stable intake: the reload waits for the batch
	// the held intake has not answered.
	a.write(t, "intakes:\n"+netflowIntake("Routers", port, testKey, stable)+stats+tail)
	before := statsReports(stable.Events())
	a.proc.Signal(syscall.SIGHUP)
	if !apptest.Eventually(30*time.Second, func() bool { return statsReports(stable.Events()) >= before+3 }) {
		t.Fatalf("the stats intake stopped reporting during a reload: %d reports before, %d after", before, statsReports(stable.Events()))
	}
	for _, path := range []string{"/metrics", "/status.json"} {
		if status, body := a.proc.Get(path); status != 200 {
			t.Fatalf("%s during a reload: %d %s", path, status, body)
		}
	}
	close(release)
	released = true
	a.waitLog(t, "configuration reloaded", 60*time.Second)
	held.RefuseEvents(nil)
	if n := a.proc.Metric("flowgate_shipped_events_total", `intake="Routers"`); n != 100 {
		t.Logf("Routers shipped %v of 100 before it moved", n)
	}
}
