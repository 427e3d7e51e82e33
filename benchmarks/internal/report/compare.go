package report

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// ReadMarkdown reads back what WriteMarkdown wrote: the run's start, the
// machine, how CPU was counted, the repeats asked and every step, enough
// to give its headline figures again and to compare two runs. It reads
// the step table by its column names, so reports written before a column
// existed read too (the column's figure left at its zero).
func ReadMarkdown(r io.Reader) (*Run, error) {
	run := &Run{Repeats: 1}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	var cols map[string]int
	inSteps, inMachine := false, false
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
		case strings.HasPrefix(text, "CPU counted from a cgroup"):
			run.CPUFromCgroups = true
		case strings.HasPrefix(text, "## "):
			inSteps, inMachine = text == "## Every step", text == "## Machine"
			cols = nil
		case inMachine && strings.HasPrefix(text, "|") && !strings.HasPrefix(text, "|---") && !strings.HasPrefix(text, "| CPU |"):
			// | CPU | cores | memory | kernel | Go | load average at start |
			if cells := splitRow(text); len(cells) >= 5 {
				run.Machine.CPU, run.Machine.Kernel, run.Machine.Go = cells[0], cells[3], cells[4]
				run.Machine.Cores, _ = strconv.Atoi(cells[1])
			}
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
	// The table calls pmacct by its daemon on the path (PeerName); the run
	// knows it as nfacctd on every path.
	if s.Tool == PeerName(s.Path, "nfacctd") {
		s.Tool = "nfacctd"
	}
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
	// lo and hi, when lo is above 0, are the lowest and highest the figure
	// read in the repeats of its rate (for a ratio, the most apart its two
	// tools' repeats allow). Two runs whose ranges overlap are not told
	// apart by them, however far their medians: nfacctd's peak RSS at
	// 157 000/s read 216 and 284 MiB in two steps of the run
	// 2026-12-05-1342, and no second run repeats a figure closer than the
	// first run's own repeats do.
	lo, hi float64
	// bound, when set, is what both runs' figures must be within, in place
	// of within the tolerance of each other: latency. At the best rate a
	// backlog has just begun to grow or not, and a rate a few percent
	// apart moves the p50 tenfold (sFlow: 46 ms at 425 000/s in
	// 2026-12-04-2048, 388 ms at 400 000/s in 2219). At 80% of it the p99
	// is of one step, and read 401, 612 and 806 ms in three runs of IPFIX
	// (2026-12-05-1047, 1144, 1342). Their targets are bounds too.
	bound float64
}

// spanOf is the lowest and highest of a figure over steps (0, 0 for none).
func spanOf(steps []*Step, of func(*Step) float64) (lo, hi float64) {
	if len(steps) == 0 {
		return 0, 0
	}
	v := values(steps, of)
	return slices.Min(v), slices.Max(v)
}

