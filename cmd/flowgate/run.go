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
	"reflect"
	"regexp"
	"runtime"
	"runtime/debug"
	"sort"
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
	"github.com/flowgate/flowgate/tlsfiles"
)

const (
	// eventsPerMessage is about how many records a buffer message holds; it
	// turns an event budget into a message budget.
	eventsPerMessage = 256
	// recordsPerDatagram is about how many flow records a datagram holds.
	recordsPerDatagram = 24
	// memoryBaseBytes and memoryPerEventBytes turn MEMORY_MESSAGES into a
	// memory limit: the runtime, the store's caches and the sockets, and
	// for each event the record, its encoded form and the batch around it.
	memoryBaseBytes     = 256 << 20
	memoryPerEventBytes = 1 << 10
	// setupTimeout bounds creating an intake's consumer in the store.
	setupTimeout = 30 * time.Second
)

// exit ends the process when a stop overruns shutdown.timeout.
var exit = os.Exit

// appliance is every component of a running configuration.
type appliance struct {
	log       *slog.Logger
	reg       *prometheus.Registry
	buf       *buffer.Buffer
	http      *httpd.Server
	notify    *sdnotify.Notifier
	cm        *collect.Metrics
	sm        *ship.Metrics
	templates *flow.Templates
	// persister saves what the flow intakes learn; it stops after them.
	persister *flow.Persister
	stdout    *lineWriter

	// mu guards cfg and intakes, which a reload replaces and the dlq
	// handlers read.
	mu sync.Mutex
	// cfg is the configuration running; intakes are its intakes, in its
	// order.
	cfg     *config.Config
	intakes []*intake
	// transports are the outputs' transports, by output and key, with the
	// number of intakes using each.
	transports map[string]*sharedTransport
	// failed takes the errors of components that stopped on their own.
	failed chan error
	// stopTimer ends the process if a stop overruns shutdown.timeout.
	stopTimer *time.Timer
	// tls keeps the TLS files of intakes and outputs current.
	tls *tlsfiles.Set
}

type sharedTransport struct {
	t     ship.Transport
	users int
}

// intake is one intake at work: its listener, its shipper and what they
// use. Its listener is bound and its consumer open from prepare on.
type intake struct {
	cfg       config.Intake
	recv      interface{ Run(context.Context) error }
	tls       *tlsfiles.Server // of a tls intake
	cons      *buffer.Consumer
	shipper   *ship.Shipper
	transport string

	stopRecv, stopShip context.CancelFunc
	recvDone, shipDone chan struct{}
}

// runAppliance runs until SIGINT or SIGTERM, or until a component fails;
// SIGHUP reloads the configuration file.
func runAppliance(c *config.Config, stdout, stderr io.Writer) error {
	// The status page shows each intake's last warnings and errors.
	errs := httpd.NewErrorLog()
	log := slog.New(errs.Handler(slog.NewTextHandler(stderr, nil)))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	setMemoryLimit(c, log)
	a, err := build(ctx, c, log, stdout, errs)
	if err != nil {
		if a != nil {
			a.close()
		}
		return err
	}
	log.Info("flowgate started", "version", buildVersion(), "config", c.Source, "intakes", len(c.Intakes),
		"buffer", describeBuffer(c), "http", a.http.Addr().String())
	for _, in := range c.Intakes {
		log.Info("intake", "name", in.Name, "protocol", protocolName(in), "port", in.Port, "key", config.MaskKey(in.IntakeKey), "output", describeOutput(in.Output))
	}
	err = a.run(ctx, hup)
	a.logLeft()
	a.close()
	if a.stopTimer != nil {
		a.stopTimer.Stop()
	}
	log.Info("stopped")
	return err
}

// setMemoryLimit sets the Go runtime's soft memory limit from
// MEMORY_MESSAGES, unless GOMEMLIMIT says otherwise.
func setMemoryLimit(c *config.Config, log *slog.Logger) {
	if v := os.Getenv("GOMEMLIMIT"); v != "" {
		log.Info("memory limit from GOMEMLIMIT", "limit", v)
		return
	}
	limit := memoryBaseBytes + int64(c.Buffer.MemoryMessages)*memoryPerEventBytes
	debug.SetMemoryLimit(limit)
	log.Info("memory limit from memory_messages", "limit_mib", limit>>20, "memory_messages", c.Buffer.MemoryMessages)
}

