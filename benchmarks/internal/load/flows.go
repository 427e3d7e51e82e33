// Package load sends the benchmarks' traffic to a collector on this
// machine: flow export datagrams from several exporters (generated, or the
// UDP payloads of a capture file), and syslog messages over TCP, each at a
// paced rate for a set time. Every generated event carries an identity
// (package ident) so that the receiving end can count what arrived.
package load

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"

	"github.com/flowgate/flowgate/benchmarks/internal/exporter"
	"github.com/flowgate/flowgate/benchmarks/internal/ident"
	"github.com/flowgate/flowgate/benchmarks/internal/pace"
)

// batchSize is how many datagrams one sendmmsg carries at most.
const batchSize = 64

// Summary is what a generator sent; the generators print it as JSON.
type Summary struct {
	Run    uint16 `json:"run"`
	Format string `json:"format"`
	// Exporters is how many sources sent (exporters or connections);
	// Sources says how they are told apart.
	Exporters int    `json:"exporters"`
	Sources   string `json:"sources"`
	// Records is how many records (flows, messages) a datagram holds.
	Records    int     `json:"records_per_datagram,omitempty"`
	TargetRate float64 `json:"target_rate"`
	// Events is how many flow records or messages were sent, Datagrams
	// how many datagrams (0 over TCP).
	Events    int64 `json:"events"`
	Datagrams int64 `json:"datagrams"`
	StartNs   int64 `json:"start_ns"`
	EndNs     int64 `json:"end_ns"`
	// Rate is the achieved rate, in events per second (datagrams per
	// second for a replay, whose records are not counted).
	Rate float64 `json:"rate"`
}

// FlowConfig is a run of generated flows.
type FlowConfig struct {
	Target    netip.AddrPort
	Format    exporter.Format
	Exporters int
	// Records per datagram; 0 fills a 1400-byte datagram.
	Records int
	// Rate is in flows per second over all exporters.
	Rate          float64
	Duration      time.Duration
	Run           uint16
	TemplateEvery time.Duration
}

// sources opens one UDP socket per exporter. Towards IPv4 loopback each
// exporter has its own address (127.0.0.2, .3, ...), as routers do; where
// that cannot be bound, they share the loopback address and differ by port,
// which collectors that key templates by address alone will mix up.
func sources(target netip.AddrPort, n int) ([]*net.UDPConn, string, error) {
	var conns []*net.UDPConn
	closeAll := func() {
		for _, c := range conns {
			c.Close()
		}
	}
	if target.Addr().Is4() && target.Addr().IsLoopback() && n <= 250 {
		for i := range n {
			a := netip.AddrFrom4([4]byte{127, 0, 0, byte(2 + i)})
			c, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(a, 0)))
			if err != nil {
				closeAll()
				conns = nil
				break
			}
			conns = append(conns, c)
		}
		if conns != nil {
			return conns, fmt.Sprintf("addresses 127.0.0.2-127.0.0.%d", 1+n), nil
		}
	}
	local := netip.IPv6Loopback()
	network := "udp6"
	if target.Addr().Is4() {
		local, network = netip.AddrFrom4([4]byte{127, 0, 0, 1}), "udp4"
	}
	for range n {
		c, err := net.ListenUDP(network, net.UDPAddrFromAddrPort(netip.AddrPortFrom(local, 0)))
		if err != nil {
			closeAll()
			return nil, "", fmt.Errorf("exporter socket: %w", err)
		}
		conns = append(conns, c)
	}
	return conns, "ports on " + local.String(), nil
}

