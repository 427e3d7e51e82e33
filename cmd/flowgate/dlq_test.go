package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/flowgate/flowgate/buffer"
	"github.com/flowgate/flowgate/config"
	"github.com/flowgate/flowgate/internal/apptest"
	"github.com/flowgate/flowgate/internal/intaketest"
	"github.com/flowgate/flowgate/internal/testtraffic"
	"github.com/flowgate/flowgate/ship"
)

// deadLetterLines reads `flowgate dlq list` output.
func deadLetterLines(t *testing.T, out string) []deadLetterLine {
	t.Helper()
	var lines []deadLetterLine
	dec := json.NewDecoder(strings.NewReader(out))
	for {
		var l deadLetterLine
		if err := dec.Decode(&l); err == io.EOF {
			return lines
		} else if err != nil {
			t.Fatalf("dlq list printed %q: %v", out, err)
		}
		lines = append(lines, l)
	}
}

// Events the intake refuses alone become dead letters; `flowgate dlq`
// lists them and sends them again, through the running appliance and on
// the store of a stopped one.
func TestDeadLettersAreListedAndSentAgain(t *testing.T) {
	// It waits on peers most of its time: it runs beside others.
	t.Parallel()
	intake := intaketest.NewHTTPS(t)
	poison := map[string]bool{testtraffic.V5Source(100).String(): true, testtraffic.V5Source(700).String(): true}
	var mu sync.Mutex
	refuse := true
	intake.RefuseEvents(func(events []string) int {
		mu.Lock()
		defer mu.Unlock()
		for _, e := range events {
			var f struct {
				Src string `json:"sourceIPv4Address"`
			}
			_ = json.Unmarshal([]byte(e), &f)
			if refuse && poison[f.Src] {
				return 422
			}
		}
		return 0
	})
	port := apptest.FreePort(t, "udp")
	a := newApp(t, "intakes:\n"+netflowIntake("Routers", port, testKey, intake))
	stream := testtraffic.NewV5Stream(t, port, 1)
	stream.Send(1000)
	intake.WaitEvents(t, 998, 30*time.Second)
	if !apptest.Eventually(10*time.Second, func() bool {
		return a.proc.Metric("flowgate_dead_letters_total", `intake="Routers"`, `status="422"`) == 2
	}) {
		t.Fatalf("flowgate_dead_letters_total = %v, want 2", a.proc.Metric("flowgate_dead_letters_total"))
	}

	// Listed by the running appliance.
	code, out, errOut := runCLI("dlq", "list", "--config", a.path)
	if code != 0 {
		t.Fatalf("dlq list: exit %d: %s", code, errOut)
	}
	lines := deadLetterLines(t, out)
	if len(lines) != 2 {
		t.Fatalf("dlq list printed %d dead letters, want 2:\n%s", len(lines), out)
	}
	for _, l := range lines {
		var f struct {
			Src string `json:"sourceIPv4Address"`
		}
		if err := json.Unmarshal([]byte(l.Event), &f); err != nil || !poison[f.Src] || l.Status != 422 || l.Intake != "Routers" || l.Reason == "" {
			t.Errorf("dead letter %+v", l)
		}
	}
	if code, _, errOut := runCLI("dlq", "resend", "--config", a.path, "--intake", "Nope"); code != 1 || !strings.Contains(errOut, `no intake named "Nope"`) {
		t.Fatalf("dlq resend of an unknown intake: exit %d: %s", code, errOut)
	}

	// The appliance stopped, the command works on its store.
	a.proc.Signal(syscall.SIGTERM)
	if err := a.proc.Wait(30 * time.Second); err != nil {
		t.Fatal(err)
	}
	code, out, errOut = runCLI("dlq", "resend", "--config", a.path)
	if code != 0 || !strings.Contains(out, `intake "Routers": dead letters sent again: 2`) {
		t.Fatalf("dlq resend: exit %d: %s%s", code, out, errOut)
	}
	if code, out, _ := runCLI("dlq", "list", "--config", a.path); code != 0 || out != "" {
		t.Fatalf("dlq list after resend: exit %d: %q", code, out)
	}
	mu.Lock()
	refuse = false
	mu.Unlock()
	a.restart(t)
	if dups := stream.Check(t, intake.WaitEvents(t, 1000, 30*time.Second)); dups != 0 {
		t.Fatalf("%d duplicates", dups)
	}

	// Through the running appliance too.
	mu.Lock()
	refuse = true
	mu.Unlock()
	stream.Send(1000) // ids 1001 to 2000: none poisoned
	poison[testtraffic.V5Source(1500).String()] = true
	intake.WaitEvents(t, 1999, 30*time.Second)
	mu.Lock()
	refuse = false
	mu.Unlock()
	code, out, errOut = runCLI("dlq", "resend", "--config", a.path, "--intake", "Routers")
	if code != 0 || !strings.Contains(out, `intake "Routers": dead letters sent again: 1`) {
		t.Fatalf("dlq resend through the appliance: exit %d: %s%s", code, out, errOut)
	}
	if dups := stream.Check(t, intake.WaitEvents(t, 2000, 30*time.Second)); dups != 0 {
		t.Fatalf("%d duplicates", dups)
	}
}

