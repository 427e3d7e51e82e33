package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"sync"
	"syscall"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/flowgate/flowgate/buffer"
	"github.com/flowgate/flowgate/collect"
	"github.com/flowgate/flowgate/config"
	"github.com/flowgate/flowgate/decoder/flow"
	"github.com/flowgate/flowgate/enrich"
	"github.com/flowgate/flowgate/format"
	"github.com/flowgate/flowgate/httpd"
	"github.com/flowgate/flowgate/ship"
	"github.com/flowgate/flowgate/ship/file"
	"github.com/flowgate/flowgate/ship/https"
)

// eventsPerMessage is about how many records a buffer message holds; it
// turns an event budget into a message budget.
const eventsPerMessage = 256

// appliance is every component of a running configuration.
type appliance struct {
	log      *slog.Logger
	reg      *prometheus.Registry
	buf      *buffer.Buffer
	http     *httpd.Server
	intakes  []interface{ Run(context.Context) error }
	shippers []*ship.Shipper
	closers  []io.Closer
}

// runAppliance runs until SIGINT or SIGTERM, or until a component fails.
func runAppliance(c *config.Config, stdout, stderr io.Writer) error {
	log := slog.New(slog.NewTextHandler(stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	a, err := build(ctx, c, log)
	if a != nil {
		defer a.close()
	}
	if err != nil {
		return err
	}
	log.Info("flowgate started", "version", buildVersion(), "config", c.Source, "intakes", len(c.Intakes),
		"output", describeOutput(&c.Output), "buffer", c.Buffer.Dir, "http", a.http.Addr().String())
	return a.run(ctx)
}

// build opens and binds everything, so that any problem (a port in use, a
// store that cannot open) stops the start before anything runs.
func build(ctx context.Context, c *config.Config, log *slog.Logger) (*appliance, error) {
	for _, in := range c.Intakes {
		if in.Stats || in.Protocol != config.ProtocolNetFlow {
			return nil, fmt.Errorf("%s: line %d: intake %q: %s intakes are not available yet in this version (netflow)", c.Source, in.Line, in.Name, protocolName(in))
		}
	}
	a := &appliance{log: log, reg: prometheus.NewRegistry()}
	a.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{Namespace: "flowgate"}))
	var err error
	a.buf, err = buffer.Open(ctx, buffer.Config{Dir: c.Buffer.Dir, MaxBytes: int64(c.Buffer.DiskSpace)}, log)
	if err != nil {
		return a, err
	}
	a.http, err = httpd.New(c.HTTP.Listen, a.reg, log)
	if err != nil {
		return a, err
	}
	a.http.AddCheck("buffer", a.buf.Check)
	if c.HTTP.PProf {
		a.http.MountPProf()
		log.Warn("profiler on: /debug/pprof/ shows the process's internals to whoever reaches the http listener", "http", c.HTTP.Listen)
	}

	cm := collect.NewMetrics(a.reg, log)
	sm := ship.NewMetrics(a.reg)
	templates := flow.NewTemplates()
	enricher := enrich.New(enrich.DefaultConfig())
	var shared ship.Transport
	if c.Output.Transport == config.TransportFile {
		t, err := file.New(c.Output.Path)
		if err != nil {
			return a, err
		}
		shared = t
		a.closers = append(a.closers, t)
	}
	for _, in := range c.Intakes {
		fc := collect.DefaultFlowConfig(in.Name, in.Port)
		fi, err := collect.NewFlowIntake(fc, templates, enricher, a.buf, cm, log)
		if err != nil {
			return a, fmt.Errorf("intake %q: %w", in.Name, err)
		}
		a.intakes = append(a.intakes, fi)

		transport := shared
		scfg := ship.DefaultConfig(in.Name)
		if transport == nil {
			t, err := https.New(https.Config{
				URL:       config.HTTPSURL(c.Output.Endpoint),
				IntakeKey: in.IntakeKey,
				CAFile:    c.Output.CAFile,
				UserAgent: "flowgate/" + buildVersion(),
				Conns:     scfg.InFlight,
			})
			if err != nil {
				return a, fmt.Errorf("intake %q: %w", in.Name, err)
			}
			transport = t
			a.closers = append(a.closers, t)
		}
		cons, err := a.buf.Consume(ctx, fc.Subject, maxPendingMessages(c, in))
		if err != nil {
			return a, fmt.Errorf("intake %q: %w", in.Name, err)
		}
		a.shippers = append(a.shippers, ship.New(scfg, cons, ship.EncoderFunc(format.AppendFlow), transport, sm, log))
	}
	return a, nil
}

// maxPendingMessages is how many buffer messages an intake's shipper may
// hold: its share of MEMORY_MESSAGES, or its queue_size.
func maxPendingMessages(c *config.Config, in config.Intake) int {
	events := c.Buffer.MemoryMessages / len(c.Intakes)
	if in.QueueSize > 0 {
		events = in.QueueSize
	}
	return max(events/eventsPerMessage, 16)
}

func protocolName(in config.Intake) string {
	if in.Stats {
		return "stats"
	}
	return in.Protocol
}

// run starts the components and stops them in data-flow order: listeners
// first (what they hold goes to the buffer), then shippers, then the store.
func (a *appliance) run(ctx context.Context) error {
	failed := make(chan error, len(a.intakes)+len(a.shippers)+1)
	recvCtx, stopRecv := context.WithCancel(context.Background())
	shipCtx, stopShip := context.WithCancel(context.Background())
	httpCtx, stopHTTP := context.WithCancel(context.Background())
	defer stopRecv()
	defer stopShip()
	defer stopHTTP()
	var recv, shipping, monitoring sync.WaitGroup
	start := func(wg *sync.WaitGroup, ctx context.Context, name string, fn func(context.Context) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := fn(ctx); err != nil {
				failed <- fmt.Errorf("%s: %w", name, err)
			}
		}()
	}
	start(&monitoring, httpCtx, "http", a.http.Run)
	for _, s := range a.shippers {
		start(&shipping, shipCtx, "shipper", s.Run)
	}
	for _, in := range a.intakes {
		start(&recv, recvCtx, "intake", in.Run)
	}
	var err error
	select {
	case <-ctx.Done():
		a.log.Info("stopping")
	case err = <-failed:
		a.log.Error("stopping on a failure", "err", err)
	}
	stopRecv()
	recv.Wait()
	stopShip()
	shipping.Wait()
	stopHTTP()
	monitoring.Wait()
	close(failed)
	for e := range failed {
		err = errors.Join(err, e)
	}
	return err
}

func (a *appliance) close() {
	for _, c := range a.closers {
		_ = c.Close()
	}
	if a.buf != nil {
		a.buf.Close()
	}
}
