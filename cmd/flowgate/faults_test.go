package main

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flowgate/flowgate/internal/apptest"
	"github.com/flowgate/flowgate/internal/intaketest"
	"github.com/flowgate/flowgate/internal/testtraffic"
)

const testKey = "E2eTestIntakeKey0123456789abcdef"

// The tests of the process: killed under load, or bounded in memory by
// its environment. (The other fault tests run the appliance in-process:
// appliance/faults_test.go.)

// app is a flowgate run on a configuration of its own.
type app struct {
	dir, path, httpAddr string
	proc                *apptest.Proc
}

// newApp writes intakes.yaml with body (intakes, outputs), the data
// directory and the monitoring listener, and starts flowgate on it.
func newApp(t *testing.T, body string, env ...string) *app {
	t.Helper()
	a := &app{dir: t.TempDir(), httpAddr: fmt.Sprintf("127.0.0.1:%d", apptest.FreePort(t, "tcp"))}
	a.path = filepath.Join(a.dir, "intakes.yaml")
	a.write(t, body)
	a.proc = apptest.Start(t, a.path, a.httpAddr, env...)
	return a
}

// write replaces the configuration file, keeping the data directory and
// the listener.
func (a *app) write(t *testing.T, body string) {
	t.Helper()
	a.path = apptest.WriteConfig(t, a.dir, body, a.httpAddr)
}

// restart starts flowgate again on the same configuration and store.
func (a *app) restart(t *testing.T, env ...string) {
	t.Helper()
	a.proc = apptest.Start(t, a.path, a.httpAddr, env...)
}

// waitLog waits until flowgate's log has a line containing text.
func (a *app) waitLog(t *testing.T, text string, timeout time.Duration) {
	t.Helper()
	if !apptest.Eventually(timeout, func() bool { return strings.Contains(a.proc.Stderr.String(), text) }) {
		t.Fatalf("no %q in flowgate's log after %s", text, timeout)
	}
}

// netflowIntake is an intake list item for a netflow intake shipping to in.
func netflowIntake(name string, port int, key string, in *intaketest.HTTPS) string {
	return fmt.Sprintf("  - name: %s\n    protocol: netflow\n    port: %d\n    intake_key: %s\n    output: %s\n", name, port, key, in.Output())
}

