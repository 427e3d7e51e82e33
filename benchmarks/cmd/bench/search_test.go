package main

import (
	"slices"
	"testing"
	"time"

	"github.com/flowgate/flowgate/benchmarks/internal/report"
)

// fakeTool is a tool under a search: it sustains every rate up to limit, and
// the rates in flaky only the first time they run.
type fakeTool struct {
	limit float64
	flaky map[float64]bool
	// short rates leave the generator short of the rate this many times;
	// slow rates fail on a slow box this many times; near rates miss by a
	// little backlog this many times.
	short, slow, near map[float64]int
	ran               []float64
}

// Drains of the fake's misses: above the limit a backlog grew far.
const (
	nearDrain = 3 * time.Second
	farDrain  = 10 * time.Second
)

func nearMiss(s report.Step) bool { return s.Drain <= nearDrain }

func (f *fakeTool) step(rate float64) (report.Step, error) {
	f.ran = append(f.ran, rate)
	s := report.Step{Target: rate, Offered: rate, Sustained: rate <= f.limit}
	if !s.Sustained {
		s.Drain = farDrain
	}
	if f.short[rate] > 0 {
		f.short[rate]--
		s.Offered = rate / 2
		return s, nil
	}
	if f.slow[rate] > 0 {
		f.slow[rate]--
		s.Sustained, s.Box = false, report.SlowBox-0.1
		return s, nil
	}
	if f.near[rate] > 0 {
		f.near[rate]--
		s.Sustained, s.Drain = false, nearDrain
		return s, nil
	}
	if f.flaky[rate] {
		if slices.Index(f.ran, rate) != len(f.ran)-1 {
			s.Sustained, s.Drain = false, farDrain
		}
	}
	return s, nil
}

func search(t *testing.T, f *fakeTool, start float64) float64 {
	t.Helper()
	s := searcher{maxRate: 3_200_000, precision: 0.10, maxSteps: 10, repeats: 2, step: f.step, near: nearMiss}
	best, err := s.search(start)
	if err != nil {
		t.Fatal(err)
	}
	return best
}

func TestSearchClimbsOnceAndConfirmsTheRateFound(t *testing.T) {
	f := &fakeTool{limit: 350_000}
	best := search(t, f, 25_000)
	want := []float64{25_000, 50_000, 100_000, 200_000, 400_000, 300_000, 350_000, 375_000, 350_000}
	if best != 350_000 || !slices.Equal(f.ran, want) {
		t.Fatalf("best %.0f after %v, want 350000 after %v", best, f.ran, want)
	}
}

func TestSearchGoesBelowARateThatPassedOnce(t *testing.T) {
	// 350k passes once and misses its repeat: the search goes on between
	// 300k and 350k, and 300k must be sustained again before it counts.
	f := &fakeTool{limit: 350_000, flaky: map[float64]bool{350_000: true}}
	best := search(t, f, 25_000)
	if best != 325_000 {
		t.Fatalf("best %.0f after %v", best, f.ran)
	}
	if n := count(f.ran, 325_000); n != 2 {
		t.Fatalf("325k ran %d times: %v", n, f.ran)
	}
	// The climb stops at -max-rate; the highest rate passed misses its
	// repeat, and the search bisects below it.
	f = &fakeTool{limit: 1e9, flaky: map[float64]bool{200_000: true}}
	s := searcher{maxRate: 250_000, precision: 0.10, maxSteps: 10, repeats: 2, step: f.step}
	best, err := s.search(25_000)
	if err != nil || best != 188_000 || count(f.ran, 200_000) != 2 || count(f.ran, 188_000) != 2 {
		t.Fatalf("best %.0f (%v) after %v, want 188000", best, err, f.ran)
	}
}

func TestSearchHalvesFromAStartTooHigh(t *testing.T) {
	f := &fakeTool{limit: 14_000}
	best := search(t, f, 25_000)
	if best < 12_500 || best > 14_000 || count(f.ran, best) != 2 {
		t.Fatalf("best %.0f after %v", best, f.ran)
	}
	if best := search(t, &fakeTool{limit: 100}, 25_000); best != 0 {
		t.Fatalf("a tool that sustains nothing held %.0f", best)
	}
}

