// Package appliance is the whole appliance of one configuration, runnable
// in-process: the buffer, the monitoring listener, the shared template
// store and one pipeline per intake. It starts them, reloads a new
// configuration by swap (start what changed, swap the running snapshot,
// stop what left) and stops them in data-flow order. The command
// (cmd/flowgate) owns the process: flags, signals, systemd, exit codes.
package appliance

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flowgate/flowgate/buffer"
	"github.com/flowgate/flowgate/collect"
	"github.com/flowgate/flowgate/config"
	"github.com/flowgate/flowgate/decoder/flow"
	"github.com/flowgate/flowgate/enrich"
	"github.com/flowgate/flowgate/httpd"
	"github.com/flowgate/flowgate/monitoring"
	"github.com/flowgate/flowgate/pipeline"
	"github.com/flowgate/flowgate/receiver/httpintake"
	"github.com/flowgate/flowgate/ship"
	"github.com/flowgate/flowgate/tlsfiles"
)

// templatesBucket is the key-value bucket of the buffer that keeps
// templates across restarts and shares them between nodes.
const templatesBucket = "FLOWGATE_TEMPLATES"

// geoCheckInterval is how often the geoip databases are looked at for a
// replaced file.
const geoCheckInterval = time.Minute

// setupTimeout bounds preparing the intakes of a reload.
const setupTimeout = 30 * time.Second

// Options are what the process gives the appliance.
type Options struct {
	// Stdout takes debug lines and the file output "-".
	Stdout io.Writer
	// Logger logs; the status page also shows each intake's warnings and
	// errors from it.
	Logger *slog.Logger
	// Version names the build on the status page and to the intake.
	Version string
	// Stopping, when set, is called as the stop begins (systemd's
	// STOPPING, the bound on the stop's length).
	Stopping func()
	// ProgressEvery paces the log lines of a draining backlog; 30 s when
	// zero.
	ProgressEvery time.Duration
}

// Appliance is every component of a running configuration.
type Appliance struct {
	log        *slog.Logger
	reg        *prometheus.Registry
	buf        *buffer.Buffer
	http       *httpd.Server
	templates  *flow.Templates
	persister  *flow.Persister
	transports *pipeline.Transports
	// tls keeps the TLS files of intakes and outputs current.
	tls *tlsfiles.Set
	// geo is the AS and country databases, nil without any.
	geo  *enrich.Geo
	deps pipeline.Dependencies
	opts Options

	// running is what runs, replaced whole by a reload. Readers (the
	// metrics, the status page, the stats intake, readiness) load it and
	// never wait on the lifecycle.
	running atomic.Pointer[snapshot]
	// life serialises the lifecycle: Run's start and stop, and Reload.
	life    sync.Mutex
	started bool
	stopped bool
	// failed takes the errors of components that stopped on their own.
	failed chan error
	// drain follows the backlogs as they drain, for the log and the
	// status page.
	drain drainWatch
}

// snapshot is a configuration and its intakes at work, in its order.
// It is never modified: a reload makes a new one.
type snapshot struct {
	cfg     *config.Config
	intakes []*pipeline.Intake
}

// New opens and binds everything, so that any problem (a port in use, a
// store that cannot open) stops the start before anything runs. On error
// nothing stays open.
func New(ctx context.Context, c *config.Config, opts Options) (_ *Appliance, err error) {
	errs := httpd.NewErrorLog()
	a := &Appliance{log: slog.New(errs.Handler(opts.Logger.Handler())), reg: prometheus.NewRegistry(), opts: opts, failed: make(chan error, 1)}
	a.tls = tlsfiles.NewSet(a.log)
	a.transports = pipeline.NewTransports(opts.Version, a.tls, a.log)
	defer func() {
		if err != nil {
			a.close()
		}
	}()
	if a.buf, err = buffer.Open(ctx, BufferConfig(c), a.log); err != nil {
		return nil, err
	}
	if a.http, err = httpd.New(c.HTTP.Listen, a.reg, a.log); err != nil {
		return nil, err
	}
	a.http.AddCheck("buffer", a.buf.Check)
	if c.HTTP.PProf {
		a.http.MountPProf()
		a.log.Warn("profiler on: /debug/pprof/ shows the process's internals to whoever reaches the http listener", "http", c.HTTP.Listen)
	}
	a.reg.MustRegister(a.buf.Metrics(a.subjects), buildInfo(opts.Version))
	cm := collect.NewMetrics(a.reg, a.log)
	a.templates = flow.NewTemplates()
	collect.WatchTemplates(a.reg, a.templates)
	kv, err := a.buf.KV(ctx, templatesBucket, "NetFlow v9 and IPFIX templates and option-data state, by exporter and domain")
	if err != nil {
		return nil, err
	}
	if a.persister, err = flow.Persist(ctx, a.templates, kv, a.log); err != nil {
		return nil, err
	}
	if a.geo, err = enrich.OpenGeo(enrich.GeoConfig{ASNDatabase: c.GeoIP.ASNDatabase, CountryDatabase: c.GeoIP.CountryDatabase}, a.log); err != nil {
		return nil, fmt.Errorf("%s: geoip: %w", c.Source, err)
	}
	a.http.ServeStatus(httpd.StatusSources{Gatherer: a.reg, Intakes: a.intakeInfo, Templates: a.templates.List, Errors: errs, Version: opts.Version})
	a.deps = pipeline.Dependencies{Buffer: a.buf, Templates: a.templates, Collect: cm, Ship: ship.NewMetrics(a.reg), HTTPIntake: httpintake.NewMetrics(a.reg),
		Gatherer: a.reg, Sources: a.statsSources, Transports: a.transports, TLS: a.tls, Geo: a.geo, Stdout: &lineWriter{w: opts.Stdout}, Log: a.log}
	s := &snapshot{cfg: c}
	for _, in := range c.Intakes {
		it, err := pipeline.New(ctx, pipelineConfig(c, in), a.deps)
		if err != nil {
			closeAll(s.intakes)
			return nil, err
		}
		s.intakes = append(s.intakes, it)
	}
	a.running.Store(s)
	return a, nil
}

