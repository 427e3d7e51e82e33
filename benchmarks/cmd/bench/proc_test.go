package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"testing"
	"time"
)

// An interrupted benchmark stops the generator of the step it is in
// rather than waiting out the step.
func TestWaitEndsTheProgramWhenTheBenchmarkIsInterrupted(t *testing.T) {
	p, err := start("sleep", t.TempDir(), nil, nil, "sleep", "600")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err = p.wait(ctx, 10*time.Minute)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("wait: %v, want context.Canceled", err)
	}
	if !p.exited() {
		t.Fatal("sleep still runs")
	}
}

func TestWaitTellsHowTheProgramEnded(t *testing.T) {
	p, err := start("sh", t.TempDir(), nil, nil, "sh", "-c", "echo gone wrong >&2; exit 3")
	if err != nil {
		t.Fatal(err)
	}
	err = p.wait(context.Background(), time.Minute)
	if err == nil || !p.exited() {
		t.Fatalf("wait: %v", err)
	}
	if got := err.Error(); got != "sh: exit status 3: gone wrong" {
		t.Fatalf("wait: %q", got)
	}
}

func TestStaleGroupIsAStepOfABenchmarkThatIsGone(t *testing.T) {
	gone, err := start("true", t.TempDir(), nil, nil, "true")
	if err != nil {
		t.Fatal(err)
	}
	if err := gone.wait(context.Background(), time.Minute); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]bool{
		fmt.Sprintf("flowgate-bench-%d-step-007", gone.pid()):      true,
		fmt.Sprintf("flowgate-bench-%d-step-007", os.Getpid()):     false, // this benchmark's
		fmt.Sprintf("flowgate-bench-%d-step-007", os.Getppid()):    false, // a process that runs
		fmt.Sprintf("flowgate-bench-%d", gone.pid()):               false, // not a step's
		fmt.Sprintf("cpugroup-test-stale-%d-step-007", gone.pid()): false,
	} {
		if got := staleGroup(name); got != want {
			t.Errorf("staleGroup(%s) = %t, want %t", name, got, want)
		}
	}
}
