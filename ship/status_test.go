package ship

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestStatusReadiness(t *testing.T) {
	s := NewStatus()
	if err := s.Ready(0, 0); err != nil {
		t.Fatalf("nothing waits: %v", err)
	}
	// Data waits and nothing was accepted: stalled past stallAfter only.
	s.begin()
	s.failed(errors.New("status 503: try later"))
	if err := s.Ready(12, time.Hour); err != nil {
		t.Fatalf("within stall_after: %v", err)
	}
	err := s.Ready(12, 0)
	if err == nil || !strings.Contains(err.Error(), "stalled: no batch accepted for") ||
		!strings.Contains(err.Error(), "12 buffer messages and 1 batches wait; last error: status 503: try later") {
		t.Fatalf("stalled: %v", err)
	}
	// An accepted batch is progress.
	s.end(true)
	if err := s.Ready(12, time.Hour); err != nil {
		t.Fatalf("after an accepted batch: %v", err)
	}
	if snap := s.Snapshot(); snap.InFlight != 0 || snap.LastAccepted.IsZero() || len(snap.Errors) != 1 {
		t.Fatalf("snapshot: %+v", snap)
	}
	s.Pause("intake key refused (401)")
	if err := s.Ready(0, time.Hour); err == nil || !strings.HasPrefix(err.Error(), "paused: intake key refused (401)") {
		t.Fatalf("paused: %v", err)
	}
	s.Resume()
	if err := s.Ready(0, time.Hour); err != nil {
		t.Fatalf("resumed: %v", err)
	}
	for range 2 * maxRecentErrors {
		s.failed(errors.New("again"))
	}
	if n := len(s.Snapshot().Errors); n != maxRecentErrors {
		t.Fatalf("%d recent errors kept", n)
	}
}
