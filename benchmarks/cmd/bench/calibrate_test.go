package main

import (
	"testing"
	"time"
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
	before := []calibration{{40 * ms, 100 * ms}, {44 * ms, 90 * ms}, {42 * ms, 110 * ms}}
	for _, c := range []struct {
		now  calibration
		want float64
	}{
		{calibration{42 * ms, 100 * ms}, 1},
		{calibration{84 * ms, 100 * ms}, 0.5}, // the core ran half as fast
		{calibration{42 * ms, 125 * ms}, 0.8}, // the memory ran a fifth slower
		{calibration{21 * ms, 200 * ms}, 0.5}, // a faster core does not hide slower memory
	} {
		if got := c.now.speed(before); got != c.want {
			t.Errorf("speed(%v) = %.3f, want %.3f", c.now, got, c.want)
		}
	}
	if got := (calibration{time.Second, time.Second}).speed(nil); got != 1 {
		t.Errorf("the first calibration's speed is %.2f, want 1", got)
	}
}
