package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"os"
	"os/signal"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/flowgate/flowgate/buffer"
	"github.com/flowgate/flowgate/collect"
	"github.com/flowgate/flowgate/config"
	"github.com/flowgate/flowgate/decoder/flow"
	"github.com/flowgate/flowgate/enrich"
	"github.com/flowgate/flowgate/format"
	"github.com/flowgate/flowgate/httpd"
	"github.com/flowgate/flowgate/sdnotify"
	"github.com/flowgate/flowgate/ship"
	"github.com/flowgate/flowgate/ship/file"
	"github.com/flowgate/flowgate/ship/https"
	"github.com/flowgate/flowgate/ship/relp"
	"github.com/flowgate/flowgate/ship/syslog"
	"github.com/flowgate/flowgate/stats"
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
	notify   *sdnotify.Notifier
	intakes  []interface{ Run(context.Context) error }
	shippers []*ship.Shipper
	closers  []io.Closer
	// persister saves what the intakes learn; it stops after them.
	persister *flow.Persister
	// transports are the outputs' transports, by output and key.
	transports map[string]ship.Transport
	stdout     *lineWriter
}

// runAppliance runs until SIGINT or SIGTERM, or until a component fails.
func runAppliance(c *config.Config, stdout, stderr io.Writer) error {
	// The status page shows each intake's last warnings and errors.
	errs := httpd.NewErrorLog()
	log := slog.New(errs.Handler(slog.NewTextHandler(stderr, nil)))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	a, err := build(ctx, c, log, stdout, errs)
	if a != nil {
		defer a.close()
	}
	if err != nil {
		return err
	}
	log.Info("flowgate started", "version", buildVersion(), "config", c.Source, "intakes", len(c.Intakes),
		"buffer", c.Buffer.Dir, "http", a.http.Addr().String())
	for _, in := range c.Intakes {
		log.Info("intake", "name", in.Name, "protocol", protocolName(in), "port", in.Port, "key", config.MaskKey(in.IntakeKey), "output", describeOutput(in.Output))
	}
	return a.run(ctx)
}

// build opens and binds everything, so that any problem (a port in use, a
// store that cannot open) stops the start before anything runs. stdout
// takes debug lines and the file output "-", one whole line per write;
// errs is what the status page shows of the log.
func build(ctx context.Context, c *config.Config, log *slog.Logger, stdout io.Writer, errs *httpd.ErrorLog) (*appliance, error) {
	a := &appliance{log: log, reg: prometheus.NewRegistry(), transports: map[string]ship.Transport{}, stdout: &lineWriter{w: stdout}}
	// Every metric has the flowgate_ prefix, the Go runtime's too.
	prometheus.WrapRegistererWithPrefix("flowgate_", a.reg).MustRegister(collectors.NewGoCollector(
		collectors.WithGoCollectorMemStatsMetricsDisabled(),
		collectors.WithGoCollectorRuntimeMetrics(collectors.GoRuntimeMetricsRule{Matcher: regexp.MustCompile(`^/memory/classes/(heap/objects|total):bytes$`)})))
	a.reg.MustRegister(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{Namespace: "flowgate"}))
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
	a.notify = sdnotify.New(os.LookupEnv, a.http.Ready, log)
	a.closers = append(a.closers, a.notify)
	if c.HTTP.PProf {
		a.http.MountPProf()
		log.Warn("profiler on: /debug/pprof/ shows the process's internals to whoever reaches the http listener", "http", c.HTTP.Listen)
	}
	subjects := map[string]string{}
	for _, in := range c.Intakes {
		subjects[in.Name] = buffer.Subject(in.Name)
	}
	a.reg.MustRegister(a.buf.Metrics(subjects))

	cm := collect.NewMetrics(a.reg, log)
	sm := ship.NewMetrics(a.reg)
	templates := flow.NewTemplates()
	collect.WatchTemplates(a.reg, templates)
	kv, err := a.buf.KV(ctx, templatesBucket, "NetFlow v9 and IPFIX templates and option-data state, by exporter and domain")
	if err != nil {
		return a, err
	}
	a.persister, err = flow.Persist(ctx, templates, kv, log)
	if err != nil {
		return a, err
	}
	var info []httpd.IntakeInfo
	for _, in := range c.Intakes {
		var intake interface{ Run(context.Context) error }
		subject := buffer.Subject(in.Name)
		switch {
		case in.Stats:
			intake = stats.New(statsConfig(c, in), a.reg, a.buf, cm.Produced(in.Name), log)
		case in.Protocol == config.ProtocolNetFlow || in.Protocol == config.ProtocolSFlow:
			fc := collect.DefaultFlowConfig(in.Name, in.Port)
			fc.Protocol = in.Protocol
			fc.ReceiveBuffer, fc.Sockets = int(in.ReceiveBuffer), in.Sockets
			if in.Workers > 0 {
				fc.Workers = in.Workers
			}
			intake, err = collect.NewFlowIntake(fc, templates, enrich.New(enrichConfig(in)), a.buf, cm, log)
		default: // tcp, udp, tls
			intake, err = a.syslogIntake(in, cm)
		}
		if err != nil {
			return a, fmt.Errorf("intake %q: %w", in.Name, err)
		}
		a.intakes = append(a.intakes, intake)

		scfg := ship.DefaultConfig(in.Name)
		transport, enc, err := a.output(in, scfg.InFlight)
		if err != nil {
			return a, fmt.Errorf("intake %q: %w", in.Name, err)
		}
		cons, err := a.buf.Consume(ctx, subject, maxPendingMessages(c, in))
		if err != nil {
			return a, fmt.Errorf("intake %q: %w", in.Name, err)
		}
		shipper := ship.New(scfg, cons, enc, transport, sm, log)
		a.shippers = append(a.shippers, shipper)
		a.http.AddCheck("output of "+strconv.Quote(in.Name), outputCheck(a.buf, subject, shipper.Status(), c.HTTP.StallAfter))
		info = append(info, httpd.IntakeInfo{Name: in.Name, Protocol: protocolName(in), Port: in.Port,
			Output: describeOutput(in.Output), Ship: shipper.Status()})
	}
	a.http.ServeStatus(httpd.StatusSources{Gatherer: a.reg, Intakes: info, Templates: templates.List, Errors: errs, Version: buildVersion()})
	return a, nil
}