// Addr is the monitoring listener's address.
func (a *Appliance) Addr() net.Addr { return a.http.Addr() }

// Config is the configuration running.
func (a *Appliance) Config() *config.Config { return a.running.Load().cfg }

// Buffer is the store, for commands served by the listener.
func (a *Appliance) Buffer() *buffer.Buffer { return a.buf }

// Handle serves pattern on the monitoring listener; before Run.
func (a *Appliance) Handle(pattern string, h http.Handler) { a.http.Handle(pattern, h) }

// Ready is nil when every readiness check passes (what /readyz answers).
func (a *Appliance) Ready() error { return a.http.Ready() }

// RenewTLS reads every TLS intake's and output's files again (SIGHUP);
// they are also read by themselves when they change.
func (a *Appliance) RenewTLS() { a.tls.Reload() }

// Log is the appliance's logger.
func (a *Appliance) Log() *slog.Logger { return a.log }

// pipelineConfig is what an intake of c is given. Its share of memory is
// its queue_size, or its part of MEMORY_MESSAGES.
func pipelineConfig(c *config.Config, in config.Intake) pipeline.Config {
	events := in.QueueSize
	if events <= 0 {
		events = c.Buffer.MemoryMessages / max(len(c.Intakes), 1)
	}
	return pipeline.Config{Intake: in, MemoryEvents: events, StopGrace: c.Shutdown.Grace}
}

// Run starts the components and runs until ctx ends or one fails, then
// stops them in data-flow order and closes everything. Call it once.
func (a *Appliance) Run(ctx context.Context) error {
	defer a.close()
	httpCtx, stopHTTP := context.WithCancel(context.Background())
	defer stopHTTP()
	httpDone := a.goRun(httpCtx, "http", a.http.Run)
	syncCtx, stopSync := context.WithCancel(context.Background())
	defer stopSync()
	syncDone := a.goRun(syncCtx, "templates", a.persister.Run)
	tlsDone := a.goRun(httpCtx, "TLS files", a.tls.Run)
	geoDone := make(chan struct{})
	go func() {
		defer close(geoDone)
		a.geo.Watch(httpCtx, geoCheckInterval)
	}()
	drainDone := make(chan struct{})
	go func() {
		defer close(drainDone)
		every := a.opts.ProgressEvery
		if every <= 0 {
			every = defaultProgressEvery
		}
		a.watchDrain(httpCtx, every)
	}()
	a.life.Lock()
	s := a.running.Load()
	for _, it := range s.intakes {
		a.start(it, s.cfg)
	}
	a.started = true
	a.life.Unlock()
	a.logStart(s.cfg)

	var err error
	select {
	case <-ctx.Done():
	case err = <-a.failed:
		a.log.Error("stopping on a failure", "err", err)
	}
	a.life.Lock()
	defer a.life.Unlock()
	a.stopped = true
	s = a.running.Load()
	a.log.Info("stopping", "grace", s.cfg.Shutdown.Grace, "timeout", s.cfg.Shutdown.Timeout)
	if a.opts.Stopping != nil {
		a.opts.Stopping()
	}
	// The listeners first (what they hold goes to the buffer), then what
	// they learnt of templates is saved, then the shippers ship what is in
	// flight.
	parallel(s.intakes, (*pipeline.Intake).StopReceiving)
	stopSync()
	<-syncDone
	parallel(s.intakes, (*pipeline.Intake).Stop)
	stopHTTP()
	<-httpDone
	<-tlsDone
	<-geoDone
	<-drainDone
	a.logLeft(s.cfg)
	select {
	case e := <-a.failed:
		err = errors.Join(err, e)
	default:
	}
	a.log.Info("stopped")
	return err
}

// start runs an intake and adds its readiness check.
func (a *Appliance) start(it *pipeline.Intake, c *config.Config) {
	it.Start(a.fail)
	stallAfter := c.HTTP.StallAfter
	a.http.AddCheck(checkName(it.Config().Name), func() error { return it.Ready(stallAfter) })
}

