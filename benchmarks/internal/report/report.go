// Package report writes what a benchmark run measured: a Markdown page
// (the machine, the highest rate each tool sustained with zero loss, the
// flowgate/peer ratios, the targets, every step, the profile's top entries)
// and a PNG plot of delivered against offered load, with the loss.
package report

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/flowgate/flowgate/benchmarks/internal/procstat"
)

// The syslog paths (TCP or TLS in, HTTPS out); flows have a path per
// format (FlowPath).
const (
	PathSyslog    = "syslog"
	PathSyslogTLS = "syslog TLS"
)

// FlowPath is the path of flows of a format (exporter.Format's names).
func FlowPath(format string) string {
	if name, ok := formatNames[format]; ok {
		return "flows " + name
	}
	return "flows " + format
}

var formatNames = map[string]string{"v5": "NetFlow v5", "v9": "NetFlow v9", "ipfix": "IPFIX", "sflow": "sFlow"}

// The appliance; the other tools are its peers.
const Flowgate = "flowgate"

// Step is one measurement: a tool receiving one rate for the run's duration.
type Step struct {
	Path string
	Tool string
	// Target is the rate asked of the generator, Offered what it reached
	// (events per second).
	Target, Offered float64
	// Sent is what the generator sent; Delivered the distinct events that
	// came out at the far end, Duplicates those that came out again.
	Sent, Delivered, Duplicates uint64
	// DeliveredRate is Delivered over the time from the first send to the
	// last arrival.
	DeliveredRate float64
	// KernelDrops are datagrams the kernel dropped at the tool's socket.
	KernelDrops uint64
	// CPUPerEvent is the tool's CPU time (user + system, all its
	// processes) over the step, per delivered event, in microseconds.
	CPUPerEvent float64
	// PeakRSS is the tool's peak resident memory in bytes.
	PeakRSS uint64
	// P50Ms and P99Ms are the latency from receipt to the intake; -1 when
	// the tool's output does not tell it.
	P50Ms, P99Ms int64
	// Drain is how long after the generator stopped the last event came out.
	Drain time.Duration
	// Sustained: every event delivered once, at the rate asked, with no
	// backlog left to drain.
	Sustained bool
	// Profiled steps ran with the CPU profiler on; they do not count for the best rate.
	Profiled bool
	// Box is the box's speed, the lowest of just before, during and just
	// after the step, each against the median of the steps' before (1.10:
	// a tenth faster); 0 when not measured.
	Box  float64
	Note string
}

// GeneratorShort says the generator did not reach 97% of the rate asked
// (the box was busy elsewhere): such a step says nothing of the tool, and
// does not count for or against its rate.
func (s *Step) GeneratorShort() bool { return s.Offered < 0.97*s.Target }

// SlowBox is the box speed below which a step that failed says more of the
// VM's neighbours than of the tool.
const SlowBox = 0.9

// Slow says the step ran on a box below SlowBox (a step without a
// reading is not).
func (s *Step) Slow() bool { return s.Box > 0 && s.Box < SlowBox }

// Counts says whether a step counts for or against its rate: not when the
// generator fell short, nor when it failed on a box running slow. A step
// sustained on a slow box counts: the tool held the rate all the same.
func (s *Step) Counts() bool {
	return !s.GeneratorShort() && (s.Sustained || !s.Slow())
}

// Loss is how many sent events never came out.
func (s *Step) Loss() int64 { return int64(s.Sent) - int64(s.Delivered) }

// LossPercent is Loss as a share of Sent.
func (s *Step) LossPercent() float64 {
	if s.Sent == 0 {
		return 0
	}
	return 100 * float64(s.Loss()) / float64(s.Sent)
}

// Run is a whole benchmark run.
type Run struct {
	Started  time.Time
	Command  string
	Machine  procstat.Machine
	Versions []string
	// Formats, Exporters and Records describe the flow traffic (Records 0:
	// as many as fill a datagram).
	Formats   []string
	Exporters int
	Records   int
	Duration  time.Duration
	// Repeats is how many times a rate must be sustained to count.
	Repeats int
	Steps   []Step
	// ProfileFile is the CPU profile of flowgate at its best rate (a file
	// beside the report) and ProfileTop its top entries.
	ProfileFile string
	ProfileTop  string
	// Skipped says what was not measured, and why.
	Skipped []string
	// Stopped says why the run stopped part way; empty when it ran whole.
	Stopped string
	// Box is the box's calibration over the run, the medians of BoxTimings
	// timings. The steps' box speeds are against the run's own median, so
	// they cannot tell a box that ran slower all run long: the run of
	// 2026-12-05 08:06 read flowgate's IPFIX at 425 000/s and nfacctd's at
	// 150 000, five hours after 575 000 and 238 000 with the same binaries
	// but for flowgate's readiness check.
	Box        BoxTiming
	BoxTimings int
	// CPUFromCgroups says the tools' CPU was read from a cgroup of each
	// step's own, which counts every process a tool forked; otherwise it
	// was read from /proc, which misses those that exited during the step
	// (nfacctd's writers), and NoCgroup says why.
	CPUFromCgroups bool
	NoCgroup       string
}