// build opens and binds everything, so that any problem (a port in use, a
// store that cannot open) stops the start before anything runs. stdout
// takes debug lines and the file output "-", one whole line per write;
// errs is what the status page shows of the log.
func build(ctx context.Context, c *config.Config, log *slog.Logger, stdout io.Writer, errs *httpd.ErrorLog) (*appliance, error) {
	a := &appliance{log: log, reg: prometheus.NewRegistry(), cfg: c, transports: map[string]*sharedTransport{},
		stdout: &lineWriter{w: stdout}, failed: make(chan error, 1)}
	// Every metric has the flowgate_ prefix, the Go runtime's too.
	prometheus.WrapRegistererWithPrefix("flowgate_", a.reg).MustRegister(collectors.NewGoCollector(
		collectors.WithGoCollectorMemStatsMetricsDisabled(),
		collectors.WithGoCollectorRuntimeMetrics(collectors.GoRuntimeMetricsRule{Matcher: regexp.MustCompile(`^/memory/classes/(heap/objects|total):bytes$`)})))
	a.reg.MustRegister(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{Namespace: "flowgate"}))
	var err error
	a.buf, err = buffer.Open(ctx, bufferConfig(c), log)
	if err != nil {
		return a, err
	}
	a.http, err = httpd.New(c.HTTP.Listen, a.reg, log)
	if err != nil {
		return a, err
	}
	a.http.AddCheck("buffer", a.buf.Check)
	a.handleDeadLetters()
	a.notify = sdnotify.New(os.LookupEnv, a.http.Ready, a.alive, log)
	a.tls = tlsfiles.NewSet(log)
	if c.HTTP.PProf {
		a.http.MountPProf()
		log.Warn("profiler on: /debug/pprof/ shows the process's internals to whoever reaches the http listener", "http", c.HTTP.Listen)
	}
	a.reg.MustRegister(a.buf.Metrics(a.subjects))

	a.cm = collect.NewMetrics(a.reg, log)
	a.sm = ship.NewMetrics(a.reg)
	a.templates = flow.NewTemplates()
	collect.WatchTemplates(a.reg, a.templates)
	kv, err := a.buf.KV(ctx, templatesBucket, "NetFlow v9 and IPFIX templates and option-data state, by exporter and domain")
	if err != nil {
		return a, err
	}
	a.persister, err = flow.Persist(ctx, a.templates, kv, log)
	if err != nil {
		return a, err
	}
	a.http.ServeStatus(httpd.StatusSources{Gatherer: a.reg, Intakes: a.intakeInfo, Templates: a.templates.List, Errors: errs, Version: buildVersion()})
	for _, in := range c.Intakes {
		it, err := a.prepare(ctx, c, in)
		if err != nil {
			return a, err
		}
		a.intakes = append(a.intakes, it)
	}
	return a, nil
}

// bufferConfig is the store's configuration. The publish window is what
// the smallest intake's share of memory allows each of its publishers.
func bufferConfig(c *config.Config) buffer.Config {
	window := 256
	for _, in := range c.Intakes {
		window = min(window, max(share(c, in)/4/eventsPerMessage/runtime.GOMAXPROCS(0), 8))
	}
	b := c.Buffer
	return buffer.Config{Dir: b.Dir, MaxBytes: int64(b.DiskSpace), URL: b.NATSURL, Creds: b.NATSCreds, CAFile: b.NATSCAFile,
		Replicas: b.Replicas, PublishWindow: window}
}

// share is the events an intake may hold in memory: its queue_size, or its
// part of MEMORY_MESSAGES. Half is the receiving side's (datagrams waiting
// for a decoder, records being gathered, messages on their way to the
// store), half the shipper's (messages taken from the store and the
// batches made of them).
func share(c *config.Config, in config.Intake) int {
	if in.QueueSize > 0 {
		return in.QueueSize
	}
	return c.Buffer.MemoryMessages / max(len(c.Intakes), 1)
}

