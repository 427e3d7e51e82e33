// Package monitoring runs a monitoring-events intake (stats: true): every
// interval it reads the appliance's own counters and stores them in the
// buffer as events in the shapes of rsyslog's impstats, which Sekoia's
// forwarder-logs parser already reads, so the old forwarder's monitoring
// keeps working.
package monitoring

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flowgate/flowgate/buffer"
	"github.com/flowgate/flowgate/collect"
	"github.com/flowgate/flowgate/metrics"
	pb "github.com/flowgate/flowgate/proto"
	"github.com/flowgate/flowgate/ship"
)

// Source is one intake the reports cover.
type Source struct {
	// Name is the intake's name, as in the metrics' intake label.
	Name string
	// Protocol is tcp, udp, tls, netflow, sflow or http; empty for a stats
	// intake, which has no input.
	Protocol string
	Port     int
	// Host and OutPort are where the intake's output connects; empty
	// for an output that does not (file).
	Host    string
	OutPort int
}

// Config describes a stats intake.
type Config struct {
	// Intake names the stats intake; Subject is where its events go (a
	// buffer.Destination when it has several outputs).
	Intake, Subject string
	// Interval is the time between reports.
	Interval time.Duration
	// Sources returns the intakes reported on, in order: those running
	// at the time of the report.
	Sources func() []Source
}

// App-name, host and priority of the events: what rsyslog's impstats
// sends (syslog.info from rsyslogd-pstats).
const (
	appName = "rsyslogd-pstats"
	pri     = 5*8 + 6
)

// sampleEvery is how often the buffer depth is looked at between reports,
// for the queue's maxqsize.
const sampleEvery = time.Second

// Reporter is a running stats intake.
type Reporter struct {
	cfg      Config
	gatherer prometheus.Gatherer
	buf      *buffer.Buffer
	counted  func(events int, err error)
	log      *slog.Logger
	host     []byte
	// prev holds the counters at the last report; deltas are taken from it.
	prev map[string]float64
	// maxDepth is the deepest each intake's buffer was seen since the
	// last report, by intake.
	maxDepth map[string]float64
}

// New returns a stats intake reading gatherer's metrics; counted is told
// how many events each report made and whether the buffer took them.
func New(cfg Config, gatherer prometheus.Gatherer, buf *buffer.Buffer, counted func(events int, err error), log *slog.Logger) *Reporter {
	host, _ := os.Hostname()
	return &Reporter{cfg: cfg, gatherer: gatherer, buf: buf, counted: counted, log: log.With("intake", cfg.Intake), host: []byte(host),
		prev: map[string]float64{}, maxDepth: map[string]float64{}}
}

// Run reports every interval until ctx ends.
func (r *Reporter) Run(ctx context.Context) error {
	report := time.NewTicker(r.cfg.Interval)
	defer report.Stop()
	sample := time.NewTicker(min(sampleEvery, r.cfg.Interval))
	defer sample.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-sample.C:
			if m, err := metrics.Read(r.gatherer); err == nil {
				r.noteDepth(m)
			}
		case now := <-report.C:
			if err := r.report(ctx, now); err != nil && ctx.Err() == nil {
				r.log.Error("stats not stored", "err", err)
			}
		}
	}
}

// report stores one report's events as one buffer message.
func (r *Reporter) report(ctx context.Context, now time.Time) error {
	m, err := metrics.Read(r.gatherer)
	if err != nil {
		return err
	}
	events := r.events(m)
	batch := &pb.Batch{Logs: make([]*pb.Log, len(events))}
	for i, e := range events {
		batch.Logs[i] = &pb.Log{TimeReceivedNs: uint64(now.UnixNano()), Format: pb.LogFormat_RFC5424, Pri: pri,
			TimestampNs: now.UnixNano(), Hostname: r.host, AppName: []byte(appName), Msg: e}
	}
	data, err := batch.MarshalVT()
	if err != nil {
		return fmt.Errorf("encoding stats: %w", err)
	}
	err = r.buf.Publish(ctx, r.cfg.Subject, data)
	r.counted(len(events), err)
	return err
}

func (r *Reporter) noteDepth(m metrics.Values) {
	for _, s := range r.cfg.Sources() {
		r.maxDepth[s.Name] = max(r.maxDepth[s.Name], m.Get(buffer.MetricBufferMessages, s.Name))
	}
}