// BoxTiming is how long the bench's two fixed pieces of work took on one
// core (cmd/bench/calibrate.go): numbers written as text and compressed,
// which sees the core's speed, and a walk through memory, which sees the
// memory's.
type BoxTiming struct {
	Text, Memory time.Duration
}

// String gives the two timings as the report and the comparison write them.
func (t BoxTiming) String() string {
	return fmt.Sprintf("%.1f ms and %.1f ms", t.Text.Seconds()*1000, t.Memory.Seconds()*1000)
}

// Speed is the box's speed in t against ref: the lower of the two pieces of
// work's, so that 0.80 means one of them ran a fifth slower.
func (t BoxTiming) Speed(ref BoxTiming) float64 {
	return min(float64(ref.Text)/float64(t.Text), float64(ref.Memory)/float64(t.Memory))
}

// Paths lists the paths measured, in the order they ran.
func (r *Run) Paths() []string {
	var paths []string
	for _, s := range r.Steps {
		if !slices.Contains(paths, s.Path) {
			paths = append(paths, s.Path)
		}
	}
	return paths
}

// Tools lists the tools of a path in the order they ran.
func (r *Run) Tools(path string) []string {
	var tools []string
	for _, s := range r.Steps {
		if s.Path == path && !slices.Contains(tools, s.Tool) {
			tools = append(tools, s.Tool)
		}
	}
	return tools
}

// Ran are a tool's unprofiled steps at one rate, in the order they ran,
// those that count neither way (Counts) too.
func (r *Run) Ran(path, tool string, rate float64) []*Step {
	var steps []*Step
	for i := range r.Steps {
		if s := &r.Steps[i]; s.Path == path && s.Tool == tool && s.Target == rate && !s.Profiled {
			steps = append(steps, s)
		}
	}
	return steps
}

// Repeated are a tool's unprofiled steps at one rate that count (Counts),
// in the order they ran.
func (r *Run) Repeated(path, tool string, rate float64) []*Step {
	return slices.DeleteFunc(r.Ran(path, tool, rate), func(s *Step) bool { return !s.Counts() })
}

// Held says whether a tool sustained a rate at least Repeats times, and
// in most of the steps that ran it: a rate sustained once and missed once
// is on the edge, not held. The search runs a rate again after a near
// miss, and two holds then outvote it; any other miss ends the rate's
// runs, so a rate held has no miss but near ones.
func (r *Run) Held(path, tool string, rate float64) bool {
	steps := r.Repeated(path, tool, rate)
	holds := 0
	for _, s := range steps {
		if s.Sustained {
			holds++
		}
	}
	return holds >= max(r.Repeats, 1) && 2*holds > len(steps)
}

// Best is the highest rate a tool held, with the median of its repeats'
// figures (CPU, memory, latency, delivered rate), or nil: one step at the
// edge can land a fifth off its repeat, the median of them less.
func (r *Run) Best(path, tool string) *Step {
	var best *Step
	for _, s := range r.held(path, tool) {
		if best == nil || s.Target > best.Target {
			best = s
		}
	}
	if best == nil {
		return nil
	}
	return medianStep(best, r.Repeated(path, tool, best.Target))
}

