package main

import (
	"math"

	"github.com/flowgate/flowgate/benchmarks/internal/report"
)

// searcher finds the highest rate a tool holds with zero loss.
type searcher struct {
	maxRate, precision float64
	// maxSteps bounds the rates tried before a rate is found, half of it
	// each time the search goes on below a miss at the repeat; repeats is
	// how many times the rate found must be sustained to count.
	maxSteps, repeats int
	// step runs one step at a rate.
	step func(rate float64) (report.Step, error)
	// near says a step that was not sustained missed by its backlog
	// alone, by little: the rate then runs again (sustains). Nil: never.
	near func(report.Step) bool
	// unsettled is told when the steps ran out with the highest rate
	// passed (lo) and the lowest failed (hi) further apart than precision.
	unsettled func(lo, hi float64)
}

// minRate is the lowest rate a search goes down to.
const minRate = 500

// search doubles the rate from start until a step fails (or halves it
// until one passes), then bisects between the highest rate passed and the
// lowest failed, one step per rate. The rate it lands on then runs until
// it was sustained s.repeats times: at the edge a rate passes once and
// misses the next time, and a rate counts only when it held every time,
// but for a near miss that two holds outvote (sustains). A miss makes it
// the failed bound, and the search goes on below
// it from the rate passed before, with maxSteps/2 rates more (in the
// full run 2026-12-04-1744 the sFlow search spent all 10 on the climb and
// bisection, 400 000/s then missed its repeat, and 200 000 was all that
// was left). The lower rates of the climb run once each: the rate found
// above them vouches for them (the full run 2026-12-04-1217 took 125
// steps where every rate run twice would have taken about 178). It
// returns the rate held, 0 when none was.
func (s *searcher) search(start float64) (float64, error) {
	// passed are the rates sustained once, ascending, all below hi.
	var passed []float64
	hi := math.Inf(1)
	rate := start
	for budget, tried := s.maxSteps, 0; ; budget = tried + max(s.maxSteps/2, 1) {
		for tried < budget && !s.converged(rate, highest(passed), hi) {
			ok, err := s.sustains(rate)
			if err != nil {
				return 0, err
			}
			tried++
			if ok {
				passed = append(passed, rate)
			} else {
				hi = rate
			}
			rate = s.next(rate, highest(passed), hi)
		}
		lo := highest(passed)
		if lo == 0 {
			return 0, nil
		}
		held := true
		for i := 1; i < s.repeats && held; i++ {
			ok, err := s.sustains(lo)
			if err != nil {
				return 0, err
			}
			held = ok
		}
		if held {
			if hi/lo > 1+s.precision && lo*2 <= s.maxRate && s.unsettled != nil {
				s.unsettled(lo, hi)
			}
			return lo, nil
		}
		passed, hi = passed[:len(passed)-1], lo
		rate = s.next(lo, highest(passed), hi)
	}
}

// highest is the last of rates, 0 when there is none.
func highest(rates []float64) float64 {
	if len(rates) == 0 {
		return 0
	}
	return rates[len(rates)-1]
}

// next is the rate to try after one at rate, with lo the highest passed
// (0: none) and hi the lowest failed (+Inf: none).
func (s *searcher) next(rate, lo, hi float64) float64 {
	switch {
	case math.IsInf(hi, 1):
		return rate * 2
	case lo == 0:
		return report.RoundRate(hi / 2)
	default:
		return report.RoundRate((lo + hi) / 2)
	}
}

// converged says the search has nothing more to learn from trying rate.
func (s *searcher) converged(rate, lo, hi float64) bool {
	return rate > s.maxRate || rate < minRate || (lo > 0 && hi/lo <= 1+s.precision) || rate == lo || rate == hi
}

// sustains runs a step at rate and says whether it was sustained. A near
// miss (s.near) is not the verdict yet: one step at the edge may decide
// against a rate no more than for it. The rate runs again; a second miss
// fails it, a hold is followed by a third step that decides. In the full
// run 2026-12-04-1904, IPFIX at 400 000/s missed once, its last event out
// 2.1 s after the generator's (2 s allowed), nothing lost, with the
// receiving end at 1.85 µs per event where 1.46 was usual; the search
// settled on 375 000, where two other runs held 550 000.
func (s *searcher) sustains(rate float64) (bool, error) {
	st, err := s.counted(rate)
	if err != nil || st == nil || st.Sustained || s.near == nil || !s.near(*st) {
		return err == nil && st != nil && st.Sustained, err
	}
	for range 2 {
		if st, err = s.counted(rate); err != nil || st == nil || !st.Sustained {
			return false, err
		}
	}
	return true, nil
}

// counted runs steps at rate until one counts (report.Step.Counts): nil
// when none did in three, or the generator fell short twice. A rate the
// generator missed twice is beyond it: in the full run 2026-12-04-1904,
// loggen reached 60-67% of 640 000/s and 83-89% of 480 000/s three times
// each, and the syslog searches spent 26 of its 78 minutes.
func (s *searcher) counted(rate float64) (*report.Step, error) {
	short := 0
	for range 3 {
		st, err := s.step(rate)
		if err != nil {
			return nil, err
		}
		if st.Counts() {
			return &st, nil
		}
		if st.GeneratorShort() {
			if short++; short == 2 {
				return nil, nil
			}
		}
	}
	return nil, nil
}
