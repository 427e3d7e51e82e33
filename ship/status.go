package ship

import (
	"fmt"
	"sync"
	"time"
)

// maxRecentErrors is how many of a shipper's last errors it keeps for the
// status page.
const maxRecentErrors = 8

// Status is what a shipper tells the monitoring about itself: when it last
// made progress, what it has in flight, whether it is paused and why, and
// its last errors. The shipper updates it; readiness and the status page
// read it. Every method is safe for concurrent use.
type Status struct {
	mu sync.Mutex
	// inFlight counts batches being sent (retries included).
	inFlight int
	// progress is when the shipper last made progress: a batch accepted,
	// or work begun after a time with nothing in flight. A stall is
	// measured from it.
	progress time.Time
	// accepted is when a batch was last accepted (zero: never).
	accepted time.Time
	// paused says why the shipper does not send; empty when it does.
	paused string
	errors []RecentError
}

// RecentError is one failure, for people reading the status page.
type RecentError struct {
	At    time.Time `json:"at"`
	Error string    `json:"error"`
}

// StatusSnapshot is a copy of a Status at one moment.
type StatusSnapshot struct {
	InFlight     int           `json:"in_flight"`
	LastProgress time.Time     `json:"last_progress"`
	LastAccepted time.Time     `json:"last_accepted,omitzero"`
	Paused       string        `json:"paused,omitempty"`
	Errors       []RecentError `json:"errors"`
}

// NewStatus returns the status of a shipper that starts now.
func NewStatus() *Status { return &Status{progress: time.Now(), errors: []RecentError{}} }

// begin records that a batch is being sent.
func (s *Status) begin() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.inFlight == 0 {
		// Idle until now: the stall clock starts with this batch.
		s.progress = time.Now()
	}
	s.inFlight++
}

// end records that a batch is no longer being sent, accepted or not.
func (s *Status) end(accepted bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.inFlight--
	if accepted {
		now := time.Now()
		s.progress, s.accepted = now, now
	}
}

// failed keeps err among the recent errors.
func (s *Status) failed(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.errors) == maxRecentErrors {
		copy(s.errors, s.errors[1:])
		s.errors = s.errors[:maxRecentErrors-1]
	}
	s.errors = append(s.errors, RecentError{At: time.Now(), Error: err.Error()})
}

// Pause records that the shipper stopped sending, and why (an intake key
// refused, say); Resume that it sends again.
func (s *Status) Pause(reason string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.paused = reason
}

// Resume records that the shipper sends again; the stall clock restarts.
func (s *Status) Resume() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.paused, s.progress = "", time.Now()
}

// Snapshot returns a copy of the status.
func (s *Status) Snapshot() StatusSnapshot {
	s.mu.Lock()
	defer s.mu.Unlock()
	return StatusSnapshot{InFlight: s.inFlight, LastProgress: s.progress, LastAccepted: s.accepted,
		Paused: s.paused, Errors: append([]RecentError{}, s.errors...)}
}

// Ready says whether the shipper is healthy, given how many buffer
// messages wait for it: it is not when it is paused, or when data waits
// (in the buffer or in flight) and nothing was accepted for stallAfter.
// The error says which and why, with the last failure. A shipper seen
// with nothing waiting is not stalled, so the clock restarts then.
func (s *Status) Ready(waiting uint64, stallAfter time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	last := ""
	if n := len(s.errors); n > 0 {
		last = "; last error: " + s.errors[n-1].Error
	}
	if s.paused != "" {
		return fmt.Errorf("paused: %s%s", s.paused, last)
	}
	now := time.Now()
	if waiting == 0 && s.inFlight == 0 {
		s.progress = now
		return nil
	}
	if stalled := now.Sub(s.progress); stalled > stallAfter {
		return fmt.Errorf("stalled: no batch accepted for %s while %d buffer messages and %d batches wait%s",
			stalled.Round(time.Second), waiting, s.inFlight, last)
	}
	return nil
}
