package collect

import (
	"context"
	"net/netip"
	"sync"
	"time"

	"github.com/flowgate/flowgate/receiver/udp"
)

// datagram is a received packet on its way to a worker's batcher.
type datagram struct {
	data     []byte
	from     netip.Addr
	received time.Time
}

// batcher is one worker's side of a UDP intake: it takes datagrams into
// the batch it gathers for the buffer, and publishes that batch when
// asked.
type batcher interface {
	// add takes a datagram (its bytes are reused after the call) and
	// says whether the batch is big enough to go.
	add(d *datagram) (full bool)
	// flush publishes the batch, if not empty, and starts a new one.
	flush()
	// close flushes for the last time and lets go of the publisher.
	close()
}

// udpQueues runs a UDP intake's receiving side. pick gives each sender a
// worker, so that one exporter's datagrams are taken in order; each
// worker's batch goes to the buffer when full, every flushEvery, and at
// the end.
//
// The reader of socket i hands the datagrams of worker i to its batcher
// itself: pick chooses as the kernel steers (udp.SocketOf), so with as
// many workers as sockets (the default) every datagram is taken where it
// was read, without a copy or a goroutine to wake for it: at low rates,
// where a read brings one or two datagrams, the wake-ups were a large
// share of the CPU. Datagrams of another worker (more workers than
// sockets, or a kernel that would not steer) are copied onto its queue.
type udpQueues struct {
	listener   *udp.Listener
	workers    int
	depth      int
	flushEvery time.Duration
	pick       func(netip.Addr) int
	// received, when set, sees each packet as it arrives.
	received func(*udp.Packet)
	pool     sync.Pool
}

// worker is a batcher, fed by its queue and by the reader of its socket.
type worker struct {
	mu sync.Mutex
	b  batcher
	q  chan *datagram
}

// take adds d to the batch, publishing it when full.
func (w *worker) take(d *datagram) {
	w.mu.Lock()
	if w.b.add(d) {
		w.b.flush()
	}
	w.mu.Unlock()
}

// run receives until ctx ends, then waits until every worker flushed.
func (u *udpQueues) run(ctx context.Context, newBatcher func() batcher) error {
	workers := make([]*worker, max(u.workers, 1))
	var wg sync.WaitGroup
	for i := range workers {
		w := &worker{b: newBatcher(), q: make(chan *datagram, max(u.depth, 1))}
		workers[i] = w
		wg.Go(func() { u.work(w) })
	}
	// One datagram per socket for the reader's own worker: a socket's
	// packets are handled one at a time.
	own := make([]datagram, u.listener.Sockets())
	err := u.listener.Run(ctx, func(p *udp.Packet) {
		if u.received != nil {
			u.received(p)
		}
		from := p.From.Addr().Unmap()
		i := 0
		if u.pick != nil {
			i = u.pick(from)
		}
		if i == p.Socket {
			d := &own[i]
			d.data, d.from, d.received = p.Data, from, p.Received
			workers[i].take(d)
			return
		}
		d, _ := u.pool.Get().(*datagram)
		if d == nil {
			d = &datagram{}
		}
		d.data = append(d.data[:0], p.Data...)
		d.from = from
		d.received = p.Received
		// Blocking here when a worker lags leaves the datagrams in the
		// socket buffer, where the kernel counts what it must drop.
		workers[i].q <- d
	})
	for _, w := range workers {
		close(w.q)
	}
	wg.Wait()
	return err
}

func (u *udpQueues) work(w *worker) {
	defer func() {
		w.mu.Lock()
		w.b.close()
		w.mu.Unlock()
	}()
	tick := time.NewTicker(u.flushEvery)
	defer tick.Stop()
	for {
		select {
		case d, ok := <-w.q:
			if !ok {
				return
			}
			w.take(d)
			u.pool.Put(d)
		case <-tick.C:
			w.mu.Lock()
			w.b.flush()
			w.mu.Unlock()
		}
	}
}
