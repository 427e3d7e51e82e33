package collect

import (
	"context"
	"net/netip"
	"sync"
	"time"

	"github.com/flowgate/flowgate/receiver/udp"
)

// datagram is a copy of a received packet on its way to a worker.
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

// udpQueues runs a UDP intake's receiving side: the listener's datagrams
// are copied onto the queue of one of the workers (pick chooses it by
// sender, so that one exporter's datagrams are taken in order), and each
// worker's batch goes to the buffer when full, every flushEvery, and at
// the end.
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

// run receives until ctx ends, then waits until every worker flushed.
func (u *udpQueues) run(ctx context.Context, newBatcher func() batcher) error {
	queues := make([]chan *datagram, max(u.workers, 1))
	var wg sync.WaitGroup
	for i := range queues {
		queues[i] = make(chan *datagram, max(u.depth, 1))
		b := newBatcher()
		wg.Go(func() { u.work(queues[i], b) })
	}
	err := u.listener.Run(ctx, func(p *udp.Packet) {
		if u.received != nil {
			u.received(p)
		}
		d, _ := u.pool.Get().(*datagram)
		if d == nil {
			d = &datagram{}
		}
		d.data = append(d.data[:0], p.Data...)
		d.from = p.From.Addr().Unmap()
		d.received = p.Received
		q := queues[0]
		if u.pick != nil {
			q = queues[u.pick(d.from)]
		}
		// Blocking here when a worker lags leaves the datagrams in the
		// socket buffer, where the kernel counts what it must drop.
		q <- d
	})
	for _, q := range queues {
		close(q)
	}
	wg.Wait()
	return err
}

func (u *udpQueues) work(q <-chan *datagram, b batcher) {
	defer b.close()
	tick := time.NewTicker(u.flushEvery)
	defer tick.Stop()
	for {
		select {
		case d, ok := <-q:
			if !ok {
				return
			}
			full := b.add(d)
			u.pool.Put(d)
			if full {
				b.flush()
			}
		case <-tick.C:
			b.flush()
		}
	}
}
