package load

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/flowgate/flowgate/benchmarks/internal/pace"
)

// ReplayConfig is a replay of captured datagrams.
type ReplayConfig struct {
	Target    netip.AddrPort
	Datagrams []Datagram
	// Exporters is how many sockets send; each sender of the capture keeps
	// one, so that its datagrams (templates first) arrive in order.
	Exporters int
	// Rate is in datagrams per second; the capture loops until Duration.
	Rate     float64
	Duration time.Duration
}

// Replay sends the captured datagrams again, paced, looping over the
// capture. Their records carry no benchmark identity: the receiving end
// counts events only.
func Replay(ctx context.Context, cfg ReplayConfig) (Summary, error) {
	if len(cfg.Datagrams) == 0 || cfg.Exporters < 1 || cfg.Rate <= 0 || cfg.Duration <= 0 {
		return Summary{}, errors.New("a replay needs datagrams, and positive exporters, rate and duration")
	}
	// Each sender of the capture goes to one exporter, in order of appearance.
	senders := map[netip.Addr]int{}
	for _, d := range cfg.Datagrams {
		if _, ok := senders[d.From.Addr()]; !ok {
			senders[d.From.Addr()] = len(senders) % cfg.Exporters
		}
	}
	conns, desc, err := sources(cfg.Target, min(cfg.Exporters, len(senders)))
	if err != nil {
		return Summary{}, err
	}
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	batches := make([]*batchSender, len(conns))
	pending := make([]int, len(conns))
	for i, c := range conns {
		batches[i] = newBatchSender(c, cfg.Target)
	}
	flush := func(i int) (int, error) {
		n, err := batches[i].send(pending[i])
		pending[i] = 0
		return n, err
	}
	next := 0
	res, err := pace.Run(ctx, cfg.Rate, cfg.Duration, func(n int) (int, error) {
		n = min(n, batchSize)
		for range n {
			d := cfg.Datagrams[next]
			next = (next + 1) % len(cfg.Datagrams)
			i := senders[d.From.Addr()]
			batches[i].bufs[pending[i]] = d.Payload
			pending[i]++
			if pending[i] == batchSize {
				if _, err := flush(i); err != nil {
					return 0, err
				}
			}
		}
		for i := range batches {
			if pending[i] > 0 {
				if _, err := flush(i); err != nil {
					return 0, err
				}
			}
		}
		return n, nil
	})
	sum := Summary{Format: "replay", Exporters: len(conns), Sources: fmt.Sprintf("%s (%d senders in the capture)", desc, len(senders)),
		TargetRate: cfg.Rate, Datagrams: res.Sent}
	sum.span([]pace.Result{res})
	return sum, err
}
