package main

import (
	"slices"
	"sync"
	"testing"

	"github.com/flowgate/flowgate/benchmarks/internal/report"
)

func TestTurnsInterleaveTheSearchesStepByStep(t *testing.T) {
	// Three tools searched at once, as flowgate, goflow2 and nfacctd are:
	// each finds what it finds alone, with the same steps, and the steps
	// go round the tools still searching, in order.
	limits := []float64{350_000, 20_000, 200_000}
	tools := make([]*fakeTool, len(limits))
	for k, limit := range limits {
		tools[k] = &fakeTool{limit: limit, flaky: map[float64]bool{limit: true}}
	}
	order := newTurns(len(tools))
	var (
		mu    sync.Mutex
		steps []int // the searcher of each step, in the order they ran
		bests = make([]float64, len(tools))
		wg    sync.WaitGroup
	)
	for k, f := range tools {
		wg.Go(func() {
			defer order.leave(k)
			s := searcher{maxRate: 3_200_000, precision: 0.10, maxSteps: 10, repeats: 2, near: nearMiss,
				step: func(rate float64) (st report.Step, err error) {
					order.take(k, func() {
						mu.Lock()
						steps = append(steps, k)
						mu.Unlock()
						st, err = f.step(rate)
					})
					return st, err
				}}
			var err error
			if bests[k], err = s.search(25_000); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	for k, limit := range limits {
		alone := &fakeTool{limit: limit, flaky: map[float64]bool{limit: true}}
		if best := search(t, alone, 25_000); bests[k] != best || !slices.Equal(tools[k].ran, alone.ran) {
			t.Errorf("tool %d: %.0f after %v in turns, %.0f after %v alone", k, bests[k], tools[k].ran, best, alone.ran)
		}
	}
	// last[k] is the index of tool k's last step; after it, k has left.
	last := make([]int, len(tools))
	for i, k := range steps {
		last[k] = i
	}
	for i := 1; i < len(steps); i++ {
		want := -1
		for d := 1; d <= len(tools) && want < 0; d++ {
			if j := (steps[i-1] + d) % len(tools); last[j] >= i {
				want = j
			}
		}
		if steps[i] != want {
			t.Fatalf("step %d was tool %d's, want tool %d's: %v", i, steps[i], want, steps)
		}
	}
	if steps[0] != 0 || len(steps) != len(tools[0].ran)+len(tools[1].ran)+len(tools[2].ran) {
		t.Fatalf("steps %v", steps)
	}
}
