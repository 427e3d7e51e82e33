package report

import (
	"bytes"
	"errors"
	"image/png"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flowgate/flowgate/benchmarks/internal/procstat"
)

// sample is a run with two tools, one failed step, a rate sustained once
// and missed on its repeat, a profiled step and syslog.
func sample() *Run {
	step := func(path, tool string, rate float64, lost uint64, cpu float64, rss uint64, ok bool) Step {
		sent := uint64(rate * 30)
		return Step{Path: path, Tool: tool, Target: rate, Offered: rate, Sent: sent, Delivered: sent - lost, DeliveredRate: float64(sent-lost) / 31,
			CPUPerEvent: cpu, PeakRSS: rss, P50Ms: 400, P99Ms: 1100, Drain: 1500 * time.Millisecond, Sustained: ok}
	}
	r := &Run{
		Started: time.Date(2026, 5, 1, 12, 30, 0, 0, time.UTC), Command: "go -C benchmarks run ./cmd/bench",
		Machine: procstat.Machine{CPU: "Test CPU", Cores: 2, Memory: 24 << 30, Kernel: "Linux 6.1 amd64", Go: "go1.26.8", LoadAvg: "0.1 0.2 0.3"},
		Formats: []string{"ipfix"}, Exporters: 4, Records: 24, Duration: 30 * time.Second, Repeats: 2,
		Steps: []Step{
			step(flows, Flowgate, 100_000, 0, 4, 200<<20, true),
			step(flows, Flowgate, 100_000, 0, 4.2, 210<<20, true),
			step(flows, Flowgate, 200_000, 0, 3.5, 250<<20, true),
			step(flows, Flowgate, 200_000, 0, 3.6, 240<<20, true),
			step(flows, Flowgate, 300_000, 0, 3.2, 270<<20, true),
			step(flows, Flowgate, 300_000, 2_000, 3.2, 270<<20, false),
			step(flows, Flowgate, 400_000, 5_000, 3, 280<<20, false),
			step(flows, "goflow2", 10_000, 0, 90, 60<<20, true),
			step(flows, "goflow2", 10_000, 0, 91, 60<<20, true),
			step(flows, "goflow2", 20_000, 90_000, 80, 70<<20, false),
			step(PathSyslog, Flowgate, 50_000, 0, 6, 150<<20, true),
			step(PathSyslog, Flowgate, 50_000, 0, 6, 150<<20, true),
			step(flows, "nfacctd", 100_000, 0, 2, 300<<20, true),
			step(flows, "nfacctd", 100_000, 0, 2.1, 300<<20, true),
			step(flows, "nfacctd", 200_000, 9_000, 2, 900<<20, false),
			// The step at 80% of flowgate's best rate, for its latency.
			step(flows, Flowgate, 160_000, 0, 3.7, 230<<20, true),
		},
		Box:         BoxTiming{Text: 41200 * time.Microsecond, Memory: 88400 * time.Microsecond},
		BoxTimings:  19,
		ProfileFile: "2026-05-01-1230-flowgate-cpu.pprof",
		ProfileTop:  "flat  flat%\n1.2s 30% runtime.memmove",
		Skipped:     []string{"nfacctd: not installed (apt-get install pmacct)"},
	}
	p := step(flows, Flowgate, 200_000, 0, 3.9, 260<<20, true)
	p.Profiled = true
	r.Steps = append(r.Steps, p)
	for i := range r.Steps {
		if r.Steps[i].Path == PathSyslog {
			r.Steps[i].P50Ms, r.Steps[i].P99Ms = -1, -1
		}
	}
	r.Steps[3].P99Ms = 1300
	r.Steps[2].Box, r.Steps[3].Box = 1, 0.9
	for i := range r.Steps {
		if r.Steps[i].Target == 160_000 {
			r.Steps[i].P99Ms = 800
		}
	}
	// The box was busy: the generator fell short, which counts neither way.
	short := step(flows, Flowgate, 200_000, 50_000, 3.6, 240<<20, false)
	short.Offered = 150_000
	r.Steps = append(r.Steps, short)
	return r
}

