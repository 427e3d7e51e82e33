package main

import (
	"context"
	"log/slog"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"

	"github.com/flowgate/flowgate/config"
)

// memoryBaseBytes and memoryPerEventBytes turn MEMORY_MESSAGES into a
// memory limit: the runtime, the store's caches and the sockets, and for
// each event the record, its encoded form and the batch around it.
const (
	memoryBaseBytes     = 256 << 20
	memoryPerEventBytes = 1 << 10
)

// gcPercent is the garbage collector's target unless GOGC is set: the hot
// paths reuse their buffers, so the collector runs seldom (1.4% of CPU at
// 650 000 flows/s), and a heap that may grow half its live size rather than
// all of it cuts the resident memory by a fifth at no CPU that the
// benchmark can tell (sFlow at 350 000/s: 268/329 → 226/246 MiB, 2.88/3.23
// → 2.88/3.26 µs per flow).
const gcPercent = 50

// headroomShare is the least the heap may grow between two collections,
// as a share of the memory limit (1/20: 62 MiB under the default one),
// within maxGCPercent: a target set after a collection applies from the
// one before (a cleanup runs once its span is swept), so the target of a
// heap that was small must not let a heap that grew meanwhile triple. At
// the start of a syslog load, without the bound, the process went from
// 50 to 216 MiB within a second, where it then kept 140 MiB.
const (
	headroomShare = 20
	maxGCPercent  = 4 * gcPercent
)

// setMemoryTargets sets the Go runtime's soft memory limit from
// MEMORY_MESSAGES, unless GOMEMLIMIT says otherwise, and the collector's
// target, unless GOGC does: gcPercent, raised while the live heap is small
// (keepHeadroom) when the memory limit is flowgate's too.
func setMemoryTargets(ctx context.Context, c *config.Config, log *slog.Logger) {
	ownGC := os.Getenv("GOGC") == ""
	if ownGC {
		debug.SetGCPercent(gcPercent)
	}
	if v := os.Getenv("GOMEMLIMIT"); v != "" {
		log.Info("memory limit from GOMEMLIMIT", "limit", v)
		return
	}
	limit := memoryBaseBytes + int64(c.Buffer.MemoryMessages)*memoryPerEventBytes
	debug.SetMemoryLimit(limit)
	log.Info("memory limit from memory_messages", "limit_mib", limit>>20, "memory_messages", c.Buffer.MemoryMessages)
	if ownGC {
		onEachGC(ctx, keepHeadroom(uint64(limit/headroomShare)))
	}
}

// keepHeadroom returns what, run after a collection, sets the collector's
// target so that the heap may grow by floor bytes at least before the
// next: gcPercent of a small live heap is little. The syslog path keeps
// about 45 MiB live but allocates 330 MB/s at 300 000 messages/s, most of
// it nats-server's copies of each buffer message; under gcPercent alone it
// was collected 18 times a second, and each collection emptied the
// store's pools of block buffers, allocated and cleared again at 8 MiB
// each. Flows at their best rate keep about twice floor live, and their
// target stays near gcPercent (53-75 read after IPFIX at 500 000/s).
func keepHeadroom(floor uint64) func() {
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}, {Name: "/gc/gogc:percent"}}
	return func() {
		metrics.Read(s)
		want := uint64(gcPercent)
		if l := s[0].Value.Uint64(); l > 0 && l*gcPercent/100 < floor {
			want = min(floor*100/l, maxGCPercent)
		}
		if want != s[1].Value.Uint64() {
			debug.SetGCPercent(int(want))
		}
	}
}

// onEachGC runs f after each collection until ctx ends, on the goroutine
// of cleanups: an object unreachable from the start is collected by the
// next cycle, and its cleanup arms the next one.
func onEachGC(ctx context.Context, f func()) {
	// 16 bytes: a smaller object without pointers may share a block with
	// others and outlive the cycle.
	type sentinel [16]byte
	var arm func()
	arm = func() {
		runtime.AddCleanup(new(sentinel), func(struct{}) {
			if ctx.Err() == nil {
				f()
				arm()
			}
		}, struct{}{})
	}
	arm()
}
