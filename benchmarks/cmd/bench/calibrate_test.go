package main

import (
	"context"
	"testing"
	"time"

	"github.com/flowgate/flowgate/benchmarks/internal/report"
)

func TestCycleVisitsEveryIndexOnce(t *testing.T) {
	for _, n := range []int{1, 2, 3, 1000} {
		ring := cycle(n)
		seen := make([]bool, n)
		at := uint32(0)
		for i := range n {
			if seen[at] {
				t.Fatalf("n=%d: index %d seen again after %d steps: the ring is more than one cycle", n, at, i)
			}
			seen[at] = true
			at = ring[at]
		}
		if at != 0 {
			t.Fatalf("n=%d: after %d steps the walk is at %d, not back at 0", n, n, at)
		}
	}
}

func TestSpeedIsTheSlowerOfTheTwo(t *testing.T) {
	ms := time.Millisecond
	timing := func(text, memory time.Duration) report.BoxTiming { return report.BoxTiming{Text: text, Memory: memory} }
	before := medianTiming([]report.BoxTiming{timing(40*ms, 100*ms), timing(44*ms, 90*ms), timing(42*ms, 110*ms)})
	if want := timing(42*ms, 100*ms); before != want {
		t.Fatalf("median of the calibrations before: %v, want %v", before, want)
	}
	for _, c := range []struct {
		now  report.BoxTiming
		want float64
	}{
		{timing(42*ms, 100*ms), 1},
		{timing(84*ms, 100*ms), 0.5}, // the core ran half as fast
		{timing(42*ms, 125*ms), 0.8}, // the memory ran a fifth slower
		{timing(21*ms, 200*ms), 0.5}, // a faster core does not hide slower memory
	} {
		if got := c.now.Speed(before); got != c.want {
			t.Errorf("speed of %v = %.3f, want %.3f", c.now, got, c.want)
		}
	}
	if got := medianTiming(nil); got != (report.BoxTiming{}) {
		t.Errorf("the median of no calibration is %v, want zero", got)
	}
}

func TestStepProbe(t *testing.T) {
	p := newStepProbe()
	if got := p.sample(); got <= 0 {
		t.Fatalf("a sample took %v of the thread's CPU, want more than zero", got)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if got := p.run(ctx, time.Hour); got != 0 {
		t.Errorf("a probe stopped before its first sample read %v, want zero", got)
	}
}

func TestProbeSpeedIsAgainstTheStepsBefore(t *testing.T) {
	ms := time.Millisecond
	b := &bench{}
	for _, c := range []struct {
		reading time.Duration
		want    float64
	}{
		{0, 1},         // no reading: not kept, and no verdict
		{4 * ms, 1},    // the first step is the measure
		{5 * ms, 0.8},  // a fifth slower than the median (4 ms)
		{4 * ms, 1.25}, // the median of 4 and 5 ms is 5 (the upper of two)
		{8 * ms, 0.5},  // against 4, 4, 5: 4
		{2 * ms, 2.5},  // against 4, 4, 5, 8: 5; no cap on a faster box
	} {
		if got := b.probeSpeed(c.reading); got != c.want {
			t.Errorf("a reading of %v gives %.3f, want %.3f", c.reading, got, c.want)
		}
	}
	if len(b.probes) != 5 {
		t.Errorf("%d readings kept, want 5 (all but the zero): %v", len(b.probes), b.probes)
	}
}