// outputCheck is the readiness of one intake's output: not paused, and
// not stalled while its buffer holds data.
func outputCheck(buf *buffer.Buffer, subject string, st *ship.Status, stallAfter time.Duration) httpd.Check {
	return func() error {
		backlog, _, err := buf.Backlog(context.Background())
		if err != nil {
			return err
		}
		return st.Ready(backlog[subject].Messages, stallAfter)
	}
}

// statsConfig describes a stats intake: it reports on every intake.
func statsConfig(c *config.Config, in config.Intake) stats.Config {
	sc := stats.Config{Intake: in.Name, Subject: buffer.Subject(in.Name), Interval: in.Interval}
	for _, other := range c.Intakes {
		src := stats.Source{Name: other.Name, Port: other.Port}
		if !other.Stats {
			src.Protocol = other.Protocol
		}
		src.Host, src.OutPort = outputHostPort(other.Output)
		sc.Sources = append(sc.Sources, src)
	}
	return sc
}

// outputHostPort is where an output connects; empty for the file output.
func outputHostPort(o *config.Output) (string, int) {
	hostport := o.Endpoint
	switch o.Transport {
	case config.TransportFile:
		return "", 0
	case config.TransportHTTPS:
		u, err := url.Parse(o.Endpoint)
		if err != nil {
			return "", 0
		}
		hostport = u.Host
		if u.Port() == "" {
			hostport = net.JoinHostPort(u.Hostname(), "443")
		}
	}
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		return "", 0
	}
	p, _ := strconv.Atoi(port)
	return host, p
}

// syslogIntake binds a tcp, udp or tls intake.
func (a *appliance) syslogIntake(in config.Intake, cm *collect.Metrics) (*collect.SyslogIntake, error) {
	sc := collect.DefaultSyslogConfig(in.Name, in.Protocol, in.Port)
	if in.MaxConnections > 0 {
		sc.MaxConnections = in.MaxConnections
	}
	if in.Protocol == config.ProtocolTLS {
		tc, err := collect.ServerTLS(in.TLSKeyFile, in.TLSCertFile, in.TLSCAFile, in.TLSClientAuth == config.ClientAuthRequire)
		if err != nil {
			return nil, err
		}
		sc.TLS = tc
	}
	if in.Debug {
		sc.Debug, sc.DebugKey = a.stdout, config.MaskKey(in.IntakeKey)
	}
	return collect.NewSyslogIntake(sc, a.buf, cm, a.log)
}