// prepare binds an intake's listener, opens its consumer and makes its
// shipper, without starting them.
func (a *appliance) prepare(ctx context.Context, c *config.Config, in config.Intake) (*intake, error) {
	half := share(c, in) / 2
	it := &intake{cfg: in}
	var err error
	switch {
	case in.Stats:
		it.recv = stats.New(statsConfig(c, in), a.reg, a.buf, a.cm.Produced(in.Name), a.log)
	case in.Protocol == config.ProtocolNetFlow || in.Protocol == config.ProtocolSFlow:
		fc := collect.DefaultFlowConfig(in.Name, in.Port)
		fc.Protocol = in.Protocol
		fc.ReceiveBuffer, fc.Sockets = int(in.ReceiveBuffer), in.Sockets
		if in.Workers > 0 {
			fc.Workers = in.Workers
		}
		fc.QueueDatagrams = min(fc.QueueDatagrams, max(half/2/fc.Workers/recordsPerDatagram, 64))
		it.recv, err = collect.NewFlowIntake(fc, a.templates, enrich.New(enrichConfig(in)), a.buf, a.cm, a.log)
	default: // tcp, udp, tls
		it.recv, it.tls, err = a.syslogIntake(in)
	}
	if err != nil {
		return nil, fmt.Errorf("intake %q: %w", in.Name, err)
	}
	scfg := ship.DefaultConfig(in.Name)
	scfg.MaxEvents = min(scfg.MaxEvents, max(half/(scfg.InFlight+1), 100))
	scfg.StopGrace = c.Shutdown.Grace
	transport, enc, err := a.output(it, scfg.InFlight)
	if err == nil {
		cctx, cancel := context.WithTimeout(ctx, setupTimeout)
		it.cons, err = a.buf.Consume(cctx, buffer.Subject(in.Name), max(half/eventsPerMessage, 16))
		cancel()
	}
	if err != nil {
		a.discard(it)
		return nil, fmt.Errorf("intake %q: %w", in.Name, err)
	}
	it.shipper = ship.New(scfg, it.cons, enc, transport, a.buf, a.sm, a.log)
	return it, nil
}

// syslogIntake binds a tcp, udp or tls intake; a tls intake's files are
// watched until its Close.
func (a *appliance) syslogIntake(in config.Intake) (*collect.SyslogIntake, *tlsfiles.Server, error) {
	sc := collect.DefaultSyslogConfig(in.Name, in.Protocol, in.Port)
	if in.MaxConnections > 0 {
		sc.MaxConnections = in.MaxConnections
	}
	var files *tlsfiles.Server
	if in.Protocol == config.ProtocolTLS {
		var err error
		files, err = a.tls.Server(in.Name, in.TLSCertFile, in.TLSKeyFile, in.TLSCAFile, in.TLSClientAuth == config.ClientAuthRequire)
		if err != nil {
			return nil, nil, err
		}
		sc.TLS = files.Config()
	}
	if in.Debug {
		sc.Debug, sc.DebugKey = a.stdout, config.MaskKey(in.IntakeKey)
	}
	si, err := collect.NewSyslogIntake(sc, a.buf, a.cm, a.log)
	if err != nil {
		files.Close()
		return nil, nil, err
	}
	return si, files, nil
}

