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

// SIGTERM while batches are in flight to a slow intake: they are shipped
// and acknowledged before the process exits (had they been abandoned, the
// next start would send them again), and what the decoders held went to
// the buffer, for the next start.
func TestSIGTERMShipsWhatIsInFlight(t *testing.T) {
	t.Parallel()
	intake := intaketest.NewHTTPS(t)
	arrived := make(chan struct{}, 1000)
	intake.RefuseEvents(func([]string) int {
		arrived <- struct{}{}
		return 0
	})
	intake.Delay(2 * time.Second)
	port := apptest.FreePort(t, "udp")
	a := newApp(t, "intakes:\n"+netflowIntake("Routers", port, testKey, intake))
	stream := testtraffic.NewV5Stream(t, port, 1)
	for range 10 {
		stream.Send(300)
		time.Sleep(100 * time.Millisecond)
	}
	if !apptest.Eventually(10*time.Second, func() bool {
		return a.proc.Metric("flowgate_buffered_events_total") == float64(stream.Sent())
	}) {
		t.Fatalf("%v of %d records buffered", a.proc.Metric("flowgate_buffered_events_total"), stream.Sent())
	}
	<-arrived // a batch is on its way
	stream.Send(300)
	a.proc.Signal(syscall.SIGTERM)
	if err := a.proc.Wait(30 * time.Second); err != nil {
		t.Fatalf("flowgate exited with %v", err)
	}
	a.waitLog(t, `msg="left in the buffer for the next start"`, time.Second)
	intake.RefuseEvents(nil)
	intake.Delay(0)
	a.restart(t)
	if dups := stream.Check(t, intake.WaitEvents(t, stream.Sent(), 30*time.Second)); dups != 0 {
		t.Fatalf("%d duplicates: batches in flight at the stop were sent again", dups)
	}
}

// A stop while the intake refuses everything is bounded by
// shutdown.grace: the process exits, says what it leaves, and the next
// start ships it.
func TestSIGTERMIsBoundedAndLeavesTheRestForTheNextStart(t *testing.T) {
	t.Parallel()
	intake := intaketest.NewHTTPS(t)
	intake.Refuse(func(int) (int, string) { return 503, "" })
	port := apptest.FreePort(t, "udp")
	body := "intakes:\n" + netflowIntake("Routers", port, testKey, intake) + "shutdown:\n  grace: 1s\n  timeout: 5s\n"
	a := newApp(t, body)
	stream := testtraffic.NewV5Stream(t, port, 1)
	stream.Send(3000)
	if !apptest.Eventually(10*time.Second, func() bool {
		return a.proc.Metric("flowgate_ship_failures_total") > 0 && a.proc.Metric("flowgate_buffered_events_total") == 3000
	}) {
		t.Fatalf("records not buffered, or not refused")
	}
	start := time.Now()
	a.proc.Signal(syscall.SIGTERM)
	if err := a.proc.Wait(10 * time.Second); err != nil {
		t.Fatalf("flowgate exited with %v", err)
	}
	t.Logf("stopped in %s", time.Since(start).Round(time.Millisecond))
	log := a.proc.Stderr.String()
	if !strings.Contains(log, "stopped before the intake accepted everything in flight") ||
		!strings.Contains(log, `msg="left in the buffer for the next start"`) || strings.Contains(log, "left in the buffer for the next start\" messages=0 ") {
		t.Fatalf("the log does not say what was left:\n%s", log)
	}
	intake.Refuse(nil)
	a.restart(t)
	if dups := stream.Check(t, intake.WaitEvents(t, 3000, 30*time.Second)); dups != 0 {
		t.Fatalf("%d duplicates", dups)
	}
}