func TestMarkdown(t *testing.T) {
	var b bytes.Buffer
	if err := WriteMarkdown(&b, sample(), "plot.png"); err != nil {
		t.Fatal(err)
	}
	md := b.String()
	for _, want := range []string{
		"| CPU | cores | memory |", "| Test CPU | 2 | 24576 MiB |",
		// Best rates: the profiled step, the failed 400k and the 300k
		// that failed its repeat do not count; the figures are the
		// repeats' medians.
		"| flows IPFIX | flowgate | 200 000 | 3.55 | 245 MiB | 400 / 1200 ms | 3.50, 3.60 µs; 193 548, 193 548 /s; p99 1100, 1300 ms; box speed 1.00, 0.90 |  | |  |",
		"| flows IPFIX | goflow2 | 10 000 | 90.50 | 60 MiB | 400 / 1100 ms | 90.00, 91.00 µs; 9 677, 9 677 /s; p99 1100, 1100 ms | 20.00× | 0.04× | 4.08× |",
		"| syslog | flowgate | 50 000 | 6.00 | 150 MiB | not measured | 6.00, 6.00 µs; 48 387, 48 387 /s |",
		"held 2 times;",
		"| zero-loss IPFIX flows/s end to end | ≥ 150 000 | 200 000 | yes |",
		"| throughput ÷ goflow2's (JSON) | ≥ 20× | 20.0× | yes |",
		"| appliance CPU per flow, at 160 000 flows/s | ≤ 5 µs | 3.70 µs (3.55 µs at 200 000) | yes |",
		"| peak RSS at 160 000 flows/s | ≤ 300 MiB | 230 MiB (245 MiB at 200 000) | yes |",
		"| flows IPFIX | flowgate | 400 000 | 400 000 | 386 935 | 12000000 | 11995000 | 5000 | 0 |",
		"| flows IPFIX | zero-loss rate ÷ nfacctd's | ≥ 1.5× | 2.00× (200 000 ÷ 100 000) | yes |",
		"| flows IPFIX | CPU per event ÷ nfacctd's, both at 200 000/s | ≤ 1.00 | nfacctd did not hold 200 000/s | |",
		"| flows IPFIX | CPU per event ÷ nfacctd's, each at its best rate | ≤ 1.00 | 1.73 (3.55 ÷ 2.05 µs) | **no** |",
		"| flows IPFIX | p99 receipt → intake at 80% of the best rate (160 000/s) | ≤ 1000 ms | 800 ms | yes |",
		"| flows IPFIX | p99 receipt → intake at the best rate (200 000/s) | ≤ 2000 ms | 1200 ms | yes |",
		"| flows IPFIX | peak RSS at the best rate | ≤ 300 MiB | 245 MiB | yes |",
		"yes (profiled)", "runtime.memmove", "nfacctd: not installed", "![Delivered against offered load, and loss](plot.png)",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q:\n%s", want, md)
		}
	}
}

// flows is the path of the sample's flows.
var flows = FlowPath("ipfix")

func TestHeldNeedsTheRepeatsAndMostSteps(t *testing.T) {
	r := sample()
	for _, c := range []struct {
		rate float64
		want bool
	}{{100_000, true}, {200_000, true}, {300_000, false}, {400_000, false}, {150_000, false}} {
		if got := r.Held(flows, Flowgate, c.rate); got != c.want {
			t.Errorf("Held(%.0f) = %v, want %v", c.rate, got, c.want)
		}
	}
	// A miss on a slow box counts neither way: 300k then ran once that
	// counts, and needs one more.
	r.Steps[5].Box = SlowBox - 0.01
	if r.Held(flows, Flowgate, 300_000) {
		t.Error("300k held on one step that counts")
	}
	r.Steps = append(r.Steps, r.Steps[4])
	if !r.Held(flows, Flowgate, 300_000) || r.Best(flows, Flowgate).Target != 300_000 {
		t.Error("300k not held after a miss on a slow box and two passes")
	}
	// A (near) miss that counts, outvoted by two holds; a second miss ties.
	r.Steps[5].Box = 1
	if !r.Held(flows, Flowgate, 300_000) {
		t.Error("300k not held after a pass, a miss and a pass")
	}
	r.Steps = append(r.Steps, r.Steps[5])
	if r.Held(flows, Flowgate, 300_000) {
		t.Error("300k held after two passes and two misses")
	}
	r.Steps = r.Steps[:len(r.Steps)-1]
	// Once is not enough when twice is asked.
	r.Steps = r.Steps[:1]
	if r.Held(flows, Flowgate, 100_000) || r.Best(flows, Flowgate) != nil {
		t.Error("a rate run once counts as held")
	}
	r.Repeats = 1
	if !r.Held(flows, Flowgate, 100_000) {
		t.Error("a rate run once does not count with Repeats 1")
	}
}

