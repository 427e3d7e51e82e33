package report

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// ReadMarkdown reads back what WriteMarkdown wrote: the run's start, the
// repeats asked and every step, enough to give its headline figures again
// and to compare two runs. It reads the step table by its column names,
// so reports written before a column existed read too (the column's
// figure left at its zero).
func ReadMarkdown(r io.Reader) (*Run, error) {
	run := &Run{Repeats: 1}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	var cols map[string]int
	inSteps := false
	for line := 0; sc.Scan(); {
		line++
		text := sc.Text()
		switch {
		case strings.HasPrefix(text, "# Benchmark run of "):
			t, err := time.Parse("2006-01-02 15:04 MST", strings.TrimPrefix(text, "# Benchmark run of "))
			if err != nil {
				return nil, fmt.Errorf("line %d: %w", line, err)
			}
			run.Started = t
		case heldTimes.MatchString(text):
			run.Repeats, _ = strconv.Atoi(heldTimes.FindStringSubmatch(text)[1])
		case boxTimed.MatchString(text):
			m := boxTimed.FindStringSubmatch(text)
			core, err1 := strconv.ParseFloat(m[1], 64)
			memory, err2 := strconv.ParseFloat(m[2], 64)
			n, err3 := strconv.Atoi(m[3])
			if err := errors.Join(err1, err2, err3); err != nil {
				return nil, fmt.Errorf("line %d: the box's calibration: %w", line, err)
			}
			run.Box = BoxTiming{Text: milliseconds(core), Memory: milliseconds(memory)}
			run.BoxTimings = n
		case strings.HasPrefix(text, "## "):
			inSteps = text == "## Every step"
			cols = nil
		case inSteps && strings.HasPrefix(text, "|") && !strings.HasPrefix(text, "|---"):
			cells := splitRow(text)
			if cols == nil {
				cols = map[string]int{}
				for i, c := range cells {
					cols[c] = i
				}
				for _, c := range []string{"path", "tool", "asked/s", "sustained"} {
					if _, ok := cols[c]; !ok {
						return nil, fmt.Errorf("line %d: the step table has no column %q", line, c)
					}
				}
				continue
			}
			s, err := readStep(cells, cols)
			if err != nil {
				return nil, fmt.Errorf("line %d: %w", line, err)
			}
			run.Steps = append(run.Steps, s)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(run.Steps) == 0 {
		return nil, fmt.Errorf("no step table (## Every step)")
	}
	return run, nil
}

var (
	heldTimes = regexp.MustCompile(`a rate counts as sustained when it held (\d+) times`)
	boxTimed  = regexp.MustCompile(`^The box's calibration \(.*\): ([0-9.]+) ms and ([0-9.]+) ms, the medians of the run's (\d+) timings\.`)
)

func milliseconds(ms float64) time.Duration {
	return time.Duration(math.Round(ms * float64(time.Millisecond)))
}

func splitRow(text string) []string {
	cells := strings.Split(strings.Trim(strings.TrimSpace(text), "|"), "|")
	for i := range cells {
		cells[i] = strings.TrimSpace(cells[i])
	}
	return cells
}

// readStep reads one row of the step table.
func readStep(cells []string, cols map[string]int) (Step, error) {
	s := Step{P50Ms: -1, P99Ms: -1}
	var err error
	cell := func(name string) string {
		if i, ok := cols[name]; ok && i < len(cells) {
			return cells[i]
		}
		return ""
	}
	// number reads a figure as written by count, mib or ms ("–": none).
	number := func(name, unit string) float64 {
		v := strings.TrimSpace(strings.TrimSuffix(cell(name), unit))
		if v == "" || v == "–" || err != nil {
			return -1
		}
		f, e := strconv.ParseFloat(strings.ReplaceAll(v, " ", ""), 64)
		if e != nil {
			err = fmt.Errorf("column %q: %w", name, e)
		}
		return f
	}
	s.Path, s.Tool = cell("path"), cell("tool")
	s.Target, s.Offered, s.DeliveredRate = number("asked/s", ""), number("offered/s", ""), number("delivered/s", "")
	s.Sent, s.Delivered = uint64(max(number("sent", ""), 0)), uint64(max(number("delivered", ""), 0))
	s.Duplicates, s.KernelDrops = uint64(max(number("dup", ""), 0)), uint64(max(number("kernel drops", ""), 0))
	s.CPUPerEvent = number("CPU µs/event", "")
	s.PeakRSS = uint64(max(number("peak RSS", "MiB"), 0) * (1 << 20))
	s.P50Ms, s.P99Ms = int64(number("p50 ms", "")), int64(number("p99 ms", ""))
	s.Drain = time.Duration(max(number("drain s", ""), 0) * float64(time.Second))
	s.Box = max(number("box speed", ""), 0)
	verdict := cell("sustained")
	s.Sustained, s.Profiled = strings.HasPrefix(verdict, "yes"), strings.HasSuffix(verdict, "(profiled)")
	s.Note = cell("note")
	if s.Target <= 0 && err == nil {
		err = fmt.Errorf("no rate asked")
	}
	return s, err
}

// figure is one headline figure of a run: the best rates and what they
// cost, the ratios against the peers, and the latency and CPU the
// targets read below the best rate.
type figure struct {
	path, tool, name string
	value            float64
	// bound, when set, is what both runs' figures must be within, in place
	// of within the tolerance of each other: latency at the best rate.
	// There a backlog has just begun to grow or not, and a rate a few
	// percent apart moves the p50 tenfold (sFlow: 46 ms at 425 000/s in
	// 2026-12-04-2048, 388 ms at 400 000/s in 2219). Its target is a bound
	// too; the latency to repeat is at 80% of the best rate.
	bound float64
}

// headline lists a run's headline figures.
func headline(r *Run) []figure {
	var out []figure
	add := func(path, tool, name string, v float64) {
		out = append(out, figure{path: path, tool: tool, name: name, value: v})
	}
	for _, path := range r.Paths() {
		fg := r.Best(path, Flowgate)
		for _, tool := range r.Tools(path) {
			b := r.Best(path, tool)
			if b == nil {
				continue
			}
			add(path, tool, "events/s", b.Target)
			add(path, tool, "CPU µs/event", b.CPUPerEvent)
			add(path, tool, "peak RSS MiB", float64(b.PeakRSS)/(1<<20))
			if b.P50Ms >= 0 {
				out = append(out,
					figure{path: path, tool: tool, name: "p50 ms", value: float64(b.P50Ms), bound: TargetP99EdgeMs},
					figure{path: path, tool: tool, name: "p99 ms", value: float64(b.P99Ms), bound: TargetP99EdgeMs})
			}
			if tool != Flowgate && fg != nil {
				add(path, tool, "throughput ÷ tool", fg.Target/b.Target)
				add(path, tool, "CPU ÷ tool", fg.CPUPerEvent/b.CPUPerEvent)
				add(path, tool, "RSS ÷ tool", float64(fg.PeakRSS)/float64(b.PeakRSS))
				if a, p := r.At(path, Flowgate, TargetCPUVsPeerAt), r.At(path, tool, TargetCPUVsPeerAt); a != nil && p != nil {
					add(path, tool, fmt.Sprintf("CPU ÷ tool at %s/s", count(TargetCPUVsPeerAt)), a.CPUPerEvent/p.CPUPerEvent)
				}
			}
			if tool == Flowgate {
				if at := r.At(path, tool, TargetCPUVsPeerAt); at != nil {
					add(path, tool, fmt.Sprintf("CPU µs/event at %s/s", count(TargetCPUVsPeerAt)), at.CPUPerEvent)
				}
				if at := r.At(path, tool, RoundRate(Fraction*b.Target)); at != nil && at.P99Ms >= 0 {
					add(path, tool, fmt.Sprintf("p99 ms at %.0f%% of the best rate", 100*Fraction), float64(at.P99Ms))
				}
			}
		}
	}
	return out
}

// WriteComparison writes the headline figures of two runs side by side,
// with how far b is from a, and returns how many are further apart than
// tolerance (0.10: a tenth), or beyond their bound in either run, or are
// in one run only.
func WriteComparison(w io.Writer, a, b *Run, tolerance float64) (int, error) {
	p := &printer{w: w}
	p.f("%s\n\n", boxes(a, b))
	p.f("| path | tool | figure | %s | %s | change | within %.0f%% |\n|---|---|---|---:|---:|---:|---|\n",
		a.Started.UTC().Format("2006-01-02 15:04"), b.Started.UTC().Format("2006-01-02 15:04"), 100*tolerance)
	fa, fb := headline(a), headline(b)
	apart := 0
	find := func(fs []figure, f figure) (float64, bool) {
		for _, g := range fs {
			if g.path == f.path && g.tool == f.tool && g.name == f.name {
				return g.value, true
			}
		}
		return 0, false
	}
	for _, f := range fa {
		vb, ok := find(fb, f)
		if !ok {
			apart++
			p.f("| %s | %s | %s | %s | – | | **no** |\n", f.path, PeerName(f.path, f.tool), f.name, figureValue(f.value))
			continue
		}
		change := vb/f.value - 1
		within, verdict := math.Abs(change) <= tolerance, ""
		if f.bound > 0 {
			within = f.value <= f.bound && vb <= f.bound
			verdict = fmt.Sprintf(" (both ≤ %s: a bound)", figureValue(f.bound))
		}
		if !within {
			apart++
		}
		p.f("| %s | %s | %s | %s | %s | %+.1f%% | %s%s |\n", f.path, PeerName(f.path, f.tool), f.name, figureValue(f.value), figureValue(vb), 100*change, met(within), verdict)
	}
	for _, f := range fb {
		if _, ok := find(fa, f); !ok {
			apart++
			p.f("| %s | %s | %s | – | %s | | **no** |\n", f.path, PeerName(f.path, f.tool), f.name, figureValue(f.value))
		}
	}
	return apart, p.err
}

// boxes says how fast the box ran in b against a, by their calibrations:
// an absolute figure that moved as much as the box did says more of the
// box than of the tool.
func boxes(a, b *Run) string {
	if a.BoxTimings == 0 || b.BoxTimings == 0 {
		return "The box: its calibration is not in both reports (reports before the run of 2026-12-05 11:44 lack it), so how much of a change is the box's cannot be told."
	}
	return fmt.Sprintf("The box: its calibration (text, memory) took %v in the first run, %v in the second: the second ran at %.2f of the first's speed.",
		a.Box, b.Box, b.Box.Speed(a.Box))
}

// figureValue writes a figure as the report does: whole ones (rates,
// milliseconds) with thin thousands separators, the rest with two decimals.
func figureValue(v float64) string {
	if v == math.Trunc(v) {
		return count(v)
	}
	return strconv.FormatFloat(v, 'f', 2, 64)
}
