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
	"time"

	"github.com/flowgate/flowgate/buffer"
	"github.com/flowgate/flowgate/config"
	"github.com/flowgate/flowgate/decoder/flow"
	"github.com/flowgate/flowgate/enrich"
	pb "github.com/flowgate/flowgate/proto"
	"github.com/flowgate/flowgate/receiver/udp"
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

// Run receives until ctx ends, then publishes what the workers hold and
// waits until the buffer has taken it.
func (fi *FlowIntake) Run(ctx context.Context) error {
	// The listener closes when Run ends: a reload may bind the port again.
	defer fi.m.parent.unwatchListener(fi.listener)
	u := &udpQueues{listener: fi.listener, workers: fi.cfg.Workers, depth: fi.cfg.QueueDatagrams, flushEvery: fi.cfg.FlushInterval,
		pick: fi.worker, received: func(p *udp.Packet) {
			fi.m.packets.Inc()
			fi.m.bytes.Add(float64(len(p.Data)))
		}}
	return u.run(ctx, fi.newBatcher)
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

// flowBatcher decodes and enriches one worker's datagrams into records.
type flowBatcher struct {
	fi        *FlowIntake
	decode    decodeFunc
	pub       *buffer.Publisher
	batch     pb.Batch
	exporters exporterCache
}

func (fi *FlowIntake) newBatcher() batcher {
	return &flowBatcher{fi: fi, decode: fi.newDecoder(), pub: fi.buf.Publisher(fi.cfg.Subject, fi.m.published), exporters: exporterCache{}}
}

func (b *flowBatcher) records() int { return len(b.batch.Flows) + len(b.batch.Counters) }

func (b *flowBatcher) add(d *datagram) bool {
	fi := b.fi
	start := len(b.batch.Flows)
	e := fi.m.exporter(b.exporters, d.from, d.received)
	res, err := b.decode(d.data, d.from, d.received, &b.batch)
	if err != nil {
		fi.m.malformed(err)
		fi.log.Debug("datagram refused", "exporter", d.from, "err", err)
		return false
	}
	fi.m.result(e, &res)
	for _, f := range b.batch.Flows[start:] {
		fi.enricher.Flow(f)
	}
	return b.records() >= fi.cfg.MaxFlowsPerMessage
}

func (b *flowBatcher) flush() {
	n := b.records()
	if n == 0 {
		return
	}
	data, err := b.batch.MarshalVT()
	if err != nil {
		b.fi.log.Error("encoding records for the buffer", "err", err)
		b.fi.m.dropped("encode", n)
	} else {
		b.pub.Publish(data, n)
	}
	b.batch.Flows, b.batch.Counters = b.batch.Flows[:0], b.batch.Counters[:0]
}

func (b *flowBatcher) close() {
	b.flush()
	b.pub.Close()
}

// malformedReason labels a decoding error.
func malformedReason(err error) string {
	if errors.Is(err, flow.ErrVersion) {
		return "unknown_version"
	}
	return "malformed"
}