// medianStep is base with the medians of steps' figures (CPU, memory,
// latency, delivered rate, box speed), of those on a box at speed when
// there are any, so that it is Slow only when all were: a slow box
// lengthens the tool's CPU time and its latency as it does the probe's
// (in the full run 2026-12-06-1331, IPFIX's p99 at 400 000/s read
// 1 209 ms on a box at 0.77, where 0808 and 1038 read 513 and 488 ms).
func medianStep(base *Step, steps []*Step) *Step {
	if fast := slices.DeleteFunc(slices.Clone(steps), (*Step).Slow); len(fast) > 0 {
		steps = fast
	}
	m := *base
	m.Box = median(steps, func(s *Step) float64 { return s.Box })
	m.CPUPerEvent = median(steps, func(s *Step) float64 { return s.CPUPerEvent })
	m.DeliveredRate = median(steps, func(s *Step) float64 { return s.DeliveredRate })
	m.PeakRSS = uint64(median(steps, func(s *Step) float64 { return float64(s.PeakRSS) }))
	if m.P50Ms >= 0 {
		m.P50Ms = int64(math.Round(median(steps, func(s *Step) float64 { return float64(s.P50Ms) })))
		m.P99Ms = int64(math.Round(median(steps, func(s *Step) float64 { return float64(s.P99Ms) })))
	}
	return &m
}

// median is the median of a figure over steps (the mean of the middle two
// for an even count).
func median(steps []*Step, figure func(*Step) float64) float64 {
	v := values(steps, figure)
	slices.Sort(v)
	n := len(v)
	if n%2 == 1 {
		return v[n/2]
	}
	return (v[n/2-1] + v[n/2]) / 2
}

// values is a figure of each of steps.
func values(steps []*Step, figure func(*Step) float64) []float64 {
	v := make([]float64, len(steps))
	for i, s := range steps {
		v[i] = figure(s)
	}
	return v
}

// AtLeast is the first sustained step at the lowest rate at or above rate,
// up to the highest rate the tool held: where the targets "at that rate"
// are read. A rate of the climb below the best one ran once: the rate held
// above it vouches for it.
func (r *Run) AtLeast(path, tool string, rate float64) *Step {
	best := r.Best(path, tool)
	if best == nil {
		return nil
	}
	var at *Step
	for i := range r.Steps {
		s := &r.Steps[i]
		if s.Path == path && s.Tool == tool && s.Sustained && !s.Profiled && s.Target >= rate && s.Target <= best.Target &&
			(at == nil || s.Target < at.Target) {
			at = s
		}
	}
	return at
}

// At is a tool's first sustained step at exactly rate, up to its best
// rate, with the medians of its sustained steps there (SustainedAt), or
// nil. The bench runs the rate CPU is compared at (TargetCPUVsPeerAt) as
// often as the best rate, so that two runs' figures there have a spread.
func (r *Run) At(path, tool string, rate float64) *Step {
	if at := r.AtLeast(path, tool, rate); at != nil && at.Target == rate {
		return medianStep(at, r.SustainedAt(path, tool, rate))
	}
	return nil
}

// SustainedAt are a tool's sustained unprofiled steps at one rate.
func (r *Run) SustainedAt(path, tool string, rate float64) []*Step {
	return slices.DeleteFunc(r.Repeated(path, tool, rate), func(s *Step) bool { return !s.Sustained })
}

// Fraction is the share of the best rate at which flowgate runs one more
// step, for its latency below the edge.
const Fraction = 0.8

// held is the first step of each rate a tool held.
func (r *Run) held(path, tool string) []*Step {
	var held []*Step
	for i := range r.Steps {
		s := &r.Steps[i]
		if s.Path == path && s.Tool == tool && !s.Profiled && r.Held(path, tool, s.Target) &&
			!slices.ContainsFunc(held, func(h *Step) bool { return h.Target == s.Target }) {
			held = append(held, s)
		}
	}
	return held
}

// Targets are what flowgate aims for on a 2-core machine with generator and
// receiver on the same box (issue 7; the peer targets of issue 16 below).
const (
	TargetFlows       = 150_000
	TargetVsGoflow    = 20
	TargetCPUPerFlow  = 5
	TargetRSSBytes    = 300 << 20
	targetsFormatName = "ipfix"

	TargetVsPeer      = 1.5
	TargetCPUVsPeer   = 1.0
	TargetCPUVsPeerAt = 200_000
	TargetP99EdgeMs   = 2000
	TargetP99BelowMs  = 1000
)

// WriteFiles writes the report and its plot into dir, named after the
// run's start, and refreshes dir's index; it returns the report's path.
// The bench writes them again as the run goes, so each file is replaced
// whole (replaceFile): a run killed while writing leaves the one before.
func WriteFiles(dir string, r *Run) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	stamp := r.Started.UTC().Format("2006-01-02-1504")
	md := filepath.Join(dir, stamp+".md")
	png := stamp + ".png"
	if err := replaceFile(filepath.Join(dir, png), func(w io.Writer) error { return WritePlot(w, r) }); err != nil {
		return "", fmt.Errorf("plot: %w", err)
	}
	if err := replaceFile(md, func(w io.Writer) error { return WriteMarkdown(w, r, png) }); err != nil {
		return "", err
	}
	return md, WriteIndex(dir)
}

