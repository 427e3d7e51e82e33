package main

import (
	"bytes"
	"compress/flate"
	"context"
	"math/rand/v2"
	"runtime"
	"slices"
	"strconv"
	"time"

	"golang.org/x/sys/unix"

	"github.com/flowgate/flowgate/benchmarks/internal/report"
)

// calibrator times two fixed pieces of work on one core, each the median
// of five tries (report.BoxTiming). On a shared VM the box's speed drifts
// by tens of percent within minutes; each step notes it against the steps'
// before, so that two steps, or two runs, can be told apart from a box that
// ran slower.
//
// The text is numbers written as text, then compressed, like flowgate's
// work: 8 MiB that stay in the caches, so it sees the core's speed. The
// memory is a walk through 64 MiB in random order, each read waiting for
// the one before: it sees the memory's speed, which drifts apart from the
// core's. In the flows-only run 2026-12-04-2219, IPFIX at 600 000/s ran
// with the receiving end at 1.9 µs/event where 1.27 was usual, while text
// read 1.01; the receiving end's and the store's maps are such walks.
//
// It holds the buffers, made once: the walk's 64 MiB take a second to
// build.
type calibrator struct {
	text *textWork
	// ring is one cycle through all of its indexes in random order.
	ring []uint32
	at   uint32
}

// ringLen is the walk's length: 64 MiB of uint32, beyond the caches: on
// this box a step of the walk takes about 170 ns, a read from memory.
const ringLen = 16 << 20

func newCalibrator(n int) *calibrator {
	return &calibrator{text: newTextWork(200_000), ring: cycle(n)}
}

// cycle returns a permutation of 0..n-1 that is a single cycle (Sattolo's
// algorithm), so that a walk that follows it visits every index before it
// comes back. Seeded: every run walks the same ring.
func cycle(n int) []uint32 {
	r := rand.New(rand.NewPCG(1, 2))
	ring := make([]uint32, n)
	for i := range ring {
		ring[i] = uint32(i)
	}
	for i := n - 1; i > 0; i-- {
		j := r.IntN(i)
		ring[i], ring[j] = ring[j], ring[i]
	}
	return ring
}

// measure times both pieces of work, five times each, and keeps the medians:
// the best of five picked a neighbour's quiet moments.
func (c *calibrator) measure() report.BoxTiming {
	var text, memory [5]time.Duration
	for i := range 5 {
		text[i] = c.timeText()
		memory[i] = c.timeMemory()
	}
	return report.BoxTiming{Text: median(text[:]), Memory: median(memory[:])}
}

func (c *calibrator) timeText() time.Duration {
	start := time.Now()
	c.text.do()
	return time.Since(start)
}

// textWork writes n numbers as text, as JSON lines, and compresses them
// (about 40 bytes a number), into buffers it keeps.
type textWork struct {
	n   int
	buf []byte
	out bytes.Buffer
	w   *flate.Writer
}

func newTextWork(n int) *textWork {
	w, _ := flate.NewWriter(nil, flate.BestSpeed)
	return &textWork{n: n, buf: make([]byte, 0, 40*n), w: w}
}

func (t *textWork) do() {
	buf := t.buf[:0]
	for i := range t.n {
		buf = strconv.AppendUint(append(buf, `{"bytes":`...), uint64(i)*7919%100_003, 10)
		buf = append(append(buf, `,"port":`...), strconv.Itoa(i%65536)...)
		buf = append(buf, "}\n"...)
	}
	t.buf = buf
	t.out.Reset()
	t.w.Reset(&t.out)
	_, _ = t.w.Write(buf)
	_ = t.w.Close()
}

// timeMemory walks half a million steps of the ring, from where the last walk
// stopped: about 0.09 s on this kind of machine.
func (c *calibrator) timeMemory() time.Duration {
	start := time.Now()
	at := c.at
	for range 1 << 19 {
		at = c.ring[at]
	}
	c.at = at
	return time.Since(start)
}