// events builds one report from the metrics m and remembers them for the
// next report's deltas. Each event is one JSON object, one per input,
// queue, action and connection of every intake, and one for the process.
func (r *Reporter) events(m metrics.Values) [][]byte {
	r.noteDepth(m)
	next := map[string]float64{}
	// delta is how much a counter grew since the last report.
	delta := func(name, intake string, reason ...string) int64 {
		k := name + "\x00" + intake + "\x00" + strings.Join(reason, "")
		v := m.Get(name, intake, reason...)
		next[k] = v
		return int64(max(v-r.prev[k], 0))
	}
	var events [][]byte
	add := func(e any) {
		b, _ := json.Marshal(e)
		events = append(events, b)
	}
	for _, s := range r.cfg.Sources() {
		n := s.Name
		switch s.Protocol {
		case "":
		case "tcp", "tls", "http":
			add(imtcp{Name: "input-" + n + "(" + strconv.Itoa(s.Port) + ")", Origin: "imtcp",
				Submitted: delta(collect.MetricDecodedEventsTotal, n)})
		default:
			// UDP syslog is imudp's; flow intakes are UDP inputs too, their
			// records (not datagrams) the messages submitted.
			add(imudp{Name: "input-" + n + "(*/" + strconv.Itoa(s.Port) + "/IPv4)", Origin: "imudp",
				Submitted: delta(collect.MetricDecodedEventsTotal, n)})
		}
		full := delta(collect.MetricDroppedEventsTotal, n, collect.ReasonBufferFull)
		add(queue{Name: "ruleset-" + n, Origin: "core.queue",
			Size:          int64(m.Get(buffer.MetricBufferMessages, n)),
			Enqueued:      delta(collect.MetricBufferedEventsTotal, n),
			Full:          full,
			DiscardedFull: full,
			// Every other reason an event or a datagram was dropped.
			DiscardedNF: max(delta(collect.MetricDroppedEventsTotal, n)-full, 0) + delta(collect.MetricDroppedPacketsTotal, n),
			MaxQSize:    int64(r.maxDepth[n])})
		add(action{Name: "output-" + n, Origin: "core.action",
			Processed:         delta(ship.MetricShippedEventsTotal, n),
			Failed:            delta(ship.MetricShipFailuresTotal, n),
			Suspended:         delta(ship.MetricShipRetriesTotal, n),
			SuspendedDuration: delta(ship.MetricShipBackoffSecondsTotal, n),
			Resumed:           delta(ship.MetricShipResumedTotal, n)})
		if s.Host != "" {
			add(omfwd{Name: "TCP-" + s.Host + "-" + strconv.Itoa(s.OutPort), Origin: "omfwd",
				BytesSent: delta(ship.MetricShippedBytesTotal, n)})
		}
		// Each route and drop rule: what it took since the last report.
		for _, rc := range collect.RouteMatched(m, n) {
			add(routeRule{Name: "route-" + n + "-" + rc.Rule, Origin: "flowgate.route",
				Matched: delta(collect.MetricRouteMatchedTotal, n, rc.Rule)})
		}
	}
	add(usage())
	r.prev = next
	clear(r.maxDepth)
	return events
}

// The shapes of impstats' JSON lines, field for field.
type (
	imtcp struct {
		Name      string `json:"name"`
		Origin    string `json:"origin"`
		Submitted int64  `json:"submitted"`
	}
	imudp struct {
		Name       string `json:"name"`
		Origin     string `json:"origin"`
		Submitted  int64  `json:"submitted"`
		Disallowed int64  `json:"disallowed"`
	}
	queue struct {
		Name          string `json:"name"`
		Origin        string `json:"origin"`
		Size          int64  `json:"size"`
		Enqueued      int64  `json:"enqueued"`
		Full          int64  `json:"full"`
		DiscardedFull int64  `json:"discarded.full"`
		DiscardedNF   int64  `json:"discarded.nf"`
		MaxQSize      int64  `json:"maxqsize"`
	}
	action struct {
		Name              string `json:"name"`
		Origin            string `json:"origin"`
		Processed         int64  `json:"processed"`
		Failed            int64  `json:"failed"`
		Suspended         int64  `json:"suspended"`
		SuspendedDuration int64  `json:"suspended.duration"`
		Resumed           int64  `json:"resumed"`
	}
	omfwd struct {
		Name      string `json:"name"`
		Origin    string `json:"origin"`
		BytesSent int64  `json:"bytes.sent"`
	}
	// routeRule is flowgate's own: no impstats counter says what a
	// ruleset's filters took.
	routeRule struct {
		Name    string `json:"name"`
		Origin  string `json:"origin"`
		Matched int64  `json:"matched"`
	}
	resourceUsage struct {
		Name      string `json:"name"`
		Origin    string `json:"origin"`
		UTime     int64  `json:"utime"`
		STime     int64  `json:"stime"`
		MaxRSS    int64  `json:"maxrss"`
		OpenFiles int64  `json:"openfiles"`
	}
)

// usage is the process's resource use since it started, as impstats gives
// it: CPU times in microseconds, the peak resident size in KiB, and the
// open file descriptors.
func usage() resourceUsage {
	u := resourceUsage{Name: "resource-usage", Origin: "impstats"}
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		u.UTime = ru.Utime.Sec*1e6 + int64(ru.Utime.Usec)
		u.STime = ru.Stime.Sec*1e6 + int64(ru.Stime.Usec)
		u.MaxRSS = int64(ru.Maxrss)
	}
	if fds, err := os.ReadDir("/proc/self/fd"); err == nil {
		u.OpenFiles = int64(len(fds))
	}
	return u
}