// headline lists a run's headline figures, as compared with other's.
func headline(r, other *Run) []figure {
	var out []figure
	add := func(f figure) { out = append(out, f) }
	cpu := func(s *Step) float64 { return s.CPUPerEvent }
	rss := func(s *Step) float64 { return float64(s.PeakRSS) / (1 << 20) }
	for _, path := range r.Paths() {
		fg := r.Best(path, Flowgate)
		var fgRepeats []*Step
		if fg != nil {
			fgRepeats = r.Repeated(path, Flowgate, fg.Target)
		}
		for _, tool := range r.Tools(path) {
			b := r.Best(path, tool)
			if b == nil {
				continue
			}
			repeats := r.Repeated(path, tool, b.Target)
			// spanned is a figure of one rate with the range of its steps.
			spanned := func(name string, value float64, of func(*Step) float64, steps []*Step) figure {
				lo, hi := spanOf(steps, of)
				return figure{path: path, tool: tool, name: name, value: value, lo: lo, hi: hi}
			}
			add(figure{path: path, tool: tool, name: "events/s", value: b.Target})
			add(spanned("CPU µs/event", b.CPUPerEvent, cpu, repeats))
			add(spanned("peak RSS MiB", rss(b), rss, repeats))
			// A tool's RSS at its best rate follows the rate it held,
			// steeply at its edge: nfacctd's on IPFIX read 250 MiB at
			// 157 000/s in 2026-12-05-1342 and 196 at 144 000 in 1653, 176
			// and 178 at 100 000/s. Where the two runs' best rates differ,
			// its RSS at the highest rate both held says whether the tool
			// changed.
			if o := other.Best(path, tool); o != nil && o.Target != b.Target {
				if common := heldByBoth(r, other, path, tool); common > 0 {
					add(spanned(fmt.Sprintf("peak RSS MiB at %s/s, the highest rate both runs held", count(common)),
						rss(r.At(path, tool, common)), rss, r.SustainedAt(path, tool, common)))
				}
			}
			if b.P50Ms >= 0 {
				add(figure{path: path, tool: tool, name: "p50 ms", value: float64(b.P50Ms), bound: TargetP99EdgeMs})
				add(figure{path: path, tool: tool, name: "p99 ms", value: float64(b.P99Ms), bound: TargetP99EdgeMs})
			}
			if tool != Flowgate && fg != nil {
				// ratioOf is flowgate's figure (f, of its steps fs) over the
				// tool's (t, ts), its range the most apart their steps allow.
				ratioOf := func(name string, of func(*Step) float64, f, t *Step, fs, ts []*Step) figure {
					flo, fhi := spanOf(fs, of)
					tlo, thi := spanOf(ts, of)
					x := figure{path: path, tool: tool, name: name, value: of(f) / of(t)}
					if tlo > 0 { // a figure not measured reads 0 or less: no range
						x.lo, x.hi = flo/thi, fhi/tlo
					}
					return x
				}
				add(figure{path: path, tool: tool, name: "throughput ÷ tool", value: fg.Target / b.Target})
				add(ratioOf("CPU ÷ tool", cpu, fg, b, fgRepeats, repeats))
				add(ratioOf("RSS ÷ tool", rss, fg, b, fgRepeats, repeats))
				if a, p := r.At(path, Flowgate, TargetCPUVsPeerAt), r.At(path, tool, TargetCPUVsPeerAt); a != nil && p != nil {
					add(ratioOf(fmt.Sprintf("CPU ÷ tool at %s/s", count(TargetCPUVsPeerAt)), cpu, a, p,
						r.SustainedAt(path, Flowgate, TargetCPUVsPeerAt), r.SustainedAt(path, tool, TargetCPUVsPeerAt)))
				}
			}
			if tool == Flowgate {
				if at := r.At(path, tool, TargetCPUVsPeerAt); at != nil {
					add(spanned(fmt.Sprintf("CPU µs/event at %s/s", count(TargetCPUVsPeerAt)), at.CPUPerEvent, cpu, r.SustainedAt(path, tool, TargetCPUVsPeerAt)))
				}
				if at := r.At(path, tool, RoundRate(Fraction*b.Target)); at != nil && at.P99Ms >= 0 {
					add(figure{path: path, tool: tool, name: fmt.Sprintf("p99 ms at %.0f%% of the best rate", 100*Fraction), value: float64(at.P99Ms), bound: TargetP99BelowMs})
				}
			}
		}
	}
	return out
}

// heldByBoth is the highest rate at which a tool has a sustained step up
// to its best rate (At) in both runs, or 0.
func heldByBoth(a, b *Run, path, tool string) float64 {
	common := 0.0
	for _, s := range a.Steps {
		if s.Path == path && s.Tool == tool && s.Target > common && a.At(path, tool, s.Target) != nil && b.At(path, tool, s.Target) != nil {
			common = s.Target
		}
	}
	return common
}

