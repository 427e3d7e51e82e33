package pace

import (
	"context"
	"errors"
	"testing"
	"time"
)

// fakeClock advances only when the code under test sleeps or a sender
// says it took time.
type fakeClock struct{ t time.Time }

func (f *fakeClock) clock() clock {
	return clock{now: func() time.Time { return f.t }, sleep: func(d time.Duration) { f.t = f.t.Add(d) }}
}

func TestSendsTheRateInBatchesPerSlice(t *testing.T) {
	fc := &fakeClock{t: time.Unix(1_000, 0)}
	var calls []int
	res, err := run(context.Background(), fc.clock(), 5_000, time.Second, func(n int) (int, error) {
		calls = append(calls, n)
		return n, nil
	})
	if err != nil || res.Sent != 5_000 {
		t.Fatalf("sent %d, %v", res.Sent, err)
	}
	// 5 units per 1 ms slice: one send a slice, no send of one unit at a time.
	if len(calls) > 1_001 || len(calls) < 999 {
		t.Fatalf("%d sends for 5000 units", len(calls))
	}
	for _, n := range calls[1 : len(calls)-1] {
		if n != 5 {
			t.Fatalf("a send of %d units, want 5 per slice: %v", n, calls[:10])
		}
	}
	if res.Elapsed < 999*time.Millisecond || res.Elapsed > time.Second {
		t.Fatalf("elapsed %v", res.Elapsed)
	}
}

func TestSlowSenderStopsAfterTheGrace(t *testing.T) {
	fc := &fakeClock{t: time.Unix(1_000, 0)}
	// Each send takes 10 ms and manages 20 units: 2000 a second where
	// 10000 are asked.
	res, err := run(context.Background(), fc.clock(), 10_000, time.Second, func(n int) (int, error) {
		fc.t = fc.t.Add(10 * time.Millisecond)
		return min(n, 20), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// The first send has one unit due, then 109 sends of 20 until the grace ends at 1.1 s.
	if res.Elapsed != 1100*time.Millisecond || res.Sent != 1+109*20 {
		t.Fatalf("%+v rate %v", res, res.Rate())
	}
}

func TestSenderErrorStops(t *testing.T) {
	fc := &fakeClock{t: time.Unix(1_000, 0)}
	boom := errors.New("boom")
	res, err := run(context.Background(), fc.clock(), 1_000, time.Second, func(n int) (int, error) {
		return 0, boom
	})
	if !errors.Is(err, boom) || res.Sent != 0 {
		t.Fatalf("%+v %v", res, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := run(ctx, fc.clock(), 1_000, time.Second, func(n int) (int, error) { return n, nil }); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled run: %v", err)
	}
}