func TestSearchRunsAgainWhatDoesNotCount(t *testing.T) {
	// A step that failed on a slow box counts neither way: twice at a
	// rate, and the third step decides; three times, and the rate is not
	// sustained. A step where the generator fell short runs again once:
	// twice short, the rate is beyond the generator.
	for _, c := range []struct {
		name  string
		tries int
		tool  func(rate float64, times int) *fakeTool
	}{
		{"generator short", 2, func(rate float64, n int) *fakeTool {
			return &fakeTool{limit: 350_000, short: map[float64]int{rate: n}}
		}},
		{"slow box", 3, func(rate float64, n int) *fakeTool {
			return &fakeTool{limit: 350_000, slow: map[float64]int{rate: n}}
		}},
	} {
		f := c.tool(200_000, c.tries-1)
		if best := search(t, f, 25_000); best != 350_000 || count(f.ran, 200_000) != c.tries {
			t.Errorf("%s: best %.0f after %v", c.name, best, f.ran)
		}
		f = c.tool(200_000, c.tries)
		if best := search(t, f, 25_000); best >= 200_000 || count(f.ran, 200_000) != c.tries {
			t.Errorf("%s: best %.0f after %v: a rate that never ran on a step that counts held", c.name, best, f.ran)
		}
	}
}

func TestSearchRunsANearMissAgain(t *testing.T) {
	// One near miss and two holds: the rate holds (in the full run
	// 2026-12-04-1904, IPFIX 400 000/s missed once by 0.1 s, and the
	// search settled on 375 000 where two other runs held 550 000).
	f := &fakeTool{limit: 350_000, near: map[float64]int{200_000: 1}}
	if best := search(t, f, 25_000); best != 350_000 || count(f.ran, 200_000) != 3 {
		t.Errorf("best %.0f after %v, want 350000 with 200k run thrice", best, f.ran)
	}
	// Two near misses fail the rate.
	f = &fakeTool{limit: 350_000, near: map[float64]int{200_000: 2}}
	if best := search(t, f, 25_000); best >= 200_000 || count(f.ran, 200_000) != 2 {
		t.Errorf("best %.0f after %v: 200k held after two misses", best, f.ran)
	}
	// A near miss at the repeat of the rate found: two holds outvote it.
	f = &fakeTool{limit: 350_000, near: map[float64]int{}}
	s := searcher{maxRate: 3_200_000, precision: 0.10, maxSteps: 10, repeats: 2, near: nearMiss,
		step: func(rate float64) (report.Step, error) {
			if rate == 350_000 && count(f.ran, rate) == 1 {
				f.near[rate] = 1
			}
			return f.step(rate)
		}}
	if best, err := s.search(25_000); err != nil || best != 350_000 || count(f.ran, 350_000) != 4 {
		t.Errorf("best %.0f (%v) after %v, want 350000 run four times", best, err, f.ran)
	}
}

func count(rates []float64, rate float64) int {
	n := 0
	for _, r := range rates {
		if r == rate {
			n++
		}
	}
	return n
}

func TestSearchGoesOnBelowAMissWhenTheStepsRanOut(t *testing.T) {
	// The full run 2026-12-04-1744's sFlow: the climb and bisection take
	// all 10 steps (25k…400k, 800k, 600k, 500k, 450k, 425k), 400k misses
	// its repeat; the search goes on between 200k and 400k.
	f := &fakeTool{limit: 400_000, flaky: map[float64]bool{400_000: true}}
	var unsettled []float64
	s := searcher{maxRate: 3_200_000, precision: 0.10, maxSteps: 10, repeats: 2, step: f.step,
		unsettled: func(lo, hi float64) { unsettled = append(unsettled, lo, hi) }}
	best, err := s.search(25_000)
	if err != nil || best < 350_000 || best >= 400_000 || unsettled != nil {
		t.Fatalf("best %.0f (%v), unsettled %v after %v", best, err, unsettled, f.ran)
	}
	// Out of steps for good: the report is told what was not searched.
	f = &fakeTool{limit: 3_000_000}
	s = searcher{maxRate: 3_200_000, precision: 0.10, maxSteps: 3, repeats: 2, step: f.step,
		unsettled: func(lo, hi float64) { unsettled = append(unsettled, lo, hi) }}
	if best, err := s.search(25_000); err != nil || best != 100_000 || len(unsettled) != 2 || unsettled[0] != 100_000 {
		t.Fatalf("best %.0f (%v), unsettled %v after %v", best, err, unsettled, f.ran)
	}
}