// stepProbe reads the box's speed while a step runs. The calibrations just
// before and just after a step do not see a neighbour that comes and goes
// within it: in the full run 2026-12-06-1038, sFlow at 525 000/s failed on
// a box read 0.91, flowgate at 2.89 µs/flow and its receiving end at 1.89
// µs/event, where 2.14 and 1.36 in the step that held the rate minutes
// before; that failure counted, and the search settled 12% below 0808's.
//
// Once a second, on a thread it holds for the sample, it writes 20 000
// numbers as text and compresses them, twice to warm the core's caches and
// once timed, and reads the time from the thread's CPU clock, not the wall
// clock: the tools keep both cores busy during a step, and time spent
// waiting for a core is not the box's speed, while a neighbour on the
// core's caches or on its hyperthread, or a vCPU the hypervisor pauses,
// lengthens the thread's CPU time as it lengthens the tools'. On this box
// the timed piece took 3.54 ms on an idle box, 3.69 with both cores busy
// and 3.67 beside a walk through memory: the tools' load moves it 4%, a
// slow box 20% and more. It costs about 1% of one core. In the full run
// 2026-12-06-1331 it read 0.53-0.89 in 16 of the peers' steps (nfacctd
// past its limit, goflow2 at 25 000 sFlow/s) where the checks before and
// after read no lower, and 0.93-1.09 in flowgate's up to 800 000/s; in
// 1637, below 0.90 in 10 of flowgate's steps, 8 of nfacctd's and 2 of
// goflow2's. What slows it then is not known. Not its size: beside nfacctd
// at 500 000 sFlow/s, the same work on 200, 2 000 and 20 000 numbers (8 KiB,
// the core's L1, to 800 KiB) took 19%, 28% and 23% longer than before the
// step. Nor the kernel's network work, though this kernel charges
// interrupt time to the thread it lands on (CONFIG_IRQ_TIME_ACCOUNTING is
// unset): through 1637 both cores spent 0.3 to 7 ticks a second of 200 in
// softirq, 3.1 in the steps the probe read below 0.90 and 3.3 in the
// others. A failure on such a reading counts neither way, for flowgate as
// for the peers.
type stepProbe struct {
	text *textWork
}

func newStepProbe() *stepProbe { return &stepProbe{text: newTextWork(20_000)} }

// run samples every interval until ctx ends, and returns the timed piece's
// mean CPU time over the samples: a box slow for a third of the step reads
// slow by a third of the slowdown. Zero when ctx ended before a sample.
func (p *stepProbe) run(ctx context.Context, every time.Duration) time.Duration {
	var sum time.Duration
	n := 0
	for {
		select {
		case <-ctx.Done():
			if n == 0 {
				return 0
			}
			return sum / time.Duration(n)
		case <-time.After(every):
		}
		sum += p.sample()
		n++
	}
}

// sample warms the core with the text work twice, then returns the CPU time
// the third took, on a thread it holds: a goroutine moved to another thread
// between the two readings of the clock reads the difference of two threads'
// times (TestStepProbe, which called it unheld, read −0.28 to −1.05 s in 6
// of 300 runs beside a bench run).
func (p *stepProbe) sample() time.Duration {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	p.text.do()
	p.text.do()
	start := threadCPU()
	p.text.do()
	return threadCPU() - start
}

// threadCPU is the CPU time of the calling thread.
func threadCPU() time.Duration {
	var ts unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts)
	return time.Duration(ts.Nano())
}

func median(d []time.Duration) time.Duration {
	s := slices.Sorted(slices.Values(d))
	return s[len(s)/2]
}

// medianTiming is the median of each piece of work over ts (zero for none).
func medianTiming(ts []report.BoxTiming) report.BoxTiming {
	if len(ts) == 0 {
		return report.BoxTiming{}
	}
	var text, memory []time.Duration
	for _, t := range ts {
		text, memory = append(text, t.Text), append(memory, t.Memory)
	}
	return report.BoxTiming{Text: median(text), Memory: median(memory)}
}