// replaceFile writes path whole or not at all: into a file beside it,
// then renamed over it.
func replaceFile(path string, write func(io.Writer) error) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name()) // fails once renamed, as it should
	w := bufio.NewWriter(f)
	err = write(w)
	if err == nil {
		err = w.Flush()
	}
	if err == nil {
		err = f.Chmod(0o644) // CreateTemp's is 0600
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}

// WriteMarkdown writes the report; plot is the PNG's path relative to it.
func WriteMarkdown(w io.Writer, r *Run, plot string) error {
	p := &printer{w: w}
	p.f("# Benchmark run of %s\n\n", r.Started.UTC().Format("2006-01-02 15:04 MST"))
	p.f("Command: `%s`\n\n", r.Command)
	records := "as many records as fill a 1400-byte datagram"
	if r.Records > 0 {
		records = fmt.Sprintf("%d records per datagram", r.Records)
	}
	var formats []string
	for _, f := range r.Formats {
		formats = append(formats, strings.TrimPrefix(FlowPath(f), "flows "))
	}
	p.f("Flow traffic: %s from %d exporters, %s, %s per step; a rate counts as sustained when it held %d times; "+
		"generator, tools and receiving end on this one machine, traffic over loopback.\n\n",
		strings.Join(formats, ", "), r.Exporters, records, r.Duration, max(r.Repeats, 1))

	m := r.Machine
	p.f("## Machine\n\n| CPU | cores | memory | kernel | Go | load average at start |\n|---|---|---|---|---|---|\n")
	p.f("| %s | %d | %s | %s | %s | %s |\n\n", m.CPU, m.Cores, mib(m.Memory), m.Kernel, m.Go, m.LoadAvg)
	p.f("UDP socket receive buffers: %s by default, at most %s on request (net.core.rmem_default, rmem_max); "+
		"flowgate asks 32 MiB and gets it past rmem_max when it may (root, CAP_NET_ADMIN), nfacctd asks 32 MiB "+
		"and gets at most rmem_max, goflow2 asks nothing and gets the default.\n\n",
		kib(m.RmemDefault), kib(m.RmemMax))
	if r.BoxTimings > 0 {
		p.f(boxCalibration+"\n\n", r.Box, r.BoxTimings)
	}
	if len(r.Versions) > 0 {
		p.f("Tools: %s.\n\n", strings.Join(r.Versions, ", "))
	}
	switch {
	case r.CPUFromCgroups:
		p.f(cpuFromCgroups + "\n\n")
	case r.NoCgroup != "":
		p.f(cpuFromProc+" (no cgroup here: %s).\n\n", r.NoCgroup)
	default:
		p.f(cpuFromProc + ".\n\n")
	}

	p.f("## Highest rate sustained with zero loss\n\n")
	p.f("| path | tool | events/s | CPU µs/event | peak RSS | latency p50 / p99 | spread of the repeats | flowgate ÷ tool: throughput | CPU per event | RSS |\n")
	p.f("|---|---|---:|---:|---:|---:|---|---:|---:|---:|\n")
	for _, path := range r.Paths() {
		fg := r.Best(path, Flowgate)
		for _, tool := range r.Tools(path) {
			b := r.Best(path, tool)
			if b == nil {
				none := "none sustained"
				if r.Stopped != "" {
					// The tool's search may have been cut short.
					none = "none held before the run stopped"
				}
				p.f("| %s | %s | %s | | | | | | | |\n", path, tool, none)
				continue
			}
			ratios := " | | "
			if tool != Flowgate && fg != nil {
				ratios = fmt.Sprintf("%s | %s | %s", ratio(fg.Target, b.Target), ratio(fg.CPUPerEvent, b.CPUPerEvent), ratio(float64(fg.PeakRSS), float64(b.PeakRSS)))
			}
			p.f("| %s | %s | %s | %.2f | %s | %s | %s | %s |\n", path, PeerName(path, tool), count(b.Target), b.CPUPerEvent, mib(b.PeakRSS), latency(b),
				spread(r.Repeated(path, tool, b.Target)), ratios)
		}
	}
	p.f("\nThe figures are the median of the repeats at the rate; the spread gives every repeat's. " +
		"Throughput ratio above 1 and CPU or RSS ratios below 1 favour flowgate.\n\n")

	if slices.Contains(r.Paths(), FlowPath(targetsFormatName)) {
		writeTargets(p, r)
	}
	writePeerTargets(p, r)
	if plot != "" {
		p.f("![Delivered against offered load, and loss](%s)\n\n", plot)
	}

	p.f("## Every step\n\n")
	p.f("| path | tool | asked/s | offered/s | delivered/s | sent | delivered | lost | dup | kernel drops | CPU µs/event | peak RSS | p50 ms | p99 ms | drain s | sustained | box speed | note |\n")
	p.f("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---|\n")
	for _, s := range r.Steps {
		verdict := "no"
		if s.Sustained {
			verdict = "yes"
		}
		if s.Profiled {
			verdict += " (profiled)"
		}
		p.f("| %s | %s | %s | %s | %s | %d | %d | %d | %d | %d | %.2f | %s | %s | %s | %.1f | %s | %s | %s |\n",
			s.Path, PeerName(s.Path, s.Tool), count(s.Target), count(s.Offered), count(s.DeliveredRate), s.Sent, s.Delivered, s.Loss(), s.Duplicates,
			s.KernelDrops, s.CPUPerEvent, mib(s.PeakRSS), ms(s.P50Ms), ms(s.P99Ms), s.Drain.Seconds(), verdict, box(s.Box), s.Note)
	}
	p.f("\n")
	if r.ProfileTop != "" {
		p.f("## Where flowgate spends its CPU at its best rate\n\n")
		p.f("CPU profile of the profiled step (`%s`; `go tool pprof -top %s` for more):\n\n```\n%s\n```\n\n", r.ProfileFile, r.ProfileFile, strings.TrimSpace(r.ProfileTop))
	}
	if len(r.Skipped) > 0 || r.Stopped != "" {
		p.f("## Not measured\n\n")
		for _, s := range r.Skipped {
			p.f("- %s\n", s)
		}
		if r.Stopped != "" {
			p.f("- the rest of the run: it stopped: %s\n", r.Stopped)
		}
		p.f("\n")
	}
	p.f("## How to read it\n\n"+howToRead+"\n", SlowBox, SlowBox, SlowBox, SlowBox)
	return p.err
}

