package main

import (
	"bytes"
	"compress/flate"
	"math/rand/v2"
	"slices"
	"strconv"
	"time"

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
	text []byte
	out  bytes.Buffer
	w    *flate.Writer
	// ring is one cycle through all of its indexes in random order.
	ring []uint32
	at   uint32
}

// ringLen is the walk's length: 64 MiB of uint32, beyond the caches: on
// this box a step of the walk takes about 170 ns, a read from memory.
const ringLen = 16 << 20

func newCalibrator(n int) *calibrator {
	w, _ := flate.NewWriter(nil, flate.BestSpeed)
	return &calibrator{text: make([]byte, 0, 8<<20), w: w, ring: cycle(n)}
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
	buf := c.text[:0]
	for i := range 200_000 {
		buf = strconv.AppendUint(append(buf, `{"bytes":`...), uint64(i)*7919%100_003, 10)
		buf = append(append(buf, `,"port":`...), strconv.Itoa(i%65536)...)
		buf = append(buf, "}\n"...)
	}
	c.out.Reset()
	c.w.Reset(&c.out)
	_, _ = c.w.Write(buf)
	_ = c.w.Close()
	return time.Since(start)
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