// WriteComparison writes the headline figures of two runs side by side,
// with how far b is from a, and returns how many are apart: further than
// tolerance (0.10: a tenth) with repeats that do not overlap, or beyond
// their bound in either run, or in one run only.
func WriteComparison(w io.Writer, a, b *Run, tolerance float64) (int, error) {
	p := &printer{w: w}
	p.f("%s\n\n%s\n\n", machines(a, b), boxes(a, b))
	if a.CPUFromCgroups != b.CPUFromCgroups {
		p.f("**CPU counted differently**: %s in the first run, %s in the second: from /proc, pmacct's writers "+
			"are left out, so nfacctd's and sfacctd's CPU and flowgate's ratios to it do not compare.\n\n",
			cpuCounting(a), cpuCounting(b))
	}
	p.f("| path | tool | figure | %s | %s | change | within %.0f%% |\n|---|---|---|---:|---:|---:|---|\n",
		a.Started.UTC().Format("2006-01-02 15:04"), b.Started.UTC().Format("2006-01-02 15:04"), 100*tolerance)
	fa, fb := headline(a, b), headline(b, a)
	// Flowgate's own figures are told apart from the peers' and the
	// ratios against them: the peers' rates move more from run to run
	// than flowgate's (sfacctd held 200 000, 182 000, 188 000 and 144 000
	// sFlow/s in the four full runs of 2026-12-06).
	var own, peers tally
	tallyOf := func(f figure) *tally {
		if f.tool == Flowgate {
			return &own
		}
		return &peers
	}
	find := func(fs []figure, f figure) (figure, bool) {
		for _, g := range fs {
			if g.path == f.path && g.tool == f.tool && g.name == f.name {
				return g, true
			}
		}
		return figure{}, false
	}
	for _, f := range fa {
		t := tallyOf(f)
		g, ok := find(fb, f)
		if !ok {
			t.apart++
			p.f("| %s | %s | %s | %s | – | | **no** |\n", f.path, PeerName(f.path, f.tool), f.name, figureValue(f.value))
			continue
		}
		change := g.value/f.value - 1
		verdict := "**no**"
		switch {
		case f.bound > 0:
			ok = f.value <= f.bound && g.value <= f.bound
			verdict = fmt.Sprintf("%s (both ≤ %s: a bound)", met(ok), figureValue(f.bound))
			if ok {
				t.bound++
			}
		case math.Abs(change) <= tolerance:
			ok, verdict = true, "yes"
			t.within++
		case f.lo > 0 && g.lo > 0 && f.lo <= g.hi && g.lo <= f.hi:
			ok, verdict = true, fmt.Sprintf("not told apart: the repeats overlap (%s–%s, %s–%s)", figureValue(f.lo), figureValue(f.hi), figureValue(g.lo), figureValue(g.hi))
			t.overlap++
		default:
			ok = false
		}
		if !ok {
			t.apart++
		}
		p.f("| %s | %s | %s | %s | %s | %+.1f%% | %s |\n", f.path, PeerName(f.path, f.tool), f.name, figureValue(f.value), figureValue(g.value), 100*change, verdict)
	}
	for _, f := range fb {
		if _, ok := find(fa, f); !ok {
			tallyOf(f).apart++
			p.f("| %s | %s | %s | – | %s | | **no** |\n", f.path, PeerName(f.path, f.tool), f.name, figureValue(f.value))
		}
	}
	all := tally{own.within + peers.within, own.overlap + peers.overlap, own.bound + peers.bound, own.apart + peers.apart}
	p.f("\nOf %s\nOf flowgate's own %s\nOf the peers' and the ratios against them, %s\n",
		all.say(tolerance), own.say(tolerance), peers.say(tolerance))
	return all.apart, p.err
}

// tally counts figures by how two runs' readings of them agree.
type tally struct{ within, overlap, bound, apart int }

// say is how many figures the tally holds and how they fell.
func (t tally) say(tolerance float64) string {
	return fmt.Sprintf("%d figures: %d within %.0f%%, %d further apart but within the spread of their repeats, %d within their bound in both runs, %d apart.",
		t.within+t.overlap+t.bound+t.apart, t.within, 100*tolerance, t.overlap, t.bound, t.apart)
}

// machines says which machines the runs were on. Two runs on machines of
// different processors do not repeat each other: on 2026-12-07 an Intel
// Xeon took nfacctd's IPFIX rate from the 169 000-200 000/s of six runs on
// AMD EPYC to 313 000/s, and flowgate's from 500 000-525 000 to 438 000.
func machines(a, b *Run) string {
	ma, mb := a.Machine, b.Machine
	switch {
	case ma.CPU == "" || mb.CPU == "":
		return "The machine: not in both reports, so whether the runs shared one cannot be told."
	case ma.Cores == mb.Cores && (strings.HasPrefix(ma.CPU, mb.CPU+" (") || strings.HasPrefix(mb.CPU, ma.CPU+" (")):
		// Reports up to 2026-12-07-1827 name the processor without its
		// family and model.
		return fmt.Sprintf("The machine: %s in the first run, %s in the second, %d cores: one report does not name the model, "+
			"so whether the runs had a box of one kind cannot be told from the name; the calibrations below say whether the boxes ran alike.", ma.CPU, mb.CPU, ma.Cores)
	case ma.CPU != mb.CPU || ma.Cores != mb.Cores:
		return fmt.Sprintf("**The machines differ**: %s, %d cores (%s) in the first run, %s, %d cores (%s) in the second: "+
			"the figures are not a repeat of each other, the ratios against the peers least of all.",
			ma.CPU, ma.Cores, ma.Kernel, mb.CPU, mb.Cores, mb.Kernel)
	case ma.Kernel != mb.Kernel:
		return fmt.Sprintf("The machine: %s, %d cores in both runs; the kernel %s in the first, %s in the second.", ma.CPU, ma.Cores, ma.Kernel, mb.Kernel)
	}
	return fmt.Sprintf("The machine: %s, %d cores, %s in both runs.", ma.CPU, ma.Cores, ma.Kernel)
}

// cpuCounting names how r counted the tools' CPU.
func cpuCounting(r *Run) string {
	if r.CPUFromCgroups {
		return "from cgroups"
	}
	return "from /proc"
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
