package testtraffic

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/netip"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/flowgate/flowgate/internal/apptest"
	"github.com/flowgate/flowgate/internal/intaketest"
)

// V5Stream sends NetFlow v5 records with consecutive ids.
type V5Stream struct {
	conn        *net.UDPConn
	mu          sync.Mutex
	first, next uint32
	buf         []byte
}

// NewV5Stream sends records from id first to port on loopback.
func NewV5Stream(t testing.TB, port int, first uint32) *V5Stream {
	t.Helper()
	conn, err := net.DialUDP("udp", nil, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return &V5Stream{conn: conn, first: first, next: first}
}

// Send sends n records in full datagrams and returns the id of the next.
func (s *V5Stream) Send(n int) uint32 {
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := make([]uint32, 0, MaxV5Records)
	for n > 0 {
		ids = ids[:0]
		for range min(n, MaxV5Records) {
			ids = append(ids, s.next)
			s.next++
		}
		n -= len(ids)
		s.buf = NetFlowV5(s.buf[:0], ids, s.next-uint32(len(ids))-1, time.Now())
		if _, err := s.conn.Write(s.buf); errors.Is(err, syscall.ECONNREFUSED) {
			// The refusal of an earlier datagram (nobody listened then),
			// reported on this one, which was not sent.
			_, _ = s.conn.Write(s.buf)
		}
	}
	return s.next
}

// Sent is the number of records sent so far.
func (s *V5Stream) Sent() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return int(s.next - s.first)
}

// Wait waits until every record sent so far reached in, distinct ones
// counted (WaitIDs), or timeout passes.
func (s *V5Stream) Wait(t testing.TB, in *intaketest.HTTPS, timeout time.Duration) {
	t.Helper()
	s.mu.Lock()
	from, to := s.first, s.next
	s.mu.Unlock()
	WaitIDs(t, in, from, to, timeout)
}

// Check asserts that every record sent arrived among events, and returns
// the number of duplicates.
func (s *V5Stream) Check(t testing.TB, events []intaketest.Event) int {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	return CheckIDs(t, IDsOf(t, events), s.first, s.next)
}

// Run sends perTick records every 10 ms until ctx ends.
func (s *V5Stream) Run(ctx context.Context, perTick int) chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				s.Send(perTick)
			}
		}
	}()
	return done
}

// IDsOf counts the events of each record id.
func IDsOf(t testing.TB, events []intaketest.Event) map[uint32]int {
	t.Helper()
	seen := map[uint32]int{}
	for _, e := range events {
		var f struct {
			Src string `json:"sourceIPv4Address"`
		}
		if err := json.Unmarshal([]byte(e.Event), &f); err != nil {
			t.Fatalf("event %q: %v", e.Event, err)
		}
		a, err := netip.ParseAddr(f.Src)
		id, ok := V5ID(a)
		if err != nil || !ok {
			t.Fatalf("event from %q is not a record of the stream", f.Src)
		}
		seen[id]++
	}
	return seen
}

// WaitIDs waits until every record from..to-1 reached in, distinct ones
// counted (resent events arrive twice and would end a wait on a count
// too early), or timeout passes; CheckIDs then says what is missing.
func WaitIDs(t testing.TB, in *intaketest.HTTPS, from, to uint32, timeout time.Duration) {
	t.Helper()
	apptest.Eventually(timeout, func() bool {
		seen := IDsOf(t, in.Events())
		for id := from; id < to; id++ {
			if seen[id] == 0 {
				return false
			}
		}
		return true
	})
}

// CheckIDs asserts that every id in [from, to) arrived, and returns the
// number of duplicates.
func CheckIDs(t testing.TB, seen map[uint32]int, from, to uint32) int {
	t.Helper()
	dups, missing := 0, 0
	for id := from; id < to; id++ {
		switch n := seen[id]; {
		case n == 0:
			missing++
			if missing <= 10 {
				t.Errorf("record %d did not arrive", id)
			}
		case n > 1:
			dups += n - 1
		}
	}
	if missing > 10 {
		t.Errorf("... %d records of %d did not arrive", missing, to-from)
	}
	return dups
}