// output returns the transport and encoder of an intake's output. One
// transport serves every intake with the same output and key; the file
// output is one per file.
func (a *appliance) output(it *intake, conns int) (ship.Transport, ship.Encoder, error) {
	in := it.cfg
	o := in.Output
	// /jsons carries each event as a JSON string: written so at once.
	events := format.IANA{AsString: o.Transport == config.TransportHTTPS}
	var enc ship.Encoder = events
	if in.Format == config.FormatGoFlow2 {
		enc = format.GoFlow2{IANA: events}
	}
	if o.Transport == config.TransportSyslog || o.Transport == config.TransportRELP {
		enc = format.Syslog{Key: in.IntakeKey, Events: enc}
	}
	resendWindow := syslog.DefaultResendWindow
	if o.ResendWindow != nil {
		resendWindow = *o.ResendWindow
	}
	id := strings.Join([]string{o.Transport, o.Endpoint, o.CAFile, o.CertFile, in.IntakeKey, resendWindow.String()}, "\x00")
	if o.Transport == config.TransportFile {
		id = o.Transport + "\x00" + o.Path
	}
	st, ok := a.transports[id]
	if !ok {
		var t ship.Transport
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
			sc.CertFile, sc.KeyFile, sc.Files = o.CertFile, o.KeyFile, a.tls
			sc.ResendWindow = resendWindow
			sc.Log = a.log.With("key", config.MaskKey(in.IntakeKey))
			t, err = syslog.New(sc)
		case config.TransportRELP:
			rc := relp.DefaultConfig(o.Endpoint, o.CAFile)
			rc.CertFile, rc.KeyFile, rc.Files = o.CertFile, o.KeyFile, a.tls
			t, err = relp.New(rc)
		default:
			t, err = https.New(https.Config{
				URL:       config.HTTPSURL(o.Endpoint),
				IntakeKey: in.IntakeKey,
				CAFile:    o.CAFile,
				Files:     a.tls,
				UserAgent: "flowgate/" + buildVersion(),
				Conns:     conns,
			})
		}
		if err != nil {
			return nil, nil, err
		}
		st = &sharedTransport{t: t}
		a.transports[id] = st
	}
	st.users++
	it.transport = id
	t := st.t
	if in.Debug {
		t = ship.Printing(t, a.stdout, in.IntakeKey, config.MaskKey(in.IntakeKey), events.AsString)
	}
	return t, enc, nil
}

// release lets go of an intake's transport, closing it with its last user.
func (a *appliance) release(it *intake) {
	st, ok := a.transports[it.transport]
	if !ok {
		return
	}
	if st.users--; st.users == 0 {
		_ = st.t.Close()
		delete(a.transports, it.transport)
	}
	it.transport = ""
}

// discard undoes prepare for an intake that will not run: its listener is
// unbound (Run on an ended context returns at once, closing it), its
// consumer stopped, its transport released.
func (a *appliance) discard(it *intake) {
	if it.recv != nil {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_ = it.recv.Run(ctx)
	}
	if it.cons != nil {
		it.cons.Stop()
	}
	it.tls.Close()
	a.release(it)
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

func protocolName(in config.Intake) string {
	if in.Stats {
		return "stats"
	}
	return in.Protocol
}

// goRun runs fn on its own goroutine; an error ends the appliance.
func (a *appliance) goRun(ctx context.Context, name string, fn func(context.Context) error) chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := fn(ctx); err != nil {
			err = fmt.Errorf("%s: %w", name, err)
			select {
			case a.failed <- err:
			default:
				a.log.Error("component failed", "err", err)
			}
		}
	}()
	return done
}

// start runs a prepared intake.
func (a *appliance) start(it *intake) {
	var recvCtx, shipCtx context.Context
	recvCtx, it.stopRecv = context.WithCancel(context.Background())
	shipCtx, it.stopShip = context.WithCancel(context.Background())
	it.shipDone = a.goRun(shipCtx, fmt.Sprintf("intake %q: shipper", it.cfg.Name), it.shipper.Run)
	it.recvDone = a.goRun(recvCtx, fmt.Sprintf("intake %q", it.cfg.Name), it.recv.Run)
	a.http.AddCheck(checkName(it.cfg.Name), outputCheck(a.buf, buffer.Subject(it.cfg.Name), it.shipper.Status(), a.cfg.HTTP.StallAfter))
}

func checkName(intake string) string { return "output of " + strconv.Quote(intake) }

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

// subjects names the running intakes' buffer subjects, for the metrics.
func (a *appliance) subjects() map[string]string {
	a.mu.Lock()
	defer a.mu.Unlock()
	m := make(map[string]string, len(a.intakes))
	for _, it := range a.intakes {
		m[it.cfg.Name] = buffer.Subject(it.cfg.Name)
	}
	return m
}