// boxCalibration is a format, read back by ReadMarkdown.
const boxCalibration = "The box's calibration (8 MiB of numbers written as text and compressed; half a million " +
	"dependent reads through 64 MiB): %s, the medians of the run's %d timings. " +
	"They tell whether two runs had a box alike, not by how much to correct a figure (the run of 2026-12-05 13:42 " +
	"had a box at 0.93 of 11:44's speed, and flowgate held 5%% more IPFIX in it); the ratios against the peers, read from steps taken in turn, hang on them less."

// How the tools' CPU was counted, as the report says it and reads it back.
const (
	cpuFromCgroups = "CPU counted from a cgroup of each step's own: every process the tool forked, those that ended during the step too (nfacctd's and sfacctd's writers)."
	cpuFromProc    = "CPU counted from /proc, of the tool's processes alive at the start and at the end of a step: those that ended in between are left out (nfacctd's and sfacctd's writers, forked every second to write the cache out, most of their work)"
)

// howToRead is a format: SlowBox fills its four %.2f.
const howToRead = `- *asked* is the rate the generator was given, *offered* what it reached, *delivered* the
  distinct events that came out divided by the time from the first send to the last arrival.
- *lost* = sent − distinct events out; *dup* are events that came out more than once. Every event
  carries its own identity, so both are exact.
- *sustained*: nothing lost or duplicated, the generator reached 97%% of the rate asked, and the
  last event came out within 2 s after the generator stopped, plus the time the tool holds events
  by design before writing them (nfacctd's print_refresh_time, 1 s); where the latency is measured
  (flowgate), its p99 was within 2 s too, which sees a backlog built mid-step and worked off before
  its end: no backlog grew during the step. flowgate's best rate is thus one where its p99 held
  its target of 2 s, by rule, and its targets against the peers are read there. The highest rate
  is found by doubling the rate, then bisecting between the highest rate passed and the lowest
  failed, one step per rate; the rate found then runs again, and counts only when it was sustained
  every time it ran: one pass at the edge followed by a miss is not a rate held, and the search
  goes on below it. A *near miss*
  (nothing lost or duplicated, the last event out within twice the time allowed) is not the
  verdict yet: the rate runs again, a second miss fails it, and a hold is followed by a third step
  that decides, so that one step decides no more against a rate than one step for it. The rates of the
  climb below it ran once: the rate held above them vouches for them. A step where the generator
  fell short of 97%% says nothing of the tool: it counts neither way and runs again once (short
  twice, the rate is beyond the generator); a step that failed while the box ran below %.2f of its
  speed (below) counts neither way either, and runs again up to twice. flowgate
  runs one more step at 80%% of its best rate, for its latency with headroom left (up to twice
  more while every step there ran on a box below %.2f and missed the rate or a p99 of 1 s), and
  each tool that held 200 000/s runs it as often as its best rate, for its CPU per event there
  (up to twice more while every step there ran on a box below %.2f). A rate's figures in
  the tables are the medians of its repeats, of those on a box at speed when there are any.
- *box speed*: two fixed pieces of work on one core, numbers written as text and compressed (the
  core's speed) and a walk through 64 MiB in random order (the memory's), each the median of five
  tries, timed just before the step and just after it; and, during the step, the same text work
  once a second on a thread of its own, timed by that thread's CPU clock (waiting for a core,
  which the tools' load causes, does not count), averaged over the step. The lowest of the five
  figures, each against the median of the steps before: 0.90 means the box ran a tenth slower.
  On a shared VM it drifts by tens of percent within minutes; a step's rate and latency move with
  it, its CPU per event less. Below %.2f before it, the step waits, up to a minute, for the box
  to come back; a neighbour that came during the step shows in the reading during it, noted
  when below that, or in the check after it. The receiving end's CPU per event, in flowgate's
  steps' notes, is the other witness.
- *CPU µs/event*: user + system CPU time of the tool's processes, from the start of sending to the
  end of draining, divided by the events delivered; read from the step's cgroup, or from
  /proc/PID/stat (see how, under the tools' versions). Reports before 2026-12-07 04:49 read /proc
  only, and left out pmacct's writers.
- *peak RSS*: VmHWM for a single process; for a tool that forks (nfacctd's plugins), the highest
  sum of their PSS sampled during the step, so that memory they share counts once.
- *receiving end* (flowgate's steps, in the note): the CPU the local stand-in for the intake
  spent per event, decompressing and counting: it shares the box with flowgate, as the real
  intake, remote, does not; the peers write files and have no receiving end.
- *latency*: from the appliance's receipt of a flow (its collectionTimeMilliseconds; one flow
  in eight, by sequence number) or the generator's sending of a message (syslog) to its arrival
  at the receiving end; goflow2 and nfacctd write files, whose latency is not measured.
- The peers write what they decode to a file: goflow2 as JSON (-format json -transport file),
  nfacctd with its print plugin as JSON (refreshed every second); their delivered events are the
  JSON objects of those files with an identity of the step. nfacctd holds its last partial buffer
  until more traffic comes or it stops: it is stopped (SIGINT, which flushes) before its final
  count. Where a peer lost events beyond the kernel's drops, they were lost inside it.
`

