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
	"log/slog"
	"net/netip"
	"runtime"
	"slices"
	"strconv"
	"time"

	"github.com/flowgate/flowgate/aggregate"
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
	// Subject is where its records go in the buffer (a subject, or a
	// buffer.Destination: one per output); "" (an intake without a key of
	// its own) drops what no route takes.
	Subject string
	// Routes send records to other subjects, or drop them.
	Routes Routes
	// Aggregate, when set, sums the records the intake keeps for its own
	// key over a window, each worker those of its exporters; a stop
	// publishes the open windows.
	Aggregate *config.Aggregate
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
	router    *router
	log       *slog.Logger
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
	im := m.forIntake(cfg.Intake)
	return &FlowIntake{
		cfg:       cfg,
		listener:  l,
		templates: templates,
		enricher:  enricher,
		buf:       buf,
		m:         im,
		router:    newRouter(cfg.Subject, cfg.Routes, im),
		log:       log,
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
// sequence numbers are followed in one place. It picks as the kernel picks
// the socket, so that a socket's reader decodes its own exporters.
func (fi *FlowIntake) worker(a netip.Addr) int {
	return udp.SocketOf(a, fi.cfg.Workers)
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
// The decoder appends to batch, the intake's own destination; records that
// routes send elsewhere move to routed, by destination.
type flowBatcher struct {
	fi        *FlowIntake
	decode    decodeFunc
	batch     pb.Batch
	routed    []pb.Batch
	pubs      []*buffer.Publisher
	exporters exporterCache
	// agg sums the records of the intake's own key, when it aggregates.
	agg *aggregate.Aggregator
}

func (fi *FlowIntake) newBatcher() batcher {
	b := &flowBatcher{fi: fi, decode: fi.newDecoder(), exporters: exporterCache{}, routed: make([]pb.Batch, len(fi.router.subjects))}
	if a := fi.cfg.Aggregate; a != nil {
		// The keys were checked when the configuration loaded.
		b.agg, _ = aggregate.New(a.Window, a.Keys)
	}
	for _, subject := range fi.router.subjects {
		var pub *buffer.Publisher
		if subject != "" {
			pub = fi.buf.Publisher(subject, fi.m.published)
		}
		b.pubs = append(b.pubs, pub)
	}
	return b
}

// destination is the batch of destination d: 0 is the decoder's own.
func (b *flowBatcher) destination(d int) *pb.Batch {
	if d == 0 {
		return &b.batch
	}
	return &b.routed[d]
}

func (b *flowBatcher) records() int {
	n := 0
	for d := range b.pubs {
		n += len(b.destination(d).Flows) + len(b.destination(d).Counters)
	}
	return n
}

// route moves the flows from start on that rules send elsewhere, and
// takes out those they drop. The decoder reuses the records past the end
// of its batch: a moved record's place is emptied, so that it is not
// reused while the other batch holds it.
func (b *flowBatcher) route(start int) {
	r := b.fi.router
	flows := b.batch.Flows
	kept := start
	for i := start; i < len(flows); i++ {
		f := flows[i]
		switch d := r.flow(f); {
		case d == 0:
			flows[kept], flows[i] = f, flows[kept]
			kept++
		case d > 0:
			b.routed[d].Flows = append(b.routed[d].Flows, f)
			flows[i] = nil
		}
	}
	// Places from kept on hold each record at most once: dropped ones
	// (reused), moved ones emptied.
	b.batch.Flows = flows[:kept]
}

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
	if fi.router.table != nil {
		b.route(start)
	}
	if fi.router.subjects[0] == "" && len(b.batch.Counters) > 0 {
		// sFlow counters take no route: without a key of its own the
		// intake has nowhere to send them.
		fi.router.noRoute.Add(float64(len(b.batch.Counters)))
		b.batch.Counters = b.batch.Counters[:0]
	}
	if b.agg != nil && b.fi.router.subjects[0] != "" {
		// Folded and taken back: the decoder reuses the records.
		for _, f := range b.batch.Flows[start:] {
			b.agg.Add(f, d.received)
		}
		b.batch.Flows = b.batch.Flows[:start]
	}
	return b.records() >= fi.cfg.MaxFlowsPerMessage
}

// flush publishes the batches, with the aggregated records of a window
// that has ended.
func (b *flowBatcher) flush() {
	if b.agg != nil && b.agg.Due(time.Now()) {
		b.emitWindow()
	}
	b.publish()
}

// emitWindow publishes the open window's records, MaxFlowsPerMessage a
// message.
func (b *flowBatcher) emitWindow() {
	recs := b.agg.Flush(nil)
	for len(recs) > 0 {
		n := min(len(recs), max(b.fi.cfg.MaxFlowsPerMessage-len(b.batch.Flows), 1))
		b.batch.Flows = append(b.batch.Flows, recs[:n]...)
		recs = recs[n:]
		if len(recs) > 0 {
			b.publish()
		}
	}
}

func (b *flowBatcher) publish() {
	for d, pub := range b.pubs {
		batch := b.destination(d)
		n := len(batch.Flows) + len(batch.Counters)
		if n == 0 {
			continue
		}
		data, err := marshalInto(pub.Buffer(), batch)
		if err != nil {
			b.fi.log.Error("encoding records for the buffer", "err", err)
			b.fi.m.dropped("encode", n)
		} else {
			pub.Publish(data, n)
		}
		batch.Flows, batch.Counters = batch.Flows[:0], batch.Counters[:0]
	}
}

// marshalInto encodes b into dst, grown when too small: the intakes
// encode their messages into buffers they reuse.
func marshalInto(dst []byte, b *pb.Batch) ([]byte, error) {
	n := b.SizeVT()
	dst = slices.Grow(dst[:0], n)[:n]
	_, err := b.MarshalToSizedBufferVT(dst)
	return dst, err
}

func (b *flowBatcher) close() {
	if b.agg != nil && b.agg.Len() > 0 {
		// A stop publishes the open window: what it summed is stored.
		b.emitWindow()
	}
	b.publish()
	for _, p := range b.pubs {
		if p != nil {
			p.Close()
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