// Listing masks the intake key wherever an event carries it (syslog lines
// do, in their structured data).
func TestDeadLetterListingMasksTheKey(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	buf, err := buffer.Open(ctx, buffer.Config{Dir: filepath.Join(t.TempDir(), "data"), MaxBytes: 128 << 20}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	defer buf.Close()
	event := `<14>1 2026-11-23T10:00:00Z host app - LOG [SEKOIA@53288 intake_key="` + cliKey + `"] refused`
	if err := buf.PutDeadLetter(ctx, buffer.DeadLetter{Intake: "Firewall", Status: 400, Reason: "bad", Time: time.Now(), Event: []byte(event)}); err != nil {
		t.Fatal(err)
	}
	c := &config.Config{Source: "test", Intakes: []config.Intake{{Name: "Firewall", IntakeKey: cliKey}}}
	var out bytes.Buffer
	if err := listDeadLetters(ctx, buf, c, "", &out); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out.String(), cliKey) || !strings.Contains(out.String(), config.MaskKey(cliKey)) {
		t.Fatalf("listing: %s", out.String())
	}
}

// `dlq resend` says how far it is every --progress dead letters, then the
// total; `dlq list` and `dlq resend` of an intake the file does not have
// are refused, naming those it has.
func TestDeadLetterResendShowsProgress(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "data")
	ctx := context.Background()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	buf, err := buffer.Open(ctx, buffer.Config{Dir: dir, MaxBytes: 1 << 30}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 25 {
		if err := buf.PutDeadLetter(ctx, buffer.DeadLetter{Intake: "Firewall", Status: 400, Reason: "bad", Time: time.Now(), Event: []byte(fmt.Sprintf("event %d", i))}); err != nil {
			t.Fatal(err)
		}
	}
	buf.Close()
	path := writeConfig(t, fmt.Sprintf(`intakes:
  - {name: Firewall, protocol: tcp, port: %d, intake_key: %s}
  - {name: Routers, protocol: netflow, port: %d, intake_key: %s}
output: {transport: file, path: "-"}
buffer: {dir: %s, disk_space: 1g}
`, apptest.FreePort(t, "tcp"), cliKey, apptest.FreePort(t, "udp"), cliKey, dir))

	for _, sub := range []string{"list", "resend"} {
		code, out, errOut := runBinary(t, "dlq", sub, "--config", path, "--intake", "Nope")
		if want := fmt.Sprintf("flowgate: %s has no intake named \"Nope\"; its intakes: \"Firewall\", \"Routers\"\n", path); code != 1 || out != "" || errOut != want {
			t.Errorf("dlq %s --intake Nope: exit %d, stdout %q, stderr %q; want 1 and %q", sub, code, out, errOut, want)
		}
	}

	code, out, errOut := runBinary(t, "dlq", "resend", "--config", path, "--progress", "10")
	want := regexp.MustCompile(`^intake "Firewall": sending 25 dead letters again
intake "Firewall": 10 of 25 sent again, \d+/s
intake "Firewall": 20 of 25 sent again, \d+/s
intake "Firewall": dead letters sent again: 25
dead letters sent again: 25 in total, in \d+(\.\d+)?m?s
$`)
	if code != 0 || !want.MatchString(out) {
		t.Fatalf("dlq resend: exit %d, stdout:\n%s\nstderr: %s", code, out, errOut)
	}
	if code, out, errOut := runBinary(t, "dlq", "list", "--config", path); code != 0 || out != "" {
		t.Fatalf("dlq list after the resend: exit %d: %q %s", code, out, errOut)
	}
	// The events are back on the intake's stream, to be shipped.
	buf, err = buffer.Open(ctx, buffer.Config{Dir: dir, MaxBytes: 1 << 30}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	defer buf.Close()
	if n, err := buf.DeadLetterCount(ctx, ""); err != nil || n != 0 {
		t.Fatalf("dead letters left: %d, %v", n, err)
	}
	if n, err := buf.Depth(ctx, buffer.Subject("Firewall")); err != nil || n != 25 {
		t.Fatalf("messages waiting for Firewall: %d, %v; want 25", n, err)
	}
}

// The dead letters of an output of an intake's outputs: go by its name
// (Routers#sekoia): listed with the key masked, sent again to that output
// alone, through the running appliance.
func TestDeadLettersOfAnOutput(t *testing.T) {
	t.Parallel()
	intake := intaketest.NewHTTPS(t)
	poison := testtraffic.V5Source(100).String()
	accept := refuseFrom(intake, poison)
	port := apptest.FreePort(t, "udp")
	archive := filepath.Join(t.TempDir(), "archive.jsonl")
	a := newApp(t, fmt.Sprintf("intakes:\n  - name: Routers\n    protocol: netflow\n    port: %d\n    intake_key: %s\n    outputs:\n      - {transport: file, path: %q}\n      - %s\n",
		port, testKey, archive, strings.Replace(intake.Output(), "{", "{name: sekoia, ", 1)))
	stream := testtraffic.NewV5Stream(t, port, 1)
	stream.Send(1000)
	intake.WaitEvents(t, 999, 30*time.Second)
	if !apptest.Eventually(30*time.Second, func() bool {
		return a.proc.Metric("flowgate_dead_letters_total", `intake="Routers#sekoia"`, `status="422"`) == 1
	}) {
		t.Fatalf("flowgate_dead_letters_total = %v, want 1 for Routers#sekoia", a.proc.Metric("flowgate_dead_letters_total"))
	}
	code, out, errOut := runCLI("dlq", "list", "--config", a.path, "--intake", "Routers#sekoia")
	if lines := deadLetterLines(t, out); code != 0 || len(lines) != 1 || lines[0].Intake != "Routers#sekoia" || lines[0].Status != 422 {
		t.Fatalf("dlq list: exit %d: %s%s", code, out, errOut)
	}
	if strings.Contains(out, testKey) {
		t.Error("dlq list shows the key in full")
	}
	accept()
	code, out, errOut = runCLI("dlq", "resend", "--config", a.path)
	if code != 0 || !strings.Contains(out, `intake "Routers#sekoia": dead letters sent again: 1`) || strings.Contains(out, `intake "Routers":`) {
		t.Fatalf("dlq resend: exit %d: %s%s", code, out, errOut)
	}
	if dups := stream.Check(t, intake.WaitEvents(t, 1000, 30*time.Second)); dups != 0 {
		t.Fatalf("%d duplicates", dups)
	}
	// The file output got every record once, and not the one sent again.
	if !apptest.Eventually(30*time.Second, func() bool { return a.proc.Metric(ship.MetricShippedEventsTotal, `intake="Routers"`) == 1000 }) {
		t.Fatalf("the file output shipped %v events, want 1000", a.proc.Metric(ship.MetricShippedEventsTotal, `intake="Routers"`))
	}
}

// refuseFrom has intake answer 422 to a batch holding a flow from source
// until the returned accept is called.
func refuseFrom(intake *intaketest.HTTPS, source string) (accept func()) {
	var refuse atomic.Bool
	refuse.Store(true)
	intake.RefuseEvents(func(events []string) int {
		for _, e := range events {
			if refuse.Load() && strings.Contains(e, `"sourceIPv4Address":"`+source+`"`) {
				return 422
			}
		}
		return 0
	})
	return func() { refuse.Store(false) }
}