// kill -9 under load, and a restart on the same store: every record the
// appliance counted as buffered before the kill arrives; the duplicates
// are the batches in flight at the kill, and nothing else.
func TestKillUnderLoadLosesNothingAccepted(t *testing.T) {
	t.Parallel()
	intake := intaketest.NewHTTPS(t)
	// Slow answers keep batches in flight when the kill comes.
	intake.Delay(time.Second)
	port := apptest.FreePort(t, "udp")
	a := newApp(t, "intakes:\n"+netflowIntake("Routers", port, testKey, intake))
	stream := testtraffic.NewV5Stream(t, port, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := stream.Run(ctx, 30) // 3000 records a second

	intake.WaitEvents(t, 20000, 60*time.Second)
	buffered := a.proc.Metric("flowgate_buffered_events_total")
	a.proc.Kill()
	cancel()
	<-done
	killedAt := stream.Sent()
	// The intake finishes the requests the dead process had sent: their
	// events count as accepted, though flowgate never heard so.
	if !apptest.Eventually(20*time.Second, func() bool { return intake.Quiet(2 * time.Second) }) {
		t.Fatal("the intake is still answering requests of a dead process")
	}
	reqs := intake.Requests()
	beforeKill := len(intake.Events())
	t.Logf("killed with %v records buffered, %d sent, %d accepted by the intake", buffered, killedAt, beforeKill)

	a.restart(t)
	// After the restart, a stream that must arrive whole.
	const after = 3000
	stream.Send(after)
	total := killedAt + after
	if !apptest.Eventually(60*time.Second, func() bool {
		seen := testtraffic.IDsOf(t, intake.Events())
		for id := uint32(killedAt + 1); id <= uint32(total); id++ {
			if seen[id] == 0 {
				return false
			}
		}
		arrived := 0
		for id := uint32(1); id <= uint32(killedAt); id++ {
			if seen[id] > 0 {
				arrived++
			}
		}
		return float64(arrived) >= buffered
	}) {
		seen := testtraffic.IDsOf(t, intake.Events())
		testtraffic.CheckIDs(t, seen, uint32(killedAt+1), uint32(total)+1)
		arrived := 0
		for id := uint32(1); id <= uint32(killedAt); id++ {
			if seen[id] > 0 {
				arrived++
			}
		}
		t.Fatalf("%d records sent before the kill arrived, %v were buffered", arrived, buffered)
	}
	// Shipped after the restart: what it buffered, and what the store kept.
	if !apptest.Eventually(20*time.Second, func() bool {
		return a.proc.Metric("flowgate_shipped_events_total") >= a.proc.Metric("flowgate_buffered_events_total")
	}) {
		t.Fatal("the appliance did not ship everything it buffered after the restart")
	}
	events := intake.Events()
	seen := testtraffic.IDsOf(t, events)
	dups := testtraffic.CheckIDs(t, seen, uint32(killedAt+1), uint32(total)+1)
	if dups != 0 {
		t.Errorf("%d duplicates among the records sent after the restart", dups)
	}
	// Duplicates come from the batches in flight at the kill: the last
	// requests accepted before it, at most InFlight of them plus the one
	// being acknowledged.
	tail := 0
	for i := len(reqs) - 1; i >= 0 && i >= len(reqs)-5; i-- {
		if reqs[i].Status == 200 {
			tail += reqs[i].Events
		}
	}
	inTail := map[uint32]bool{}
	for id := range testtraffic.IDsOf(t, events[max(beforeKill-tail, 0):beforeKill]) {
		inTail[id] = true
	}
	before, stray := 0, 0
	for id := uint32(1); id <= uint32(killedAt); id++ {
		if n := seen[id]; n > 1 {
			before += n - 1
			if !inTail[id] {
				if stray++; stray <= 10 {
					t.Errorf("record %d arrived %d times, and was not in a batch in flight at the kill", id, n)
				}
			}
		}
	}
	t.Logf("%d duplicates, from the %d events of the last requests before the kill", before, tail)
}

// MEMORY_MESSAGES sets the Go runtime's memory limit, unless GOMEMLIMIT
// is set; the collector's target is gcPercent or, while the live heap is
// small, up to maxGCPercent, unless GOGC is set.
func TestMemoryMessagesSetsTheMemoryLimit(t *testing.T) {
	t.Parallel()
	intake := intaketest.NewHTTPS(t)
	body := "intakes:\n" + netflowIntake("Routers", apptest.FreePort(t, "udp"), testKey, intake)
	a := newApp(t, body, "MEMORY_MESSAGES=100000")
	if got, want := a.proc.Metric("go_gc_gomemlimit_bytes"), float64(memoryBaseBytes+100000*memoryPerEventBytes); got != want {
		t.Errorf("memory limit %v with MEMORY_MESSAGES=100000, want %v", got, want)
	}
	if got := a.proc.Metric("go_gc_gogc_percent"); got < gcPercent || got > maxGCPercent {
		t.Errorf("GOGC %v, want %d-%d", got, gcPercent, maxGCPercent)
	}
	if err := a.proc.Stop(30 * time.Second); err != nil {
		t.Fatal(err)
	}
	a.restart(t, "MEMORY_MESSAGES=100000", "GOMEMLIMIT=300MiB", "GOGC=80")
	if got := a.proc.Metric("go_gc_gomemlimit_bytes"); got != 300<<20 {
		t.Errorf("memory limit %v with GOMEMLIMIT=300MiB", got)
	}
	if got := a.proc.Metric("go_gc_gogc_percent"); got != 80 {
		t.Errorf("GOGC %v with GOGC=80", got)
	}
	a.waitLog(t, `msg="memory limit from GOMEMLIMIT" limit=300MiB`, time.Second)
}
