package appliance_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/flowgate/flowgate/appliance/appliancetest"
	"github.com/flowgate/flowgate/internal/apptest"
	"github.com/flowgate/flowgate/internal/intaketest"
	"github.com/flowgate/flowgate/internal/testtraffic"
)

// app is the appliance run in-process on a configuration file of its own.
type app struct {
	*appliancetest.App
	dir string
}

// newApp writes intakes.yaml with body (intakes, outputs), a data
// directory and a listener on a port the system picks, and runs the
// appliance on it.
func newApp(t *testing.T, body string, env ...string) *app {
	t.Helper()
	a := &app{dir: t.TempDir()}
	a.App = appliancetest.Start(t, apptest.WriteConfig(t, a.dir, body, "127.0.0.1:0"), env...)
	return a
}

// write replaces the configuration file, keeping the data directory.
func (a *app) write(t *testing.T, body string) {
	t.Helper()
	apptest.WriteConfig(t, a.dir, body, "127.0.0.1:0")
}

// netflowIntake is an intake list item for a netflow intake shipping to in.
func netflowIntake(name string, port int, key string, in *intaketest.HTTPS) string {
	return fmt.Sprintf("  - name: %s\n    protocol: netflow\n    port: %d\n    intake_key: %s\n    output: %s\n", name, port, key, in.Output())
}

// A reload (what SIGHUP does) reads intakes.yaml again: a refused file, or one with an intake
// that cannot start, changes nothing; a good one restarts the intakes that
// changed, stops those that vanished (their records stay in the buffer),
// starts the new ones, and leaves the others running without a gap.
func TestReloadKeepsTheBuffer(t *testing.T) {
	t.Parallel()
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
		return a.Metric("flowgate_buffered_events_total", `intake="B"`) == 3000 && a.Metric("flowgate_buffered_events_total", `intake="D"`) == 1000
	}) {
		t.Fatal("B and D did not buffer their records")
	}
	hup := func(body, want string) {
		t.Helper()
		a.write(t, body)
		err := a.Reload()
		if want == "" && err != nil || want != "" && (err == nil || !strings.Contains(err.Error(), want)) {
			t.Fatalf("reload: %v, want %q", err, want)
		}
	}

	// A file flowgate refuses.
	hup(v1+"colour: red\n", "colour")
	// A file with an intake that cannot bind its port: nothing changes,
	// B keeps shipping to the refusing intake.
	busy, err := net.ListenUDP("udp", &net.UDPAddr{Port: apptest.FreePort(t, "udp")})
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	bad := "intakes:\n" + netflowIntake("A", pa, testKey, accepting) + netflowIntake("B", pb, testKey, other) +
		netflowIntake("D", pd, testKey, refusing) + netflowIntake("E", busy.LocalAddr().(*net.UDPAddr).Port, testKey, accepting)
	hup(bad, "configuration not reloaded")
	refused := refusing.Refused()
	if !apptest.Eventually(60*time.Second, func() bool { return refusing.Refused() > refused }) {
		t.Fatal("B stopped sending to its intake after a refused reload")
	}
	if n := len(other.Events()); n != 0 {
		t.Fatalf("a refused reload sent %d events to the new output", n)
	}

	// A good file: A unchanged, B to another intake, D gone, C new.
	v2 := "intakes:\n" + netflowIntake("A", pa, testKey, accepting) + netflowIntake("B", pb, testKey, other) + netflowIntake("C", pc, testKey, accepting)
	hup(v2, "")
	if !strings.Contains(a.Stderr.String(), `msg="intake removed: its records stay in the buffer, and ship if it comes back" intake=D`) {
		t.Fatalf("the log does not say D's records stay")
	}
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
	if status, body := a.Get("/readyz"); status != 200 || strings.Contains(body, "intake D") {
		t.Errorf("/readyz %d %q", status, body)
	}
	// D comes back: its records were kept.
	hup(v2+netflowIntake("D", pd, testKey, other), "")
	if dups := streamD.Check(t, other.WaitEvents(t, 4000, 30*time.Second)); dups != 0 {
		t.Errorf("D: %d duplicates", dups)
	}
}

// TestMain runs up to 8 tests at once: most wait on peers (pmacctd's
// replays, a 30-second outage, a NATS election) far more than they use
// the CPU.
func TestMain(m *testing.M) { os.Exit(apptest.RunParallel(m, 8)) }