func writeTargets(p *printer, r *Run) {
	flows := FlowPath(targetsFormatName)
	fg, gf := r.Best(flows, Flowgate), r.Best(flows, "goflow2")
	p.f("## Targets (flowgate, IPFIX, 2 cores, generator and receiver on the same box)\n\n")
	p.f("| target | aim | reached | met |\n|---|---|---:|---|\n")
	if fg == nil {
		p.f("| zero-loss IPFIX flows/s end to end | ≥ %s | none | **no** |\n\n", count(TargetFlows))
		return
	}
	p.f("| zero-loss IPFIX flows/s end to end | ≥ %s | %s | %s |\n", count(TargetFlows), count(fg.Target), met(fg.Target >= TargetFlows))
	if gf != nil {
		x := fg.Target / gf.Target
		p.f("| throughput ÷ goflow2's (JSON) | ≥ %d× | %.1f× | %s |\n", TargetVsGoflow, x, met(x >= TargetVsGoflow))
	} else {
		p.f("| throughput ÷ goflow2's (JSON) | ≥ %d× | goflow2 not measured or sustained nothing | |\n", TargetVsGoflow)
	}
	// CPU and memory are read at the target rate (the first sustained step
	// at or above it), and at the best rate for the record.
	at := r.AtLeast(flows, Flowgate, TargetFlows)
	if at == nil {
		at = fg
	}
	p.f("| appliance CPU per flow, at %s flows/s | ≤ %d µs | %.2f µs (%.2f µs at %s) | %s |\n", count(at.Target), TargetCPUPerFlow, at.CPUPerEvent, fg.CPUPerEvent, count(fg.Target), met(at.CPUPerEvent <= TargetCPUPerFlow))
	p.f("| peak RSS at %s flows/s | ≤ %s | %s (%s at %s) | %s |\n\n", count(at.Target), mib(TargetRSSBytes), mib(at.PeakRSS), mib(fg.PeakRSS), count(fg.Target), met(at.PeakRSS <= TargetRSSBytes))
}

