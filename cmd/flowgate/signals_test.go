package main

import (
	"context"
	"net"
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

// SIGHUP reads intakes.yaml again: a refused file, or one with an intake
// that cannot start, changes nothing; a good one restarts the intakes that
// changed, stops those that vanished (their records stay in the buffer),
// starts the new ones, and leaves the others running without a gap.
func TestSIGHUPReloadsWithoutDroppingTheBuffer(t *testing.T) {
	accepting, refusing, other := intaketest.NewHTTPS(t), intaketest.NewHTTPS(t), intaketest.NewHTTPS(t)
	refusing.Refuse(func(int) (int, string) { return 503, "" })
	pa, pb, pc, pd := apptest.FreePort(t, "udp"), apptest.FreePort(t, "udp"), apptest.FreePort(t, "udp"), apptest.FreePort(t, "udp")
	v1 := "intakes:\n" + netflowIntake("A", pa, testKey, accepting) + netflowIntake("B", pb, testKey, refusing) + netflowIntake("D", pd, testKey, refusing)
	a := newApp(t, v1)

	// A streams all along; B and D hold records the intake refuses.
	streamA := testtraffic.NewV5Stream(t, pa, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := streamA.Run(ctx, 5)
	defer func() { cancel(); <-done }()
	streamB, streamD := testtraffic.NewV5Stream(t, pb, 2_000_000), testtraffic.NewV5Stream(t, pd, 3_000_000)
	streamB.Send(3000)
	streamD.Send(1000)
	if !apptest.Eventually(10*time.Second, func() bool {
		return a.proc.Metric("flowgate_buffered_events_total", `intake="B"`) == 3000 && a.proc.Metric("flowgate_buffered_events_total", `intake="D"`) == 1000
	}) {
		t.Fatal("B and D did not buffer their records")
	}
	hup := func(body, want string) {
		t.Helper()
		a.write(t, body)
		before := strings.Count(a.proc.Stderr.String(), want)
		a.proc.Signal(syscall.SIGHUP)
		if !apptest.Eventually(30*time.Second, func() bool { return strings.Count(a.proc.Stderr.String(), want) > before }) {
			t.Fatalf("no %q in the log after SIGHUP:\n%s", want, a.proc.Stderr.String())
		}
	}

	// A file flowgate refuses.
	hup(v1+"colour: red\n", "configuration not reloaded: the file is refused")
	// A file with an intake that cannot bind its port: nothing changes,
	// B keeps shipping to the refusing intake.
	busy, err := net.ListenUDP("udp", &net.UDPAddr{Port: apptest.FreePort(t, "udp")})
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	bad := "intakes:\n" + netflowIntake("A", pa, testKey, accepting) + netflowIntake("B", pb, testKey, other) +
		netflowIntake("D", pd, testKey, refusing) + netflowIntake("E", busy.LocalAddr().(*net.UDPAddr).Port, testKey, accepting)
	hup(bad, "configuration not reloaded: an intake cannot start")
	refused := refusing.Refused()
	if !apptest.Eventually(60*time.Second, func() bool { return refusing.Refused() > refused }) {
		t.Fatal("B stopped sending to its intake after a refused reload")
	}
	if n := len(other.Events()); n != 0 {
		t.Fatalf("a refused reload sent %d events to the new output", n)
	}

	// A good file: A unchanged, B to another intake, D gone, C new.
	v2 := "intakes:\n" + netflowIntake("A", pa, testKey, accepting) + netflowIntake("B", pb, testKey, other) + netflowIntake("C", pc, testKey, accepting)
	hup(v2, "configuration reloaded")
	a.waitLog(t, `msg="intake removed: its records stay in the buffer, and ship if it comes back" intake=D`, 10*time.Second)
	if dups := streamB.Check(t, other.WaitEvents(t, 3000, 60*time.Second)); dups != 0 {
		t.Errorf("B: %d duplicates", dups)
	}
	streamC := testtraffic.NewV5Stream(t, pc, 1_000_000)
	streamC.Send(1000)
	cancel()
	<-done
	events := accepting.WaitEvents(t, streamA.Sent()+1000, 30*time.Second)
	if dups := streamA.Check(t, events); dups != 0 {
		t.Errorf("A: %d duplicates", dups)
	}
	if dups := streamC.Check(t, events); dups != 0 {
		t.Errorf("C: %d duplicates", dups)
	}
	if status, body := a.proc.Get("/readyz"); status != 200 || strings.Contains(body, "intake D") {
		t.Errorf("/readyz %d %q", status, body)
	}
	// D comes back: its records were kept.
	hup(v2+netflowIntake("D", pd, testKey, other), "configuration reloaded")
	if dups := streamD.Check(t, other.WaitEvents(t, 4000, 30*time.Second)); dups != 0 {
		t.Errorf("D: %d duplicates", dups)
	}
}
