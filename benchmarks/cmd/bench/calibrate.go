package main

import (
	"bytes"
	"compress/flate"
	"strconv"
	"time"
)

// calibrate times a fixed piece of work like flowgate's (numbers written
// as text, then compressed) on one core, the best of five. On a shared
// VM the box's speed drifts by tens of percent within minutes; each step
// notes this figure against the steps' before, so that two steps, or two
// runs, can be told apart from a box that ran slower. Its 8 MiB stay in
// the caches: it sees the core's speed, not all of the memory's, which
// drifts too (the receiving end's CPU per event, in flowgate's steps'
// notes, is the other witness).
func calibrate() time.Duration {
	var out bytes.Buffer
	w, _ := flate.NewWriter(&out, flate.BestSpeed)
	buf := make([]byte, 0, 8<<20)
	best := time.Duration(-1)
	for range 5 {
		start := time.Now()
		buf = buf[:0]
		for i := range 200_000 {
			buf = strconv.AppendUint(append(buf, `{"bytes":`...), uint64(i)*7919%100_003, 10)
			buf = append(append(buf, `,"port":`...), strconv.Itoa(i%65536)...)
			buf = append(buf, "}\n"...)
		}
		out.Reset()
		w.Reset(&out)
		_, _ = w.Write(buf)
		_ = w.Close()
		if d := time.Since(start); best < 0 || d < best {
			best = d
		}
	}
	return best
}