// Flows sends generated flows: each exporter paces its share of the rate
// and sends its datagrams in batches.
func Flows(ctx context.Context, cfg FlowConfig) (Summary, error) {
	if cfg.Records == 0 {
		cfg.Records = exporter.DefaultRecords(cfg.Format)
	}
	if cfg.Records < 1 || cfg.Records > exporter.MaxRecords(cfg.Format) {
		return Summary{}, fmt.Errorf("records per datagram: %d is not between 1 and %d for %s", cfg.Records, exporter.MaxRecords(cfg.Format), cfg.Format)
	}
	if cfg.Exporters < 1 || cfg.Rate <= 0 || cfg.Duration <= 0 {
		return Summary{}, errors.New("exporters, rate and duration must be positive")
	}
	if total := cfg.Rate * cfg.Duration.Seconds(); total > ident.MaxSeq {
		return Summary{}, fmt.Errorf("%.0f flows in one run: more than the %d a run can number", total, ident.MaxSeq)
	}
	conns, desc, err := sources(cfg.Target, cfg.Exporters)
	if err != nil {
		return Summary{}, err
	}
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	var seq atomic.Uint32
	var datagrams atomic.Int64
	var wg sync.WaitGroup
	errs := make([]error, len(conns))
	results := make([]pace.Result, len(conns))
	perExporter := cfg.Rate / float64(cfg.Records) / float64(len(conns))
	for i, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			agent := c.LocalAddr().(*net.UDPAddr).AddrPort().Addr()
			e := exporter.New(exporter.Config{Format: cfg.Format, Agent: agent.Unmap(), Domain: uint32(i), TemplateEvery: cfg.TemplateEvery}, time.Now())
			s := newBatchSender(c, cfg.Target)
			results[i], errs[i] = pace.Run(ctx, perExporter, cfg.Duration, func(n int) (int, error) {
				n = min(n, batchSize)
				now := time.Now()
				for j := range n {
					first := seq.Add(uint32(cfg.Records)) - uint32(cfg.Records) + 1
					s.bufs[j] = e.Append(s.bufs[j][:0], now, cfg.Run, first, cfg.Records)
				}
				sent, err := s.send(n)
				datagrams.Add(int64(sent))
				return sent, err
			})
		}()
	}
	wg.Wait()
	sum := Summary{Run: cfg.Run, Format: string(cfg.Format), Exporters: len(conns), Sources: desc,
		Records: cfg.Records, TargetRate: cfg.Rate, Datagrams: datagrams.Load()}
	sum.Events = sum.Datagrams * int64(cfg.Records)
	sum.span(results)
	return sum, errors.Join(errs...)
}

// span sets the start, end and achieved rate from the exporters' results.
func (s *Summary) span(results []pace.Result) {
	var start, end time.Time
	for _, r := range results {
		if start.IsZero() || r.Start.Before(start) {
			start = r.Start
		}
		if e := r.Start.Add(r.Elapsed); e.After(end) {
			end = e
		}
	}
	s.StartNs, s.EndNs = start.UnixNano(), end.UnixNano()
	if d := end.Sub(start); d > 0 {
		n := s.Events
		if n == 0 {
			n = s.Datagrams
		}
		s.Rate = float64(n) / d.Seconds()
	}
}

// batchSender sends datagrams from one socket with sendmmsg.
type batchSender struct {
	pc interface {
		WriteBatch([]ipv4.Message, int) (int, error)
	}
	msgs []ipv4.Message
	bufs [][]byte
}

func newBatchSender(c *net.UDPConn, to netip.AddrPort) *batchSender {
	s := &batchSender{msgs: make([]ipv4.Message, batchSize), bufs: make([][]byte, batchSize)}
	// ipv4.Message and ipv6.Message are one type: only the socket's family differs.
	if to.Addr().Is4() {
		s.pc = ipv4.NewPacketConn(c)
	} else {
		s.pc = ipv6.NewPacketConn(c)
	}
	addr := net.UDPAddrFromAddrPort(to)
	for i := range s.msgs {
		s.msgs[i].Addr = addr
		s.msgs[i].Buffers = make([][]byte, 1)
		s.bufs[i] = make([]byte, 0, 1500)
	}
	return s
}

// maxSendRetries bounds how long a full socket send buffer is waited for.
const maxSendRetries = 1000

// send sends bufs[:n], all of them unless the socket fails.
func (s *batchSender) send(n int) (int, error) {
	for i := range n {
		s.msgs[i].Buffers[0] = s.bufs[i]
	}
	sent := 0
	for retries := 0; sent < n; {
		k, err := s.pc.WriteBatch(s.msgs[sent:n], 0)
		sent += max(k, 0)
		if err != nil {
			// The send buffer is full for a moment: the kernel drops
			// nothing at the sender, so wait and go on.
			if (errors.Is(err, syscall.ENOBUFS) || errors.Is(err, syscall.EAGAIN)) && retries < maxSendRetries {
				retries++
				time.Sleep(50 * time.Microsecond)
				continue
			}
			return sent, fmt.Errorf("sending to %s: %w", s.msgs[0].Addr, err)
		}
	}
	return sent, nil
}
