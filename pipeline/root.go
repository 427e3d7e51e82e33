// Package pipeline builds and runs one intake: its receiver (a syslog or
// flow listener, or the monitoring-events intake), which decodes, enriches
// and stores in the buffer, and its shippers, one per output of each of
// its keys, which take from the buffer and send. The appliance makes one
// per intake of its configuration and starts, swaps and stops them.
package pipeline

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flowgate/flowgate/buffer"
	"github.com/flowgate/flowgate/collect"
	"github.com/flowgate/flowgate/config"
	"github.com/flowgate/flowgate/decoder/flow"
	"github.com/flowgate/flowgate/enrich"
	"github.com/flowgate/flowgate/format"
	"github.com/flowgate/flowgate/monitoring"
	"github.com/flowgate/flowgate/receiver/httpintake"
	"github.com/flowgate/flowgate/ship"
	"github.com/flowgate/flowgate/tlsfiles"
)

const (
	// eventsPerMessage is about how many records a buffer message holds; it
	// turns an event budget into a message budget.
	eventsPerMessage = 256
	// recordsPerDatagram is about how many flow records a datagram holds.
	recordsPerDatagram = 24
	// setupTimeout bounds creating an intake's consumer in the store.
	setupTimeout = 30 * time.Second
)

// Config is one intake and what the appliance gives it.
type Config struct {
	Intake config.Intake
	// MemoryEvents is the events the intake may hold in memory: half on
	// the receiving side (datagrams waiting for a decoder, records being
	// gathered, messages on their way to the store), half the shipper's
	// (messages taken from the store and the batches made of them).
	MemoryEvents int
	// StopGrace is how long a stopping shipper waits for what is in flight
	// to be accepted.
	StopGrace time.Duration
}

// Dependencies are the appliance's components an intake uses.
type Dependencies struct {
	Buffer    *buffer.Buffer
	Templates *flow.Templates
	Collect   *collect.Metrics
	Ship      *ship.Metrics
	// Gatherer is what the monitoring-events intake reports on.
	Gatherer prometheus.Gatherer
	// Sources are the running intakes, for the monitoring-events intake.
	Sources func() []monitoring.Source
	// Transports are shared by the intakes that have the same output.
	Transports *Transports
	// TLS keeps the TLS intakes' files current.
	TLS *tlsfiles.Set
	// HTTPIntake counts the http intakes' requests.
	HTTPIntake *httpintake.Metrics
	// Geo enriches flows from the AS and country databases (nil: none).
	Geo *enrich.Geo
	// Stdout takes debug lines and the file output "-"; it must serialise
	// writers of whole lines.
	Stdout io.Writer
	Log    *slog.Logger
}

// receiver is the listening side of an intake: it runs until ctx ends,
// and, run on an ended context, unbinds at once.
type receiver interface{ Run(context.Context) error }

// Intake is one intake at work. Its listener is bound and its consumer
// open from New on; Start runs them.
type Intake struct {
	cfg  config.Intake
	recv receiver
	// ships are the shippings of the intake's keys, as Shippings lists
	// them: its own (absent when it has no key), then one per key its
	// routes send to, each once per output; an http intake's, one per key
	// and output. An http intake with intake_keys: any adds keys while it
	// runs: shipsMu guards ships, and shipCtx and failed start the
	// shippers added.
	ships   []*shipping
	shipsMu sync.Mutex
	shipCtx context.Context
	failed  func(error)
	deps    Dependencies
	// tls are a tls intake's files, watched until its end.
	tls *tlsfiles.Server

	stopRecv, stopShip context.CancelFunc
	recvDone           chan struct{}
	// stopOnce makes Stop and Close safe to call more than once.
	stopOnce sync.Once
}

