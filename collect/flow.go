// Package collect runs the receiving side of intakes: it binds the
// listeners, hands each exporter's datagrams in order to one decoding
// worker, enriches the records and publishes them to the buffer in
// batches; syslog connections are read and stored by a goroutine each,
// which stops reading while the buffer is full. It counts everything it
// receives, and everything it drops with the reason.
package collect

import (
	"context"
	"errors"
	"hash/maphash"
	"log/slog"
	"net/netip"
	"runtime"
	"strconv"
	"sync"
	"time"

	"github.com/flowgate/flowgate/buffer"
	"github.com/flowgate/flowgate/config"
	"github.com/flowgate/flowgate/decoder/flow"
	"github.com/flowgate/flowgate/decoder/udp"
	"github.com/flowgate/flowgate/enrich"
	pb "github.com/flowgate/flowgate/proto"
)

// FlowConfig describes a flow intake.
type FlowConfig struct {
	// Intake names the intake, for logs and metrics.
	Intake string
	// Protocol picks the decoder: config.ProtocolNetFlow (v5, v9, IPFIX)
	// or config.ProtocolSFlow.
	Protocol string
	// Subject is where its records go in the buffer.
	Subject string
	// Port is the UDP port (every address, IPv4 and IPv6).
	Port int
	// Sockets share the port (0: udp's default).
	Sockets int
	// Workers decode in parallel; one exporter always goes to the same one.
	Workers int
	// ReceiveBuffer is the socket buffer asked for (0: udp's default).
	ReceiveBuffer int
	// MaxFlowsPerMessage and FlushInterval bound how many records, and for
	// how long, a worker gathers before publishing them as one message.
	MaxFlowsPerMessage int
	FlushInterval      time.Duration
	// QueueDatagrams is how many datagrams wait for each worker; past
	// that, the socket keeps them (and the kernel counts what it drops).
	QueueDatagrams int
}

// DefaultFlowConfig returns the settings for a NetFlow intake on port.
func DefaultFlowConfig(intake string, port int) FlowConfig {
	return FlowConfig{
		Intake:             intake,
		Protocol:           config.ProtocolNetFlow,
		Subject:            buffer.Subject(intake),
		Port:               port,
		Workers:            runtime.GOMAXPROCS(0),
		MaxFlowsPerMessage: 256,
		FlushInterval:      50 * time.Millisecond,
		QueueDatagrams:     1024,
	}
}

// FlowIntake receives NetFlow v5, v9 and IPFIX, or sFlow, on one UDP port.
type FlowIntake struct {
	cfg       FlowConfig
	listener  *udp.Listener
	templates *flow.Templates
	enricher  *enrich.Enricher
	buf       *buffer.Buffer
	m         *intakeMetrics
	log       *slog.Logger
	seed      maphash.Seed
	packets   sync.Pool
}

// NewFlowIntake binds the intake's port.
func NewFlowIntake(cfg FlowConfig, templates *flow.Templates, enricher *enrich.Enricher, buf *buffer.Buffer, m *Metrics, log *slog.Logger) (*FlowIntake, error) {
	log = log.With("intake", cfg.Intake)
	if cfg.Workers <= 0 {
		cfg.Workers = runtime.GOMAXPROCS(0)
	}
	l, err := udp.Listen(udp.Config{Addr: ":" + strconv.Itoa(cfg.Port), ReceiveBuffer: cfg.ReceiveBuffer, Sockets: cfg.Sockets}, log)
	if err != nil {
		return nil, err
	}
	m.watchListener(cfg.Intake, l)
	return &FlowIntake{
		cfg:       cfg,
		listener:  l,
		templates: templates,
		enricher:  enricher,
		buf:       buf,
		m:         m.forIntake(cfg.Intake),
		log:       log,
		seed:      maphash.MakeSeed(),
	}, nil
}

// datagram is a copy of a received packet on its way to a worker.
type datagram struct {
	data     []byte
	from     netip.Addr
	received time.Time
}