func TestFilesPlotAndIndex(t *testing.T) {
	dir := t.TempDir()
	// An older report already there is listed after the new one.
	if err := os.WriteFile(filepath.Join(dir, "2026-04-01-0900.md"), []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	// What the index said of it by hand stays, also when a bare line for
	// it was left beside the described one.
	const said = "- [2026-04-01-0900](2026-04-01-0900.md): flows only, stopped part way\n"
	if err := os.WriteFile(filepath.Join(dir, "README.md"), []byte("# Benchmark results\n\n"+said+"- [2026-04-01-0900](2026-04-01-0900.md)\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	path, err := WriteFiles(dir, sample())
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Base(path) != "2026-05-01-1230.md" {
		t.Fatalf("report at %s", path)
	}
	f, err := os.Open(filepath.Join(dir, "2026-05-01-1230.png"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	if b := img.Bounds(); b.Dx() < 600 || b.Dy() < 600 {
		t.Fatalf("plot of %v", b)
	}
	index, err := os.ReadFile(filepath.Join(dir, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	newer, older := strings.Index(string(index), "2026-05-01-1230.md"), strings.Index(string(index), "2026-04-01-0900.md")
	if newer < 0 || older < newer || !strings.Contains(string(index), said) || strings.Count(string(index), "2026-04-01-0900.md") != 1 {
		t.Fatalf("index:\n%s", index)
	}
}

func TestFilesAreReplacedWholeOrNotAtAll(t *testing.T) {
	// The bench writes the report again as the run goes: a write that
	// fails part way leaves the file before it, and nothing beside it.
	dir := t.TempDir()
	path := filepath.Join(dir, "2026-05-01-1230.md")
	if err := os.WriteFile(path, []byte("the report before\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	broken := errors.New("disk full")
	err := replaceFile(path, func(w io.Writer) error {
		if _, err := io.WriteString(w, strings.Repeat("half a report\n", 1<<14)); err != nil {
			return err
		}
		return broken
	})
	if !errors.Is(err, broken) {
		t.Fatalf("replaceFile = %v, want the writer's error", err)
	}
	if b, err := os.ReadFile(path); err != nil || string(b) != "the report before\n" {
		t.Errorf("after the failed write the file reads %.40q (%v), want the one before", b, err)
	}
	if entries, err := os.ReadDir(dir); err != nil || len(entries) != 1 {
		t.Errorf("files left in the directory: %v (%v), want the report alone", entries, err)
	}
	if err := replaceFile(path, func(w io.Writer) error { _, err := io.WriteString(w, "the report after\n"); return err }); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(path); string(b) != "the report after\n" || fi.Mode().Perm() != 0o644 {
		t.Errorf("after the write the file reads %q, mode %v; want the new report, 0644", b, fi.Mode().Perm())
	}
}

func TestRoundRate(t *testing.T) {
	for in, want := range map[float64]float64{187_500: 188_000, 12_345: 12_300, 1_562.5: 1_560, 150_000: 150_000} {
		if got := RoundRate(in); got != want {
			t.Errorf("RoundRate(%v) = %v, want %v", in, got, want)
		}
	}
}

func TestReadMarkdownGivesTheStepsBack(t *testing.T) {
	r := sample()
	r.CPUFromCgroups = true
	// pmacct on sFlow is sfacctd in the table, and nfacctd read back.
	r.Formats = append(r.Formats, "sflow")
	r.Steps = append(r.Steps, Step{Path: FlowPath("sflow"), Tool: "nfacctd", Target: 100_000, Offered: 100_000, Sent: 3_000_000,
		Delivered: 3_000_000, DeliveredRate: 96_774, CPUPerEvent: 4.9, PeakRSS: 180 << 20, P50Ms: -1, P99Ms: -1, Sustained: true})
	var b bytes.Buffer
	if err := WriteMarkdown(&b, r, ""); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "| flows sFlow | sfacctd | 100 000 |") {
		t.Fatalf("the step of pmacct on sFlow is not sfacctd's:\n%s", b.String())
	}
	back, err := ReadMarkdown(&b)
	if err != nil {
		t.Fatal(err)
	}
	if !back.CPUFromCgroups {
		t.Error("CPU counted from cgroups read back as from /proc")
	}
	if m, w := back.Machine, r.Machine; m.CPU != w.CPU || m.Cores != w.Cores || m.Kernel != w.Kernel || m.Go != w.Go {
		t.Errorf("the machine read back as %+v, want %+v", m, w)
	}
	if !back.Started.Equal(r.Started) || back.Repeats != r.Repeats || len(back.Steps) != len(r.Steps) ||
		back.Box != r.Box || back.BoxTimings != r.BoxTimings {
		t.Fatalf("read back %v, %d repeats, %d steps, box %v of %d; want %v, %d, %d, %v of %d", back.Started, back.Repeats, len(back.Steps),
			back.Box, back.BoxTimings, r.Started, r.Repeats, len(r.Steps), r.Box, r.BoxTimings)
	}
	for i, s := range back.Steps {
		w := r.Steps[i]
		// The table rounds the rates to whole events and the drain to a tenth.
		w.Offered, w.DeliveredRate, w.Drain = math.Round(w.Offered), math.Round(w.DeliveredRate), w.Drain.Round(100*time.Millisecond)
		if s != w {
			t.Errorf("step %d read back as\n%+v, want\n%+v", i, s, w)
		}
	}
	// Compared with itself, every figure is within any tolerance; a run
	// where flowgate held only 100k is not.
	var out bytes.Buffer
	if apart, err := WriteComparison(&out, r, back, 0); err != nil || apart != 0 ||
		!strings.Contains(out.String(), "The machine: Test CPU, 2 cores, Linux 6.1 amd64 in both runs.") {
		t.Fatalf("%d figures apart (%v):\n%s", apart, err, out.String())
	}
	// A run on another processor is told as such, and one whose CPU was
	// read from /proc.
	other := sample()
	other.Machine.CPU = "Other CPU"
	other.NoCgroup = "cgroup: mkdir: permission denied"
	out.Reset()
	if err := WriteMarkdown(&out, other, ""); err != nil ||
		!strings.Contains(out.String(), "\nCPU counted from /proc, of the tool's processes alive at the start and at the end of a step: "+
			"those that ended in between are left out (nfacctd's and sfacctd's writers, forked every second to write the cache out, "+
			"most of their work) (no cgroup here: cgroup: mkdir: permission denied).\n") {
		t.Fatalf("a report of CPU read from /proc (%v):\n%s", err, out.String())
	}
	out.Reset()
	if _, err := WriteComparison(&out, r, other, 0.10); err != nil ||
		!strings.Contains(out.String(), "**The machines differ**: Test CPU, 2 cores (Linux 6.1 amd64) in the first run, Other CPU, 2 cores (Linux 6.1 amd64) in the second") ||
		!strings.Contains(out.String(), "**CPU counted differently**: from cgroups in the first run, from /proc in the second") {
		t.Fatalf("the comparison of runs on two processors, CPU counted two ways (%v):\n%s", err, out.String())
	}
	// A report that names the model, read back from its file, beside one
	// that does not (those up to 2026-12-07-1827) cannot tell.
	named := sample()
	named.Machine.CPU = "Test CPU (family 25, model 17, stepping 1)"
	out.Reset()
	if err := WriteMarkdown(&out, named, ""); err != nil {
		t.Fatal(err)
	}
	namedBack, err := ReadMarkdown(&out)
	if err != nil || namedBack.Machine.CPU != named.Machine.CPU {
		t.Fatalf("a processor named with its model read back as %+v (%v)", namedBack.Machine, err)
	}
	out.Reset()
	if _, err := WriteComparison(&out, namedBack, back, 0.10); err != nil ||
		!strings.Contains(out.String(), "The machine: Test CPU (family 25, model 17, stepping 1) in the first run, Test CPU in the second, 2 cores: one report does not name the model") {
		t.Fatalf("the comparison of a report naming the model with one that does not (%v):\n%s", err, out.String())
	}
	slower := sample()
	for i := range slower.Steps {
		if slower.Steps[i].Tool == Flowgate && slower.Steps[i].Target == 200_000 {
			slower.Steps[i].Sustained = false
		}
	}
	out.Reset()
	apart, err := WriteComparison(&out, r, slower, 0.10)
	if err != nil || apart == 0 || !strings.Contains(out.String(), "| flows IPFIX | flowgate | events/s | 200 000 | 100 000 | -50.0% | **no** |") {
		t.Fatalf("%d figures apart (%v):\n%s", apart, err, out.String())
	}
	// The comparison says how fast the box ran in each.
	slower.Box = BoxTiming{Text: 41200 * time.Microsecond, Memory: 110500 * time.Microsecond}
	out.Reset()
	if _, err := WriteComparison(&out, r, slower, 0.10); err != nil ||
		!strings.Contains(out.String(), "took 41.2 ms and 88.4 ms in the first run, 41.2 ms and 110.5 ms in the second: the second ran at 0.80 of the first's speed") {
		t.Fatalf("the comparison of a run on a box a fifth slower (%v):\n%s", err, out.String())
	}
	slower.BoxTimings = 0
	out.Reset()
	if _, err := WriteComparison(&out, r, slower, 0.10); err != nil || !strings.Contains(out.String(), "The box: its calibration is not in both reports") {
		t.Fatalf("the comparison with a report that has no calibration (%v):\n%s", err, out.String())
	}
	if _, err := ReadMarkdown(strings.NewReader("# Benchmark run of 2026-05-01 12:30 UTC\n\nno steps\n")); err == nil {
		t.Error("a report without steps read")
	}
}

func TestMarkdownSaysTheStepBelowTheBestMissed(t *testing.T) {
	r := sample()
	for i := range r.Steps {
		if r.Steps[i].Target == 160_000 {
			r.Steps[i].Sustained = false
		}
	}
	var b bytes.Buffer
	if err := WriteMarkdown(&b, r, ""); err != nil {
		t.Fatal(err)
	}
	if want := "| flows IPFIX | p99 receipt → intake at 80% of the best rate (160 000/s) | ≤ 1000 ms | not sustained there | **no** |"; !strings.Contains(b.String(), want) {
		t.Errorf("report lacks %q", want)
	}
}

func TestAStoppedRunDoesNotSayNoneSustained(t *testing.T) {
	// A tool whose search the stop cut short has steps and no rate held:
	// the report must not say it sustained none.
	r := sample()
	r.Steps = r.Steps[:1]
	r.Stopped = "context canceled"
	var b strings.Builder
	if err := WriteMarkdown(&b, r, ""); err != nil {
		t.Fatal(err)
	}
	md := b.String()
	if strings.Contains(md, "none sustained") || !strings.Contains(md, "none held before the run stopped") ||
		!strings.Contains(md, "the rest of the run: it stopped: context canceled") {
		t.Errorf("a stopped run's report:\n%s", md)
	}
}

func TestLatencyIsABound(t *testing.T) {
	// At the edge a backlog has just begun to grow or not, and at 80% of
	// the best rate the p99 is of one step: each is judged against its
	// target in both runs, not against the other.
	r := sample()
	later := func(rate float64, p99 int64) *Run {
		l := sample()
		for i := range l.Steps {
			if l.Steps[i].Tool == Flowgate && l.Steps[i].Target == rate {
				l.Steps[i].P99Ms = p99
			}
		}
		return l
	}
	for _, c := range []struct {
		rate        float64
		p99         int64
		apart       int
		line        string
		description string
	}{
		{200_000, 1900, 0, "", "p99 at the best rate 1900 ms against about 1200"},
		{200_000, 2100, 1, "| 1 200 | 2 100 | +75.0% | **no** (both ≤ 2 000: a bound) |", "p99 at the best rate 2100 ms"},
		{160_000, 990, 0, "", "p99 at 80% of the best rate 990 ms against 800"},
		{160_000, 1010, 1, "| 800 | 1 010 | +26.2% | **no** (both ≤ 1 000: a bound) |", "p99 at 80% of the best rate 1010 ms"},
	} {
		var out bytes.Buffer
		if apart, err := WriteComparison(&out, r, later(c.rate, c.p99), 0.10); err != nil || apart != c.apart || !strings.Contains(out.String(), c.line) {
			t.Errorf("%s: %d figures apart (%v), want %d and %q:\n%s", c.description, apart, err, c.apart, c.line, out.String())
		}
	}
}

func TestRepeatsThatOverlapAreNotToldApart(t *testing.T) {
	// flowgate's best rate, 200 000/s, read 250 and 240 MiB in sample's
	// two repeats; a second run's median 11% above is apart only when its
	// repeats do not overlap the first's.
	r := sample()
	later := func(rss ...uint64) *Run {
		l := sample()
		for i := range l.Steps {
			if s := &l.Steps[i]; s.Tool == Flowgate && s.Target == 200_000 && !s.Profiled && s.Counts() {
				s.PeakRSS, rss = rss[0]<<20, rss[1:]
			}
		}
		return l
	}
	var out bytes.Buffer
	if apart, err := WriteComparison(&out, r, later(300, 245), 0.10); err != nil || apart != 0 ||
		!strings.Contains(out.String(), "| flows IPFIX | flowgate | peak RSS MiB | 245 | 272.50 | +11.2% | not told apart: the repeats overlap (240–250, 245–300) |") {
		t.Fatalf("repeats of 245 and 300 MiB against 240 and 250: %d figures apart (%v), want 0:\n%s", apart, err, out.String())
	}
	out.Reset()
	apart, err := WriteComparison(&out, r, later(300, 290), 0.10)
	if err != nil || apart != 3 || !strings.Contains(out.String(), "| flows IPFIX | flowgate | peak RSS MiB | 245 | 295 | +20.4% | **no** |") ||
		!strings.Contains(out.String(), "| flows IPFIX | nfacctd | RSS ÷ tool | 0.82 | 0.98 | +20.4% | **no** |") ||
		!strings.Contains(out.String(), "3 apart.\nOf flowgate's own ") || !strings.Contains(out.String(), "1 apart.\nOf the peers' and the ratios against them, ") ||
		!strings.HasSuffix(out.String(), "2 apart.\n") {
		t.Fatalf("repeats of 290 and 300 MiB against 240 and 250: %d figures apart (%v), want 3 (the RSS of flowgate's, its ratios to the peers' two):\n%s", apart, err, out.String())
	}
	// A peer's repeat whose RSS was not measured (0) gives its ratio no
	// range, rather than one that runs to infinity and overlaps anything.
	unmeasured := sample()
	for i := range unmeasured.Steps {
		if s := &unmeasured.Steps[i]; s.Tool == "nfacctd" && s.Target == 100_000 && s.CPUPerEvent == 2 {
			s.PeakRSS = 0
		}
	}
	out.Reset()
	if apart, err := WriteComparison(&out, r, unmeasured, 0.10); err != nil || apart != 2 ||
		!strings.Contains(out.String(), "| flows IPFIX | nfacctd | RSS ÷ tool | 0.82 | 1.63 | +100.0% | **no** |") {
		t.Fatalf("a peer's RSS not measured in one repeat: %d figures apart (%v), want 2 (its RSS and the ratio to it):\n%s", apart, err, out.String())
	}
}

func TestCPUAtTheComparedRateHasTheSpreadOfItsSteps(t *testing.T) {
	// flowgate held 200 000/s twice in sample: its CPU there is the median
	// of both steps, not the first's, and a second run 14% above it is apart
	// only when their steps do not overlap.
	with := func(cpu ...float64) *Run {
		r := sample()
		for i := range r.Steps {
			if s := &r.Steps[i]; s.Tool == Flowgate && s.Target == TargetCPUVsPeerAt && !s.Profiled && s.Sustained {
				s.CPUPerEvent, cpu = cpu[0], cpu[1:]
			}
		}
		return r
	}
	r := with(3, 4)
	if at := r.At(flows, Flowgate, TargetCPUVsPeerAt); at == nil || at.CPUPerEvent != 3.5 {
		t.Fatalf("CPU at 200 000/s of steps at 3 and 4 µs: %+v, want the median 3.5", at)
	}
	var out bytes.Buffer
	if _, err := WriteComparison(&out, r, with(3.9, 4.1), 0.10); err != nil ||
		!strings.Contains(out.String(), "| flows IPFIX | flowgate | CPU µs/event at 200 000/s | 3.50 | 4 | +14.3% | not told apart: the repeats overlap (3–4, 3.90–4.10) |") {
		t.Fatalf("steps at 3.9 and 4.1 µs against 3 and 4 (%v):\n%s", err, out.String())
	}
	out.Reset()
	if _, err := WriteComparison(&out, r, with(4.2, 4.4), 0.10); err != nil ||
		!strings.Contains(out.String(), "| flows IPFIX | flowgate | CPU µs/event at 200 000/s | 3.50 | 4.30 | +22.9% | **no** |") {
		t.Fatalf("steps at 4.2 and 4.4 µs against 3 and 4 (%v):\n%s", err, out.String())
	}
}

func TestRSSIsComparedAtTheHighestRateBothHeld(t *testing.T) {
	// nfacctd held 100 000/s in sample; a second run where it held
	// 200 000/s too gives its RSS at 100 000/s beside the one at each best
	// rate. flowgate held the same rate in both: nothing more for it.
	later := sample()
	for i := range later.Steps {
		if s := &later.Steps[i]; s.Tool == "nfacctd" && s.Target == 200_000 {
			s.Delivered, s.Sustained = s.Sent, true
			later.Steps = append(later.Steps, *s)
			break
		}
	}
	var out bytes.Buffer
	_, err := WriteComparison(&out, sample(), later, 0.10)
	if err != nil || !strings.Contains(out.String(), "| flows IPFIX | nfacctd | peak RSS MiB | 300 | 900 | +200.0% | **no** |") ||
		!strings.Contains(out.String(), "| flows IPFIX | nfacctd | peak RSS MiB at 100 000/s, the highest rate both runs held | 300 | 300 | +0.0% | yes |") ||
		strings.Contains(out.String(), "| flowgate | peak RSS MiB at") {
		t.Fatalf("nfacctd held 100 000/s, then 200 000/s (%v):\n%s", err, out.String())
	}
}

func TestFiguresAreOfTheStepsOnABoxAtSpeed(t *testing.T) {
	// sample's step at 160 000/s read 800 ms on a box without a reading.
	r := sample()
	var fast Step
	for i := range r.Steps {
		if s := &r.Steps[i]; s.Target == 160_000 {
			fast = *s
			s.Box, s.P99Ms, s.CPUPerEvent = 0.77, 1209, 4.5
		}
	}
	if at := r.At(flows, Flowgate, 160_000); at == nil || at.P99Ms != 1209 || at.CPUPerEvent != 4.5 {
		t.Fatalf("one step, on a slow box: %+v, want its own figures", at)
	}
	fast.Box, fast.P99Ms, fast.CPUPerEvent = 0.95, 600, 3.7
	r.Steps = append(r.Steps, fast)
	if at := r.At(flows, Flowgate, 160_000); at == nil || at.P99Ms != 600 || at.CPUPerEvent != 3.7 {
		t.Fatalf("a step on a slow box, one at speed: %+v, want the one at speed's figures, not their mean", at)
	}
}
