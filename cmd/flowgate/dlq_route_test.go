package main

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/flowgate/flowgate/internal/apptest"
	"github.com/flowgate/flowgate/internal/intaketest"
	"github.com/flowgate/flowgate/internal/testtraffic"
)

// A routed key's dead letters go back to the subject its shipper reads,
// which is named after the key, not after the shipper.
func TestDeadLettersOfARoutedKey(t *testing.T) {
	t.Parallel()
	intake := intaketest.NewHTTPS(t)
	poison := testtraffic.V5Source(100).String()
	accept := refuseFrom(intake, poison)
	port := apptest.FreePort(t, "udp")
	a := newApp(t, fmt.Sprintf("intakes:\n  - name: Routers\n    protocol: netflow\n    port: %d\n    intake_key: %s\n    output: %s\n    routes:\n      - {name: lab, match: {source: %s}, intake_key: %s}\n",
		port, testKey, intake.Output(), poison, "LabIntakeKey0123456789abcdefghij"))
	stream := testtraffic.NewV5Stream(t, port, 1)
	stream.Send(1000)
	intake.WaitEvents(t, 999, 30*time.Second)
	if !apptest.Eventually(30*time.Second, func() bool {
		return a.proc.Metric("flowgate_dead_letters_total", `intake="Routers/lab"`, `status="422"`) == 1
	}) {
		t.Fatalf("flowgate_dead_letters_total = %v, want 1 for Routers/lab", a.proc.Metric("flowgate_dead_letters_total"))
	}
	accept()
	code, out, errOut := runCLI("dlq", "resend", "--config", a.path, "--intake", "Routers/lab")
	if code != 0 || !strings.Contains(out, `intake "Routers/lab": dead letters sent again: 1`) {
		t.Fatalf("dlq resend: exit %d: %s%s", code, out, errOut)
	}
	if dups := stream.Check(t, intake.WaitEvents(t, 1000, 30*time.Second)); dups != 0 {
		t.Fatalf("%d duplicates", dups)
	}
}
