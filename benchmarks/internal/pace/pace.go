// Package pace sends at a steady rate. It wakes every slice of time and has
// the sender catch up with what is due, so that a sender can batch its
// system calls (one sendmmsg for the datagrams of a slice) instead of
// waking for each unit.
package pace

import (
	"context"
	"time"
)

// Slice is how often a paced sender wakes.
const Slice = time.Millisecond

// Result is what a paced run sent.
type Result struct {
	Sent    int64
	Start   time.Time
	Elapsed time.Duration
}

// Rate is the achieved rate in units per second.
func (r Result) Rate() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Sent) / r.Elapsed.Seconds()
}

// Send sends up to n units and says how many it sent.
type Send func(n int) (int, error)

// clock is time, replaced in tests.
type clock struct {
	now   func() time.Time
	sleep func(time.Duration)
}

var realClock = clock{now: time.Now, sleep: time.Sleep}

// Run sends rate units per second for d: rate×d units in all. A sender
// that falls behind gets a tenth of d more (at least 100 ms) to catch up,
// then the run stops with what it sent, so that a generator too slow for
// the rate asked shows in Result.Rate instead of running on.
func Run(ctx context.Context, rate float64, d time.Duration, send Send) (Result, error) {
	return run(ctx, realClock, rate, d, send)
}

func run(ctx context.Context, c clock, rate float64, d time.Duration, send Send) (Result, error) {
	total := int64(rate * d.Seconds())
	deadline := d + max(d/10, 100*time.Millisecond)
	res := Result{Start: c.now()}
	for res.Sent < total && ctx.Err() == nil {
		el := c.now().Sub(res.Start)
		if el >= deadline {
			break
		}
		// The first unit goes at once; the last is due at d.
		due := min(total, int64(rate*float64(el)/float64(time.Second))+1)
		if due <= res.Sent {
			c.sleep(Slice)
			continue
		}
		n, err := send(int(min(due-res.Sent, 1<<30)))
		res.Sent += int64(n)
		if err != nil {
			res.Elapsed = c.now().Sub(res.Start)
			return res, err
		}
	}
	res.Elapsed = c.now().Sub(res.Start)
	return res, ctx.Err()
}