// output returns the transport and encoder of an intake's output. One
// transport serves every intake with the same output and key; the file
// output is one per file.
func (a *appliance) output(in config.Intake, conns int) (ship.Transport, ship.Encoder, error) {
	o := in.Output
	var enc ship.Encoder = format.IANA{}
	if in.Format == config.FormatGoFlow2 {
		enc = format.GoFlow2{}
	}
	if o.Transport == config.TransportSyslog || o.Transport == config.TransportRELP {
		enc = format.Syslog{Key: in.IntakeKey, Events: enc}
	}
	id := strings.Join([]string{o.Transport, o.Endpoint, o.CAFile, o.CertFile, in.IntakeKey}, "\x00")
	if o.Transport == config.TransportFile {
		id = o.Transport + "\x00" + o.Path
	}
	t, ok := a.transports[id]
	if !ok {
		var err error
		switch o.Transport {
		case config.TransportFile:
			if o.Path == "-" {
				t = file.NewWriter(a.stdout, "stdout")
			} else {
				t, err = file.New(o.Path)
			}
		case config.TransportSyslog:
			sc := syslog.DefaultConfig(o.Endpoint, o.CAFile)
			sc.CertFile, sc.KeyFile = o.CertFile, o.KeyFile
			t, err = syslog.New(sc)
		case config.TransportRELP:
			rc := relp.DefaultConfig(o.Endpoint, o.CAFile)
			rc.CertFile, rc.KeyFile = o.CertFile, o.KeyFile
			t, err = relp.New(rc)
		default:
			t, err = https.New(https.Config{
				URL:       config.HTTPSURL(o.Endpoint),
				IntakeKey: in.IntakeKey,
				CAFile:    o.CAFile,
				UserAgent: "flowgate/" + buildVersion(),
				Conns:     conns,
			})
		}
		if err != nil {
			return nil, nil, err
		}
		a.transports[id] = t
		a.closers = append(a.closers, t)
	}
	if in.Debug {
		t = ship.Printing(t, a.stdout, in.IntakeKey, config.MaskKey(in.IntakeKey))
	}
	return t, enc, nil
}

// lineWriter serialises writers of whole lines to one output (stdout).
type lineWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lineWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// templatesBucket is the key-value bucket of the buffer that keeps
// templates across restarts and shares them between nodes.
const templatesBucket = "FLOWGATE_TEMPLATES"

// enrichConfig is what enrichment applies to an intake's flows.
func enrichConfig(in config.Intake) enrich.Config {
	cfg := enrich.Config{ScaleSampling: in.Scaling()}
	if len(in.Exporters) > 0 {
		cfg.Exporters = make(map[netip.Addr]enrich.Exporter, len(in.Exporters))
	}
	for _, e := range in.Exporters {
		cfg.Exporters[e.Addr] = enrich.Exporter{Name: e.Name, SamplingRate: e.SamplingRate,
			SamplingOverride: e.SamplingOverride, Interfaces: e.Interfaces}
	}
	return cfg
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
// first (what they hold goes to the buffer), then the template persister
// (what they learnt goes to the store), then shippers, then the store.
func (a *appliance) run(ctx context.Context) error {
	failed := make(chan error, len(a.intakes)+len(a.shippers)+2)
	recvCtx, stopRecv := context.WithCancel(context.Background())
	syncCtx, stopSync := context.WithCancel(context.Background())
	shipCtx, stopShip := context.WithCancel(context.Background())
	httpCtx, stopHTTP := context.WithCancel(context.Background())
	defer stopRecv()
	defer stopSync()
	defer stopShip()
	defer stopHTTP()
	var recv, syncing, shipping, monitoring sync.WaitGroup
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
	start(&syncing, syncCtx, "templates", a.persister.Run)
	for _, in := range a.intakes {
		start(&recv, recvCtx, "intake", in.Run)
	}
	start(&monitoring, httpCtx, "sd_notify", a.notify.Run)
	var err error
	select {
	case <-ctx.Done():
		a.log.Info("stopping")
	case err = <-failed:
		a.log.Error("stopping on a failure", "err", err)
	}
	if e := a.notify.Send(sdnotify.Stopping); e != nil {
		a.log.Warn("cannot notify systemd", "err", e)
	}
	stopRecv()
	recv.Wait()
	stopSync()
	syncing.Wait()
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