// intakeInfo describes the running intakes, for the status page.
func (a *appliance) intakeInfo() []httpd.IntakeInfo {
	a.mu.Lock()
	defer a.mu.Unlock()
	info := make([]httpd.IntakeInfo, 0, len(a.intakes))
	for _, it := range a.intakes {
		in := it.cfg
		info = append(info, httpd.IntakeInfo{Name: in.Name, Protocol: protocolName(in), Port: in.Port,
			Output: describeOutput(in.Output), Ship: it.shipper.Status()})
	}
	return info
}

// stopIntakes stops intakes in data-flow order: the listeners first (what
// they hold goes to the buffer), then afterRecv if not nil, then the
// shippers (what is in flight gets shutdown.grace to be accepted), then
// their consumers.
func (a *appliance) stopIntakes(its []*intake, afterRecv func()) {
	for _, it := range its {
		it.stopRecv()
	}
	for _, it := range its {
		<-it.recvDone
	}
	if afterRecv != nil {
		afterRecv()
	}
	for _, it := range its {
		it.stopShip()
	}
	for _, it := range its {
		<-it.shipDone
		it.cons.Stop()
		it.tls.Close()
		a.http.RemoveCheck(checkName(it.cfg.Name))
		a.release(it)
	}
}

// run starts the components and runs until ctx ends or one fails, then
// stops them in data-flow order within shutdown.timeout. SIGHUP reloads
// the configuration file meanwhile.
func (a *appliance) run(ctx context.Context, hup <-chan os.Signal) error {
	httpCtx, stopHTTP := context.WithCancel(context.Background())
	defer stopHTTP()
	httpDone := a.goRun(httpCtx, "http", a.http.Run)
	notifyDone := a.goRun(httpCtx, "sd_notify", a.notify.Run)
	tlsDone := a.goRun(httpCtx, "TLS files", a.tls.Run)
	syncCtx, stopSync := context.WithCancel(context.Background())
	defer stopSync()
	syncDone := a.goRun(syncCtx, "templates", a.persister.Run)
	a.mu.Lock()
	for _, it := range a.intakes {
		a.start(it)
	}
	a.mu.Unlock()
	var err error
	for err == nil {
		select {
		case <-ctx.Done():
			a.log.Info("stopping", "grace", a.cfg.Shutdown.Grace, "timeout", a.cfg.Shutdown.Timeout)
			err = errStop
		case err = <-a.failed:
			a.log.Error("stopping on a failure", "err", err)
		case <-hup:
			a.reload()
			a.tls.Reload()
		}
	}
	if errors.Is(err, errStop) {
		err = nil
	}
	if e := a.notify.Send(sdnotify.Stopping); e != nil {
		a.log.Warn("cannot notify systemd", "err", e)
	}
	timeout := a.cfg.Shutdown.Timeout
	a.stopTimer = time.AfterFunc(timeout, func() {
		a.log.Error("the stop took longer than shutdown.timeout: exiting now; what was not acknowledged is shipped after the next start", "timeout", timeout)
		exit(1)
	})
	a.mu.Lock()
	// What the listeners learnt of templates is saved before the store closes.
	a.stopIntakes(a.intakes, func() {
		stopSync()
		<-syncDone
	})
	a.mu.Unlock()
	stopHTTP()
	<-httpDone
	<-notifyDone
	<-tlsDone
	select {
	case e := <-a.failed:
		err = errors.Join(err, e)
	default:
	}
	return err
}

// errStop ends the run loop on a signal.
var errStop = errors.New("stop")