// Run receives until ctx ends, then publishes what the workers hold and
// waits until the buffer has taken it.
func (fi *FlowIntake) Run(ctx context.Context) error {
	// The listener closes when Run ends: a reload may bind the port again.
	defer fi.m.parent.unwatchListener(fi.listener)
	queues := make([]chan *datagram, fi.cfg.Workers)
	var wg sync.WaitGroup
	for i := range queues {
		queues[i] = make(chan *datagram, max(fi.cfg.QueueDatagrams, 1))
		wg.Add(1)
		go func(q <-chan *datagram) {
			defer wg.Done()
			fi.work(q)
		}(queues[i])
	}
	err := fi.listener.Run(ctx, func(p *udp.Packet) {
		fi.m.packets.Inc()
		fi.m.bytes.Add(float64(len(p.Data)))
		d, _ := fi.packets.Get().(*datagram)
		if d == nil {
			d = &datagram{}
		}
		d.data = append(d.data[:0], p.Data...)
		d.from = p.From.Addr().Unmap()
		d.received = p.Received
		// Blocking here when a worker lags leaves the datagrams in the
		// socket buffer, where the kernel counts what it must drop.
		queues[fi.worker(d.from)] <- d
	})
	for _, q := range queues {
		close(q)
	}
	wg.Wait()
	return err
}

// worker picks the worker of an exporter: its datagrams are decoded in
// order, so a template is always seen before the data that needs it and
// sequence numbers are followed in one place.
func (fi *FlowIntake) worker(a netip.Addr) int {
	b := a.As16()
	return int(maphash.Bytes(fi.seed, b[:]) % uint64(fi.cfg.Workers))
}

// decodeFunc decodes one datagram of an exporter, appending its records.
type decodeFunc func(data []byte, exporter netip.Addr, received time.Time, batch *pb.Batch) (flow.Result, error)

// newDecoder returns a worker's decoder for the intake's protocol. Each
// protocol of the UDP pipeline (NetFlow/IPFIX, sFlow) has its decoder
// here; every one appends records and reports a flow.Result.
func (fi *FlowIntake) newDecoder() decodeFunc {
	dec := flow.NewDecoder(fi.templates)
	if fi.cfg.Protocol == config.ProtocolSFlow {
		return dec.DecodeSFlow
	}
	return dec.Decode
}

func (fi *FlowIntake) work(q <-chan *datagram) {
	decode := fi.newDecoder()
	pub := fi.buf.Publisher(fi.cfg.Subject, fi.m.published)
	defer pub.Close()
	var batch pb.Batch
	records := func() int { return len(batch.Flows) + len(batch.Counters) }
	flush := func() {
		n := records()
		if n == 0 {
			return
		}
		data, err := batch.MarshalVT()
		if err != nil {
			fi.log.Error("encoding records for the buffer", "err", err)
			fi.m.dropped("encode", n)
		} else {
			pub.Publish(data, n)
		}
		batch.Flows, batch.Counters = batch.Flows[:0], batch.Counters[:0]
	}
	tick := time.NewTicker(fi.cfg.FlushInterval)
	defer tick.Stop()
	exporters := exporterCache{}
	for {
		select {
		case d, ok := <-q:
			if !ok {
				flush()
				return
			}
			start, from := len(batch.Flows), d.from
			e := fi.m.exporter(exporters, from, d.received)
			res, err := decode(d.data, from, d.received, &batch)
			fi.packets.Put(d)
			if err != nil {
				fi.m.malformed(err)
				fi.log.Debug("datagram refused", "exporter", from, "err", err)
				continue
			}
			fi.m.result(e, &res)
			for _, f := range batch.Flows[start:] {
				fi.enricher.Flow(f)
			}
			if records() >= fi.cfg.MaxFlowsPerMessage {
				flush()
			}
		case <-tick.C:
			flush()
		}
	}
}

// malformedReason labels a decoding error.
func malformedReason(err error) string {
	if errors.Is(err, flow.ErrVersion) {
		return "unknown_version"
	}
	return "malformed"
}