func checkName(intake string) string { return "output of " + strconv.Quote(intake) }

// fail ends the appliance on a component's error; later ones are logged.
func (a *Appliance) fail(err error) {
	select {
	case a.failed <- err:
	default:
		a.log.Error("component failed", "err", err)
	}
}

// goRun runs fn on its own goroutine; an error ends the appliance.
func (a *Appliance) goRun(ctx context.Context, name string, fn func(context.Context) error) chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := fn(ctx); err != nil {
			a.fail(fmt.Errorf("%s: %w", name, err))
		}
	}()
	return done
}

// parallel calls fn on every intake at once and waits for all.
func parallel(its []*pipeline.Intake, fn func(*pipeline.Intake)) {
	var wg sync.WaitGroup
	for _, it := range its {
		wg.Go(func() { fn(it) })
	}
	wg.Wait()
}

// closeAll undoes New for intakes that never started.
func closeAll(its []*pipeline.Intake) {
	for _, it := range its {
		it.Close()
	}
}

// subjects names the running intakes' buffer subjects, for the metrics.
func (a *Appliance) subjects() map[string]string {
	s := a.running.Load()
	m := make(map[string]string, len(s.cfg.Intakes))
	for _, in := range s.cfg.Intakes {
		m[in.Name] = buffer.Subject(in.Name)
		// Each output of its key and of the keys its routes send to, by
		// their shippers' names.
		for _, sh := range pipeline.Shippings(in) {
			m[sh.Intake.Name] = sh.Subject
		}
	}
	// And those an http intake took as they came (intake_keys: any).
	for _, it := range s.intakes {
		maps.Copy(m, it.Subjects())
	}
	return m
}

// statsSources are the running intakes, for the stats intakes' reports.
func (a *Appliance) statsSources() []monitoring.Source {
	s := a.running.Load()
	out := make([]monitoring.Source, 0, len(s.cfg.Intakes))
	for _, in := range s.cfg.Intakes {
		out = append(out, pipeline.StatsSource(in))
		// Its other outputs, each reported as an output with no input.
		for _, sh := range pipeline.OtherOutputs(in) {
			src := pipeline.StatsSource(sh.Intake)
			src.Protocol, src.Port = "", 0
			out = append(out, src)
		}
	}
	return out
}

// intakeInfo describes the running intakes, for the status page.
func (a *Appliance) intakeInfo() []httpd.IntakeInfo {
	s := a.running.Load()
	info := make([]httpd.IntakeInfo, 0, len(s.intakes))
	for _, it := range s.intakes {
		in := it.Config()
		info = append(info, httpd.IntakeInfo{Name: in.Name, Protocol: string(in.Kind), Port: in.Port,
			Output: DescribeOutput(in.Output), Ship: it.Status(), Drain: a.drainOf(in.Name)})
		// Its other outputs, a row each.
		ships := it.Ships()
		for i := range pipeline.OtherOutputs(in) {
			st := ships[i+1]
			info = append(info, httpd.IntakeInfo{Name: st.Intake.Name, OutputOf: in.Name,
				Output: DescribeOutput(st.Intake.Output), Ship: st.Ship, Drain: a.drainOf(st.Intake.Name)})
		}
	}
	return info
}

// logStart says what runs.
func (a *Appliance) logStart(c *config.Config) {
	a.log.Info("flowgate started", "version", a.opts.Version, "config", c.Source, "intakes", len(c.Intakes),
		"buffer", DescribeBuffer(c), "http", a.http.Addr().String())
	for _, in := range c.Intakes {
		a.log.Info("intake", "name", in.Name, "protocol", string(in.Kind), "port", in.Port, "key", in.MaskedKeys(), "output", DescribeOutputs(in))
	}
	a.logWaiting(c)
}

// logLeft says what the buffer holds for the next start.
func (a *Appliance) logLeft(c *config.Config) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	held, bytes, err := a.buf.Held(ctx)
	if err != nil {
		a.log.Warn("cannot tell what the buffer holds", "err", err)
		return
	}
	names := map[string]string{}
	for _, in := range c.Intakes {
		names[buffer.Subject(in.Name)] = in.Name
		for _, sh := range pipeline.Shippings(in) {
			names[sh.Subject] = sh.Intake.Name
		}
	}
	var total uint64
	var parts []string
	for subject, n := range held {
		total += n
		name, ok := names[subject]
		if !ok {
			name = subject
		}
		parts = append(parts, strconv.Quote(name)+"="+strconv.FormatUint(n, 10))
	}
	sort.Strings(parts)
	a.log.Info("left in the buffer for the next start", "messages", total, "bytes", bytes, "by_intake", strings.Join(parts, " "))
}

// close closes the listener, the transports and the store.
func (a *Appliance) close() {
	if a.http != nil {
		a.http.Close()
	}
	a.transports.Close()
	if a.buf != nil {
		a.buf.Close()
	}
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