// reload applies the configuration file again: intakes that changed or
// vanished stop, new ones start, the others and the buffer run on. A file
// that is refused, or an intake that cannot start, leaves the running
// configuration as it was.
func (a *appliance) reload() {
	a.mu.Lock()
	defer a.mu.Unlock()
	path := a.cfg.Path
	if path == "" {
		a.log.Warn("SIGHUP: running the embedded configuration, there is no file to read again")
		return
	}
	c, err := config.Load(path, os.LookupEnv)
	if err != nil {
		a.log.Error("configuration not reloaded: the file is refused, the running configuration stays", "config", path, "err", err)
		return
	}
	if !reflect.DeepEqual(c.Buffer, a.cfg.Buffer) || c.HTTP != a.cfg.HTTP || c.Shutdown != a.cfg.Shutdown {
		a.log.Warn("buffer, http and shutdown changes take effect at the next start")
		c.Buffer, c.HTTP, c.Shutdown = a.cfg.Buffer, a.cfg.HTTP, a.cfg.Shutdown
	}
	running := map[string]*intake{}
	for _, it := range a.intakes {
		running[it.cfg.Name] = it
	}
	var stopping []*intake
	var adding []config.Intake
	wanted := map[string]bool{}
	for _, in := range c.Intakes {
		wanted[in.Name] = true
		it, ok := running[in.Name]
		if ok && sameIntake(it.cfg, in) {
			continue
		}
		if ok {
			stopping = append(stopping, it)
		}
		adding = append(adding, in)
	}
	var vanished []string
	for _, it := range a.intakes {
		if !wanted[it.cfg.Name] {
			stopping = append(stopping, it)
			vanished = append(vanished, it.cfg.Name)
		}
	}
	a.stopIntakes(stopping, nil)
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	var started []*intake
	for _, in := range adding {
		it, err := a.prepare(ctx, c, in)
		if err == nil {
			started = append(started, it)
			continue
		}
		a.log.Error("configuration not reloaded: an intake cannot start; the running configuration stays", "config", path, "err", err)
		for _, it := range started {
			a.discard(it)
		}
		for _, old := range stopping {
			it, err := a.prepare(ctx, a.cfg, old.cfg)
			if err != nil {
				a.log.Error("an intake of the running configuration could not start again", "intake", old.cfg.Name, "err", err)
				a.remove(old)
				continue
			}
			a.replace(old, it)
			a.start(it)
		}
		return
	}
	byName := map[string]*intake{}
	for _, it := range append(a.intakes, started...) {
		byName[it.cfg.Name] = it
	}
	a.intakes = a.intakes[:0]
	for _, in := range c.Intakes {
		a.intakes = append(a.intakes, byName[in.Name])
	}
	for _, it := range started {
		a.start(it)
	}
	a.cfg = c
	a.log.Info("configuration reloaded", "config", path, "intakes", len(c.Intakes), "started", len(started), "stopped", len(stopping))
	for _, name := range vanished {
		depth, err := a.buf.Depth(ctx, buffer.Subject(name))
		if err == nil && depth > 0 {
			a.log.Warn("intake removed: its records stay in the buffer, and ship if it comes back", "intake", name, "messages", depth)
		}
	}
}

// replace puts it in old's place in the running list.
func (a *appliance) replace(old, it *intake) {
	for i, x := range a.intakes {
		if x == old {
			a.intakes[i] = it
		}
	}
}

// remove takes it out of the running list.
func (a *appliance) remove(it *intake) {
	for i, x := range a.intakes {
		if x == it {
			a.intakes = append(a.intakes[:i], a.intakes[i+1:]...)
			return
		}
	}
}

// sameIntake says whether a running intake can stay as it is.
func sameIntake(a, b config.Intake) bool {
	a.Line, b.Line = 0, 0
	return reflect.DeepEqual(a, b)
}

// logLeft says what the buffer holds for the next start.
func (a *appliance) logLeft() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	held, bytes, err := a.buf.Held(ctx)
	if err != nil {
		a.log.Warn("cannot tell what the buffer holds", "err", err)
		return
	}
	names := map[string]string{}
	for _, in := range a.cfg.Intakes {
		names[buffer.Subject(in.Name)] = in.Name
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

func (a *appliance) close() {
	for _, st := range a.transports {
		_ = st.t.Close()
	}
	if a.notify != nil {
		_ = a.notify.Close()
	}
	if a.buf != nil {
		a.buf.Close()
	}
}

// describeBuffer says where the buffer is.
func describeBuffer(c *config.Config) string {
	if c.Buffer.NATSURL != "" {
		return fmt.Sprintf("NATS cluster %s, %d replicas", buffer.RedactURLs(c.Buffer.NATSURL), c.Buffer.Replicas)
	}
	return c.Buffer.Dir
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