// writePeerTargets gives, for each path, flowgate against its peer
// (nfacctd, sfacctd for sFlow) in this run, and its latency at and below
// its best rate.
func writePeerTargets(p *printer, r *Run) {
	var rows []string
	row := func(path, target, aim, reached string, ok bool) {
		rows = append(rows, fmt.Sprintf("| %s | %s | %s | %s | %s |", path, target, aim, reached, met(ok)))
	}
	for _, path := range r.Paths() {
		fg := r.Best(path, Flowgate)
		if fg == nil {
			continue
		}
		peerName := PeerName(path, "nfacctd")
		if peer := r.Best(path, "nfacctd"); peer != nil {
			x := fg.Target / peer.Target
			row(path, "zero-loss rate ÷ "+peerName+"'s", fmt.Sprintf("≥ %.1f×", TargetVsPeer), fmt.Sprintf("%.2f× (%s ÷ %s)", x, count(fg.Target), count(peer.Target)), x >= TargetVsPeer)
			at := fmt.Sprintf("CPU per event ÷ %s's, both at %s/s", peerName, count(TargetCPUVsPeerAt))
			switch a, b := r.At(path, Flowgate, TargetCPUVsPeerAt), r.At(path, "nfacctd", TargetCPUVsPeerAt); {
			case a != nil && b != nil:
				x := a.CPUPerEvent / b.CPUPerEvent
				row(path, at, fmt.Sprintf("≤ %.2f", TargetCPUVsPeer), fmt.Sprintf("%.2f (%.2f ÷ %.2f µs)", x, a.CPUPerEvent, b.CPUPerEvent), x <= TargetCPUVsPeer)
			case a != nil:
				// A rate the peer did not hold has no CPU per event to
				// compare: what it spent went partly on flows it lost.
				rows = append(rows, fmt.Sprintf("| %s | %s | ≤ %.2f | %s did not hold %s/s | |", path, at, TargetCPUVsPeer, peerName, count(TargetCPUVsPeerAt)))
			}
			x = fg.CPUPerEvent / peer.CPUPerEvent
			row(path, fmt.Sprintf("CPU per event ÷ %s's, each at its best rate", peerName), fmt.Sprintf("≤ %.2f", TargetCPUVsPeer),
				fmt.Sprintf("%.2f (%.2f ÷ %.2f µs)", x, fg.CPUPerEvent, peer.CPUPerEvent), x <= TargetCPUVsPeer)
		}
		if fg.P99Ms < 0 {
			continue
		}
		below := RoundRate(Fraction * fg.Target)
		target := fmt.Sprintf("p99 receipt → intake at %.0f%% of the best rate (%s/s)", 100*Fraction, count(below))
		if at := r.At(path, Flowgate, below); at != nil {
			row(path, target, fmt.Sprintf("≤ %d ms", TargetP99BelowMs), fmt.Sprintf("%d ms", at.P99Ms), at.P99Ms <= TargetP99BelowMs)
		} else if len(r.Repeated(path, Flowgate, below)) > 0 {
			row(path, target, fmt.Sprintf("≤ %d ms", TargetP99BelowMs), "not sustained there", false)
		}
		row(path, fmt.Sprintf("p99 receipt → intake at the best rate (%s/s)", count(fg.Target)), fmt.Sprintf("≤ %d ms", TargetP99EdgeMs),
			fmt.Sprintf("%d ms", fg.P99Ms), fg.P99Ms <= TargetP99EdgeMs)
		row(path, "peak RSS at the best rate", "≤ "+mib(TargetRSSBytes), mib(fg.PeakRSS), fg.PeakRSS <= TargetRSSBytes)
	}
	if len(rows) == 0 {
		return
	}
	p.f("## Targets against the peers and for latency (flowgate, every path)\n\n")
	p.f("| path | target | aim | reached | met |\n|---|---|---|---:|---|\n%s\n\n", strings.Join(rows, "\n"))
}