// New binds an intake's listener, opens its consumer and makes its
// shipper, without starting them. On error nothing stays open.
func New(ctx context.Context, c Config, deps Dependencies) (*Intake, error) {
	in := c.Intake
	half := c.MemoryEvents / 2
	it := &Intake{cfg: in, deps: deps}
	var err error
	switch {
	case in.Kind == config.KindStats:
		it.recv = monitoring.New(monitoring.Config{Intake: in.Name, Subject: ownDestination(in), Interval: in.Report.Interval, Sources: deps.Sources},
			deps.Gatherer, deps.Buffer, deps.Collect.Produced(in.Name), deps.Log)
	case in.Kind.IsFlow():
		it.recv, err = flowReceiver(in, half, deps)
	case in.Kind == config.KindHTTP:
		it.recv, it.tls, err = it.httpReceiver(ctx, c)
	default: // tcp, udp, tls
		it.recv, it.tls, err = syslogReceiver(in, deps)
	}
	if err != nil {
		// Nothing is bound (recv holds a typed nil); an http intake may
		// have opened the shipping of keys.
		it.recv = nil
		it.Close()
		return nil, fmt.Errorf("intake %q: %w", in.Name, err)
	}
	// Each output of each key ships as an intake of its own, so that one
	// slow key or output does not hold up the others.
	ships := Shippings(in)
	// They share the intake's memory.
	share := c
	share.MemoryEvents = c.MemoryEvents / max(len(ships), 1)
	for _, k := range ships {
		s, err := openShipping(ctx, k, share, deps)
		if err != nil {
			it.Close()
			return nil, fmt.Errorf("intake %q: %w", k.Intake.Name, err)
		}
		it.ships = append(it.ships, s)
	}
	return it, nil
}

// flowReceiver binds a netflow or sflow intake.
func flowReceiver(in config.Intake, half int, deps Dependencies) (*collect.FlowIntake, error) {
	fc := collect.DefaultFlowConfig(in.Name, in.Port)
	fc.Subject, fc.Routes, fc.Aggregate = ownDestination(in), collectRoutes(in), in.Flow.Aggregate
	fc.Protocol = string(in.Kind)
	fc.ReceiveBuffer, fc.Sockets = int(in.UDP.ReceiveBuffer), in.UDP.Sockets
	if in.Flow.Workers > 0 {
		fc.Workers = in.Flow.Workers
	}
	fc.QueueDatagrams = min(fc.QueueDatagrams, max(half/2/fc.Workers/recordsPerDatagram, 64))
	return collect.NewFlowIntake(fc, deps.Templates, enrich.New(enrichConfig(in, deps.Geo)), deps.Buffer, deps.Collect, deps.Log)
}

// syslogReceiver binds a tcp, udp or tls intake; a tls intake's files are
// watched until the intake closes them.
func syslogReceiver(in config.Intake, deps Dependencies) (*collect.SyslogIntake, *tlsfiles.Server, error) {
	sc := collect.DefaultSyslogConfig(in.Name, string(in.Kind), in.Port)
	sc.Subject, sc.Routes = ownDestination(in), collectRoutes(in)
	if in.Stream != nil && in.Stream.MaxConnections > 0 {
		sc.MaxConnections = in.Stream.MaxConnections
	}
	if in.UDP != nil {
		sc.ReceiveBuffer, sc.Sockets = int(in.UDP.ReceiveBuffer), in.UDP.Sockets
	}
	var files *tlsfiles.Server
	if t := in.TLS; t != nil {
		var err error
		files, err = deps.TLS.Server(in.Name, t.CertFile, t.KeyFile, t.CAFile, t.RequireClientCert())
		if err != nil {
			return nil, nil, err
		}
		sc.TLS = files.Config()
	}
	if in.Debug {
		sc.Debug = inputDebug(deps.Stdout, config.MaskKey(in.IntakeKey))
	}
	si, err := collect.NewSyslogIntake(sc, deps.Buffer, deps.Collect, deps.Log)
	if err != nil {
		files.Close()
		return nil, nil, err
	}
	return si, files, nil
}

// inputDebug writes the debug line of each frame an intake receives,
// `[Input "MASKED"] frame`, control bytes escaped so that a frame stays one
// line, in one Write (w serialises the intakes' writers).
func inputDebug(w io.Writer, masked string) func(frame []byte) {
	prefix := `[Input "` + masked + `"] `
	return func(frame []byte) {
		line := make([]byte, 0, len(prefix)+len(frame)+1)
		line = format.AppendPrintable(append(line, prefix...), frame)
		_, _ = w.Write(append(line, '\n'))
	}
}

// enrichConfig is what enrichment applies to an intake's flows.
func enrichConfig(in config.Intake, geo *enrich.Geo) enrich.Config {
	cfg := enrich.Config{ScaleSampling: in.Flow.Scaling(), Geo: geo}
	if len(in.Flow.Exporters) > 0 {
		cfg.Exporters = make(map[netip.Addr]enrich.Exporter, len(in.Flow.Exporters))
	}
	for _, e := range in.Flow.Exporters {
		cfg.Exporters[e.Addr] = enrich.Exporter{Name: e.Name, SamplingRate: e.SamplingRate,
			SamplingOverride: e.SamplingOverride, Interfaces: e.Interfaces}
	}
	return cfg
}

