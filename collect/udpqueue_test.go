package collect

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/flowgate/flowgate/internal/apptest"
	"github.com/flowgate/flowgate/receiver/udp"
)

// recording is what the batchers of one run were given.
type recording struct {
	mu     sync.Mutex
	got    map[netip.Addr][]string     // sender -> payloads in order
	where  map[netip.Addr]map[int]bool // sender -> workers that took it
	n      int
	closed int
}

func (r *recording) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.n
}

// recorder is one worker's batcher: it records what it takes.
type recorder struct {
	worker int
	*recording
}

func (r recorder) add(d *datagram) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got[d.from] = append(r.got[d.from], string(d.data))
	if r.where[d.from] == nil {
		r.where[d.from] = map[int]bool{}
	}
	r.where[d.from][r.worker] = true
	r.n++
	return false
}

func (r recorder) flush() {}

func (r recorder) close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closed++
}

// TestUDPQueuesKeepExporterOrder sends from exporters numbered alike, with
// as many workers as sockets (each reader takes its own exporters), more
// (some datagrams queued to a worker with no socket) and fewer (some
// queued from the other sockets): each exporter's datagrams arrive once,
// in order, all at the worker it was picked.
func TestUDPQueuesKeepExporterOrder(t *testing.T) {
	for _, c := range []struct{ sockets, workers int }{{2, 2}, {1, 3}, {3, 1}} {
		t.Run(fmt.Sprintf("sockets=%d,workers=%d", c.sockets, c.workers), func(t *testing.T) {
			l, err := udp.Listen(udp.Config{Addr: "127.0.0.1:0", Sockets: c.sockets}, slog.New(slog.NewTextHandler(io.Discard, nil)))
			if err != nil {
				t.Fatal(err)
			}
			rec := &recording{got: map[netip.Addr][]string{}, where: map[netip.Addr]map[int]bool{}}
			made := 0
			pick := func(a netip.Addr) int { return udp.SocketOf(a, c.workers) }
			u := &udpQueues{listener: l, workers: c.workers, depth: 4, flushEvery: time.Hour, pick: pick}
			ctx, cancel := context.WithCancel(context.Background())
			t.Cleanup(cancel) // a lot not taken fails the test before the cancel below
			done := make(chan error, 1)
			go func() {
				done <- u.run(ctx, func() batcher {
					made++
					return recorder{worker: made - 1, recording: rec}
				})
			}()
			// Sent 50 at a time, each lot awaited, so that a small socket
			// buffer (net.core.rmem_max without CAP_NET_ADMIN) drops none.
			const exporters, datagrams, lot = 6, 200, 50
			port := l.Addr().(*net.UDPAddr).Port
			for e := range exporters {
				conn, err := net.DialUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, byte(1+e), 1)}, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port})
				if err != nil {
					t.Fatal(err)
				}
				for i := range datagrams {
					if _, err := conn.Write([]byte(strconv.Itoa(i))); err != nil {
						t.Fatal(err)
					}
					if (i+1)%lot == 0 {
						want := e*datagrams + i + 1
						if !apptest.Eventually(10*time.Second, func() bool { return rec.count() >= want }) {
							t.Fatalf("%d of the %d datagrams sent taken within 10 s", rec.count(), want)
						}
					}
				}
				conn.Close()
			}
			cancel()
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			if rec.closed != c.workers {
				t.Errorf("%d of %d batchers closed", rec.closed, c.workers)
			}
			if len(rec.got) != exporters {
				t.Fatalf("datagrams from %d exporters, want %d", len(rec.got), exporters)
			}
			for a, g := range rec.got {
				for i, s := range g {
					if s != strconv.Itoa(i) {
						t.Fatalf("%s: datagram %d is %q: lost, doubled or out of order", a, i, s)
					}
				}
				if len(g) != datagrams {
					t.Errorf("%s: %d datagrams, want %d", a, len(g), datagrams)
				}
				if w := pick(a); len(rec.where[a]) != 1 || !rec.where[a][w] {
					t.Errorf("%s: taken by workers %v, picked %d", a, rec.where[a], w)
				}
			}
		})
	}
}