// PeerName is how a peer is called on a path: pmacct's daemon for sFlow is
// sfacctd.
func PeerName(path, tool string) string {
	if tool == "nfacctd" && path == FlowPath("sflow") {
		return "sfacctd"
	}
	return tool
}

func met(ok bool) string {
	if ok {
		return "yes"
	}
	return "**no**"
}

// WriteIndex rewrites dir/README.md: every report in dir, newest first.
func WriteIndex(dir string) error {
	reports, err := filepath.Glob(filepath.Join(dir, "*.md"))
	if err != nil {
		return err
	}
	var names []string
	for _, path := range reports {
		if name := filepath.Base(path); name != "README.md" {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	slices.Reverse(names)
	// What the index says of a report (": flows only, ...") was written by
	// hand after the run: it stays. An index that cannot be read is left
	// as it is: rewriting it would drop those words unseen.
	index := filepath.Join(dir, "README.md")
	old, err := os.ReadFile(index)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("results index: %w", err)
	}
	said := map[string]string{}
	for _, line := range strings.Split(string(old), "\n") {
		entry, listed := strings.CutPrefix(line, "- [")
		_, link, linked := strings.Cut(entry, "](")
		// A report listed twice keeps the words of its described line.
		if n, words, closed := strings.Cut(link, ")"); listed && linked && closed && words != "" {
			said[n] = words
		}
	}
	var b strings.Builder
	b.WriteString("# Benchmark results\n\nWritten by `go -C benchmarks run ./cmd/bench` (see ../README.md), newest first.\n\n")
	for _, n := range names {
		fmt.Fprintf(&b, "- [%s](%s)%s\n", strings.TrimSuffix(n, ".md"), n, said[n])
	}
	if len(names) == 0 {
		b.WriteString("No run yet.\n")
	}
	return replaceFile(index, func(w io.Writer) error {
		_, err := io.WriteString(w, b.String())
		return err
	})
}

type printer struct {
	w   io.Writer
	err error
}

func (p *printer) f(format string, args ...any) {
	if p.err == nil {
		_, p.err = fmt.Fprintf(p.w, format, args...)
	}
}

func ratio(a, b float64) string {
	if b == 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f×", a/b)
}

// spread gives the CPU per event, delivered rate and p99 latency of every
// repeat of a rate: how far apart runs of the same step land.
func spread(steps []*Step) string {
	if len(steps) < 2 {
		return "–"
	}
	var cpu, rate, p99, speed []string
	for _, s := range steps {
		cpu = append(cpu, fmt.Sprintf("%.2f", s.CPUPerEvent))
		if s.Box > 0 {
			speed = append(speed, box(s.Box))
		}
		rate = append(rate, count(s.DeliveredRate))
		if s.P99Ms >= 0 {
			p99 = append(p99, fmt.Sprint(s.P99Ms))
		}
	}
	out := fmt.Sprintf("%s µs; %s /s", strings.Join(cpu, ", "), strings.Join(rate, ", "))
	if len(p99) > 0 {
		out += fmt.Sprintf("; p99 %s ms", strings.Join(p99, ", "))
	}
	if len(speed) > 0 {
		out += fmt.Sprintf("; box speed %s", strings.Join(speed, ", "))
	}
	return out
}

// box writes a step's box speed.
func box(speed float64) string {
	if speed == 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f", speed)
}

func latency(s *Step) string {
	if s.P50Ms < 0 {
		return "not measured"
	}
	return fmt.Sprintf("%d / %d ms", s.P50Ms, s.P99Ms)
}

func ms(v int64) string {
	if v < 0 {
		return "–"
	}
	return fmt.Sprint(v)
}

func kib(b uint64) string {
	return fmt.Sprintf("%.0f KiB", float64(b)/(1<<10))
}

func mib(b uint64) string {
	return fmt.Sprintf("%.0f MiB", float64(b)/(1<<20))
}

// count writes a rate with thin thousands separators.
func count(v float64) string {
	s := fmt.Sprintf("%.0f", v)
	var out []byte
	for i := range len(s) {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, ' ')
		}
		out = append(out, s[i])
	}
	return string(out)
}

// RoundRate keeps three significant digits, for rates a reader can compare.
func RoundRate(r float64) float64 {
	unit := math.Pow(10, math.Floor(math.Log10(r))-2)
	return math.Round(r/unit) * unit
}
