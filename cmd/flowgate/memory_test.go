package main

import (
	"context"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync/atomic"
	"testing"
	"time"
)

// After each collection the target is what lets the heap grow by the
// floor: gcPercent when half the live heap is more, maxGCPercent at most.
func TestHeadroomSetsTheTargetAfterEachCollection(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(gcPercent))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var keep atomic.Pointer[func()]
	ran := make(chan struct{}, 1)
	onEachGC(ctx, func() {
		(*keep.Load())()
		select {
		case ran <- struct{}{}:
		default:
		}
	})
	read := func() (live, percent uint64) {
		s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}, {Name: "/gc/gogc:percent"}}
		metrics.Read(s)
		return s[0].Value.Uint64(), s[1].Value.Uint64()
	}
	for _, c := range []struct {
		name   string
		floor  func(live uint64) uint64
		lo, hi uint64
	}{
		{"floor far above the heap", func(uint64) uint64 { return 1 << 40 }, maxGCPercent, maxGCPercent},
		{"floor under half the heap", func(uint64) uint64 { return 0 }, gcPercent, gcPercent},
		// Another collection may come between the two reads of the heap.
		{"floor the size of the heap", func(live uint64) uint64 { return live }, 80, 125},
	} {
		live, _ := read()
		k := keepHeadroom(c.floor(live))
		keep.Store(&k)
		select {
		case <-ran:
		default:
		}
		runtime.GC()
		select {
		case <-ran:
		case <-time.After(time.Minute):
			t.Fatalf("%s: nothing ran a minute after a collection", c.name)
		}
		if _, got := read(); got < c.lo || got > c.hi {
			t.Errorf("%s (live heap %d bytes): target %d%%, want %d-%d", c.name, live, got, c.lo, c.hi)
		}
	}
}