// Config is the intake's configuration.
func (it *Intake) Config() config.Intake { return it.cfg }

// Status is the status of its shipper (of its own key, else of the first
// key its routes send to).
// Nil for an http intake that has not shipped to any key yet.
func (it *Intake) Status() *ship.Status {
	ships := it.shippings()
	if len(ships) == 0 {
		return nil
	}
	return ships[0].shipper.Status()
}

// Subjects are the buffer subjects of the keys the intake ships to, by
// their shippers' names.
func (it *Intake) Subjects() map[string]string {
	m := map[string]string{}
	for _, s := range it.shippings() {
		m[s.Intake.Name] = s.Subject
	}
	return m
}

// shippings are the intake's shippings as they are now.
func (it *Intake) shippings() []*shipping {
	it.shipsMu.Lock()
	defer it.shipsMu.Unlock()
	return slices.Clone(it.ships)
}

// Start runs the receiver and the shipper; failed is told of an error
// that ends either.
func (it *Intake) Start(failed func(error)) {
	var recvCtx context.Context
	recvCtx, it.stopRecv = context.WithCancel(context.Background())
	it.shipsMu.Lock()
	it.shipCtx, it.stopShip = context.WithCancel(context.Background())
	it.failed = failed
	for _, s := range it.ships {
		it.runShipper(s)
	}
	it.shipsMu.Unlock()
	it.recvDone = goRun(recvCtx, fmt.Sprintf("intake %q", it.cfg.Name), it.recv.Run, failed)
}

// runShipper starts a shipping's shipper; shipsMu is held.
func (it *Intake) runShipper(s *shipping) {
	s.done = goRun(it.shipCtx, fmt.Sprintf("intake %q: shipper of %s", it.cfg.Name, s.Subject), s.shipper.Run, it.failed)
}

func goRun(ctx context.Context, name string, fn func(context.Context) error, failed func(error)) chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := fn(ctx); err != nil {
			failed(fmt.Errorf("%s: %w", name, err))
		}
	}()
	return done
}

// StopReceiving stops the listener and waits until what it held went to
// the buffer.
func (it *Intake) StopReceiving() {
	if it.stopRecv == nil {
		return
	}
	it.stopRecv()
	<-it.recvDone
}

// Stop stops the listener, then the shipper (what is in flight gets
// StopGrace to be accepted), then closes the consumer and lets go of the
// transport.
func (it *Intake) Stop() {
	if it.stopRecv == nil {
		it.Close()
		return
	}
	it.StopReceiving()
	it.stopShip()
	for _, s := range it.shippings() {
		<-s.done
	}
	it.Close()
}

// Close undoes New for an intake that was not started (and ends the
// rest of one that was stopped): the listener is unbound (Run on an
// ended context returns at once, closing it), the consumer stopped, the
// transport released.
func (it *Intake) Close() {
	it.stopOnce.Do(func() {
		if it.recv != nil && it.stopRecv == nil {
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			_ = it.recv.Run(ctx)
		}
		for _, s := range it.shippings() {
			s.close(it.deps)
		}
		it.tls.Close()
	})
}

// Ready is the readiness of the intake's output: not paused, and not
// stalled while its buffer holds data.
func (it *Intake) Ready(stallAfter time.Duration) error {
	backlog, _, err := it.deps.Buffer.Backlog(context.Background())
	if err != nil {
		return err
	}
	ships := it.shippings()
	for _, s := range ships {
		if err := s.shipper.Status().Ready(backlog[s.Subject].Messages, stallAfter); err != nil {
			if len(ships) > 1 {
				return fmt.Errorf("%s: %w", s.Intake.Name, err)
			}
			return err
		}
	}
	return nil
}

// ShipStatus is the status of the shipper of one shipping.
type ShipStatus struct {
	Shipping
	Ship *ship.Status
}

// Ships are the statuses of the intake's shippers, in Shippings' order.
func (it *Intake) Ships() []ShipStatus {
	out := make([]ShipStatus, len(it.ships))
	for i, s := range it.ships {
		out[i] = ShipStatus{Shipping: s.Shipping, Ship: s.shipper.Status()}
	}
	return out
}
