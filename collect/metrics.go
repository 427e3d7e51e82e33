package collect

import (
	"errors"
	"log/slog"
	"net/netip"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flowgate/flowgate/buffer"
	"github.com/flowgate/flowgate/decoder/flow"
	"github.com/flowgate/flowgate/receiver/udp"
)

// ReasonBufferFull is the reason of events dropped because the buffer is
// full: rsyslog's queue counts them apart (discarded.full).
const ReasonBufferFull = "buffer_full"

// The names of the metrics the status page and the stats intake read:
// defined here, next to what they measure, and nowhere else.
const (
	MetricBufferedEventsTotal              = "flowgate_buffered_events_total"
	MetricDecodedEventsTotal               = "flowgate_decoded_events_total"
	MetricDroppedEventsTotal               = "flowgate_dropped_events_total"
	MetricDroppedPacketsTotal              = "flowgate_dropped_packets_total"
	MetricExporterFlowsTotal               = "flowgate_exporter_flows_total"
	MetricExporterLastSeenTimestampSeconds = "flowgate_exporter_last_seen_timestamp_seconds"
	MetricExporterLostDatagramsTotal       = "flowgate_exporter_lost_datagrams_total"
	MetricExporterLostRecordsTotal         = "flowgate_exporter_lost_records_total"
	MetricExporterPacketsTotal             = "flowgate_exporter_packets_total"
	MetricReceivedBytesTotal               = "flowgate_received_bytes_total"
	MetricReceivedPacketsTotal             = "flowgate_received_packets_total"
	MetricTemplateMissingTotal             = "flowgate_template_missing_total"
	MetricRouteMatchedTotal                = "flowgate_route_matched_total"
	MetricAbortedConnectionsTotal          = "flowgate_aborted_connections_total"
)

// The reasons of flowgate_dropped_events_total that routes give: a drop
// rule took the event, or no rule did on an intake without a key of its
// own.
const (
	ReasonDropRule = "drop_rule"
	ReasonNoRoute  = "no_route"
)

// maxExporterLabels bounds the exporters named in metric labels; the
// others are counted under exporter="other", so that a spoofer cannot
// grow the metrics without bound.
const maxExporterLabels = 1000

// Metrics are the receiving side's counters, labelled by intake.
type Metrics struct {
	log              *slog.Logger
	packets          *prometheus.CounterVec
	bytes            *prometheus.CounterVec
	decoded          *prometheus.CounterVec
	buffered         *prometheus.CounterVec
	droppedEvents    *prometheus.CounterVec
	droppedPackets   *prometheus.CounterVec
	templateMissing  *prometheus.CounterVec
	malformedSets    *prometheus.CounterVec
	templatesRefused *prometheus.CounterVec
	lostRecords      *prometheus.CounterVec
	lostDatagrams    *prometheus.CounterVec
	exporterPackets  *prometheus.CounterVec
	exporterFlows    *prometheus.CounterVec
	exporterSeen     *prometheus.GaugeVec
	kernelDrops      *kernelDrops

	// exporters are the exporter labels handed out so far.
	mu          sync.Mutex
	exporters   map[netip.Addr]string
	connections *prometheus.GaugeVec
	paused      *prometheus.GaugeVec
	refused     *prometheus.CounterVec
	aborted     *prometheus.CounterVec
	matched     *prometheus.CounterVec
}

// NewMetrics registers the receiving side's metrics.
func NewMetrics(reg prometheus.Registerer, log *slog.Logger) *Metrics {
	m := &Metrics{
		log: log,
		packets: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: MetricReceivedPacketsTotal, Help: "Datagrams (or syslog frames) received.",
		}, []string{"intake"}),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: MetricReceivedBytesTotal, Help: "Bytes received.",
		}, []string{"intake"}),
		decoded: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: MetricDecodedEventsTotal, Help: "Events (flow records, syslog messages) decoded.",
		}, []string{"intake"}),
		buffered: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: MetricBufferedEventsTotal, Help: "Events stored in the buffer: from here on, nothing is lost.",
		}, []string{"intake"}),
		droppedEvents: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: MetricDroppedEventsTotal, Help: "Events received and not stored, by reason (buffer_full, buffer_error, encode; oversize and truncated syslog frames; drop_rule, no_route: taken by a drop rule, or by no route of an intake without a key).",
		}, []string{"intake", "reason"}),
		droppedPackets: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: droppedPacketsName, Help: droppedPacketsHelp,
		}, []string{"intake", "reason"}),
		templateMissing: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: MetricTemplateMissingTotal, Help: "Data sets skipped because the exporter had not sent their template, by exporter.",
		}, []string{"intake", "exporter"}),
		malformedSets: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flowgate_malformed_sets_total", Help: "Sets (or their ends) skipped as malformed; the rest of their datagram was kept.",
		}, []string{"intake"}),
		templatesRefused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flowgate_templates_refused_total", Help: "Templates not kept because their exporter (or all exporters) hold too many.",
		}, []string{"intake"}),
		lostRecords: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: MetricExporterLostRecordsTotal, Help: "Records (NetFlow v5, IPFIX) the exporter's sequence numbers say were sent and never arrived: loss on the way to flowgate, by exporter.",
		}, []string{"intake", "exporter"}),
		lostDatagrams: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: MetricExporterLostDatagramsTotal, Help: "Datagrams (NetFlow v9) the exporter's sequence numbers say were sent and never arrived: loss on the way to flowgate, by exporter.",
		}, []string{"intake", "exporter"}),
		exporterPackets: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: MetricExporterPacketsTotal, Help: "Datagrams received from an exporter (malformed ones included), by exporter.",
		}, []string{"intake", "exporter"}),
		exporterFlows: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: MetricExporterFlowsTotal, Help: "Flow records decoded from an exporter's datagrams (sFlow counter records not included), by exporter.",
		}, []string{"intake", "exporter"}),
		exporterSeen: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: MetricExporterLastSeenTimestampSeconds, Help: "When an exporter's last datagram arrived, in seconds since 1970, by exporter.",
		}, []string{"intake", "exporter"}),
		kernelDrops: &kernelDrops{desc: prometheus.NewDesc("flowgate_udp_kernel_drops_total",
			"Datagrams the kernel dropped because a socket's receive buffer was full, by socket (SO_RXQ_OVFL).",
			[]string{"intake", "socket"}, nil),
			dropped: prometheus.NewDesc(droppedPacketsName, droppedPacketsHelp, []string{"intake", "reason"}, nil)},
		connections: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "flowgate_open_connections", Help: "TCP and TLS connections open on a syslog intake.",
		}, []string{"intake"}),
		paused: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "flowgate_paused_connections", Help: "Connections not being read because the buffer is full: their senders keep the data.",
		}, []string{"intake"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flowgate_refused_connections_total", Help: "Connections closed at once, by reason: over the intake's max_connections, a failed TLS handshake, or a handshake abandoned because max_connections newer ones were under way (tls_handshake_slow).",
		}, []string{"intake", "reason"}),
		aborted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: MetricAbortedConnectionsTotal, Help: "TCP and TLS connections that ended with an error instead of a clean close, by reason: reset (the sender reset it; what it had written and not yet transmitted was lost in its kernel), tls (a TLS alert, or a record cut short), error (another read error). What such a sender wrote last may be lost.",
		}, []string{"intake", "reason"}),
		matched: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: MetricRouteMatchedTotal, Help: "Events a route or drop rule took, by intake and rule (drop rules' events are also in flowgate_dropped_events_total{reason=\"drop_rule\"}).",
		}, []string{"intake", "rule"}),
		exporters: map[netip.Addr]string{},
	}
	reg.MustRegister(m.packets, m.bytes, m.decoded, m.buffered, m.droppedEvents, m.droppedPackets, m.templateMissing,
		m.malformedSets, m.templatesRefused, m.lostRecords, m.lostDatagrams, m.exporterPackets, m.exporterFlows,
		m.exporterSeen, m.kernelDrops, m.connections, m.paused, m.refused, m.aborted, m.matched)
	// The kernel's drops also count in the intake's dropped datagrams; that
	// family's other reasons come from droppedPackets, so this part is
	// registered unchecked and merged into it when gathered.
	reg.MustRegister(kernelDropsByIntake{m.kernelDrops})
	return m
}

// The family of datagrams dropped, shared by droppedPackets and the
// kernel's drops.
const (
	droppedPacketsName = MetricDroppedPacketsTotal
	droppedPacketsHelp = "Datagrams dropped, by reason: malformed, unknown_version (refused by the decoder), kernel (socket buffer full, the sum of flowgate_udp_kernel_drops_total)."
)

// WatchTemplates exports how many templates the store holds.
func WatchTemplates(reg prometheus.Registerer, t *flow.Templates) {
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "flowgate_templates", Help: "NetFlow v9 and IPFIX templates held, over every exporter.",
	}, func() float64 { return float64(t.Len()) }))
}

// exporterLabel names an exporter in labels, within maxExporterLabels.
func (m *Metrics) exporterLabel(a netip.Addr) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	if l, ok := m.exporters[a]; ok {
		return l
	}
	if len(m.exporters) >= maxExporterLabels {
		return "other"
	}
	l := a.String()
	m.exporters[a] = l
	return l
}

// kernelDrops reads the sockets' drop counters when scraped.
type kernelDrops struct {
	desc      *prometheus.Desc
	dropped   *prometheus.Desc
	mu        sync.Mutex
	listeners []intakeListener
}

type intakeListener struct {
	intake string
	l      *udp.Listener
}

func (k *kernelDrops) Describe(ch chan<- *prometheus.Desc) { ch <- k.desc }

func (k *kernelDrops) Collect(ch chan<- prometheus.Metric) {
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, il := range k.listeners {
		for i := range il.l.Sockets() {
			ch <- prometheus.MustNewConstMetric(k.desc, prometheus.CounterValue, float64(il.l.Drops(i)), il.intake, strconv.Itoa(i))
		}
	}
}

// kernelDropsByIntake sums the kernel's drops per intake into
// flowgate_dropped_packets_total{reason="kernel"}.
type kernelDropsByIntake struct{ k *kernelDrops }

// Describe sends nothing: the collector is unchecked, its family shared.
func (kernelDropsByIntake) Describe(chan<- *prometheus.Desc) {}

func (c kernelDropsByIntake) Collect(ch chan<- prometheus.Metric) {
	c.k.mu.Lock()
	defer c.k.mu.Unlock()
	sums := map[string]uint64{}
	var order []string
	for _, il := range c.k.listeners {
		if _, ok := sums[il.intake]; !ok {
			order = append(order, il.intake)
		}
		for i := range il.l.Sockets() {
			sums[il.intake] += il.l.Drops(i)
		}
	}
	for _, intake := range order {
		ch <- prometheus.MustNewConstMetric(c.k.dropped, prometheus.CounterValue, float64(sums[intake]), intake, "kernel")
	}
}

func (m *Metrics) watchListener(intake string, l *udp.Listener) {
	m.kernelDrops.mu.Lock()
	defer m.kernelDrops.mu.Unlock()
	m.kernelDrops.listeners = append(m.kernelDrops.listeners, intakeListener{intake, l})
}

func (m *Metrics) unwatchListener(l *udp.Listener) {
	m.kernelDrops.mu.Lock()
	defer m.kernelDrops.mu.Unlock()
	m.kernelDrops.listeners = slices.DeleteFunc(m.kernelDrops.listeners, func(il intakeListener) bool { return il.l == l })
}

// intakeMetrics are one intake's children, looked up once.
type intakeMetrics struct {
	intake           string
	parent           *Metrics
	packets          prometheus.Counter
	bytes            prometheus.Counter
	decoded          prometheus.Counter
	buffered         prometheus.Counter
	malformedSets    prometheus.Counter
	templatesRefused prometheus.Counter
	connections      prometheus.Gauge
	paused           prometheus.Gauge
}

// droppedEventReasons and droppedPacketReasons are the reasons served
// from the start, at 0, so that drops can be graphed and alerted on before
// the first one ("kernel" is served by the kernel drops' collector).
var (
	droppedEventReasons  = []string{ReasonBufferFull, "buffer_error", "encode", "oversize", "truncated", ReasonDropRule, ReasonNoRoute}
	droppedPacketReasons = []string{"malformed", "unknown_version"}
)

func (m *Metrics) forIntake(intake string) *intakeMetrics {
	for _, r := range droppedEventReasons {
		m.droppedEvents.WithLabelValues(intake, r)
	}
	for _, r := range droppedPacketReasons {
		m.droppedPackets.WithLabelValues(intake, r)
	}
	return &intakeMetrics{
		intake:           intake,
		parent:           m,
		packets:          m.packets.WithLabelValues(intake),
		bytes:            m.bytes.WithLabelValues(intake),
		decoded:          m.decoded.WithLabelValues(intake),
		buffered:         m.buffered.WithLabelValues(intake),
		malformedSets:    m.malformedSets.WithLabelValues(intake),
		templatesRefused: m.templatesRefused.WithLabelValues(intake),
		connections:      m.connections.WithLabelValues(intake),
		paused:           m.paused.WithLabelValues(intake),
	}
}

// exporterCounters are one exporter's children in one intake.
type exporterCounters struct {
	packets, flows, templateMissing, lostRecords, lostDatagrams prometheus.Counter
	lastSeen                                                    prometheus.Gauge
}

// exporterCache keeps a worker's exporter children: looked up only when a
// datagram has something to count for its exporter, then kept.
type exporterCache map[netip.Addr]*exporterCounters

// maxCachedExporters bounds a worker's cache.
const maxCachedExporters = 4096

// exporter returns the counters of the exporter a datagram came from,
// counting the datagram: looked up once per worker, then kept.
func (m *intakeMetrics) exporter(c exporterCache, from netip.Addr, received time.Time) *exporterCounters {
	e := c[from]
	if e == nil {
		if len(c) >= maxCachedExporters {
			clear(c)
		}
		label := m.parent.exporterLabel(from)
		e = &exporterCounters{
			packets:         m.parent.exporterPackets.WithLabelValues(m.intake, label),
			flows:           m.parent.exporterFlows.WithLabelValues(m.intake, label),
			templateMissing: m.parent.templateMissing.WithLabelValues(m.intake, label),
			lostRecords:     m.parent.lostRecords.WithLabelValues(m.intake, label),
			lostDatagrams:   m.parent.lostDatagrams.WithLabelValues(m.intake, label),
			lastSeen:        m.parent.exporterSeen.WithLabelValues(m.intake, label),
		}
		c[from] = e
	}
	e.packets.Inc()
	e.lastSeen.Set(float64(received.UnixMilli()) / 1e3)
	return e
}

// result counts what decoding one datagram of exporter e gave.
func (m *intakeMetrics) result(e *exporterCounters, res *flow.Result) {
	m.decoded.Add(float64(res.Flows + res.Counters))
	if res.Flows > 0 {
		e.flows.Add(float64(res.Flows))
	}
	if res.BadSets > 0 {
		m.malformedSets.Add(float64(res.BadSets))
	}
	if res.RefusedTemplates > 0 {
		m.templatesRefused.Add(float64(res.RefusedTemplates))
	}
	if res.MissingTemplate > 0 {
		e.templateMissing.Add(float64(res.MissingTemplate))
	}
	if res.LostRecords > 0 {
		e.lostRecords.Add(float64(res.LostRecords))
	}
	if res.LostDatagrams > 0 {
		e.lostDatagrams.Add(float64(res.LostDatagrams))
	}
}

func (m *intakeMetrics) dropped(reason string, events int) {
	m.parent.droppedEvents.WithLabelValues(m.intake, reason).Add(float64(events))
}

func (m *intakeMetrics) refused(reason string) {
	m.parent.refused.WithLabelValues(m.intake, reason).Inc()
}

// The reasons of flowgate_refused_connections_total.
const (
	refusedMaxConnections   = "max_connections"
	refusedTLSHandshake     = "tls_handshake"
	refusedTLSHandshakeSlow = "tls_handshake_slow"
)

// The reasons of flowgate_aborted_connections_total.
const (
	abortedReset = "reset"
	abortedTLS   = "tls"
	abortedError = "error"
)

// watchAborted serves each reason of flowgate_aborted_connections_total
// and flowgate_refused_connections_total from the start, at 0: a stream
// intake's resets can be graphed and alerted on before the first one.
func (m *intakeMetrics) watchAborted() {
	for _, r := range []string{abortedReset, abortedTLS, abortedError} {
		m.parent.aborted.WithLabelValues(m.intake, r)
	}
	for _, r := range []string{refusedMaxConnections, refusedTLSHandshake, refusedTLSHandshakeSlow} {
		m.parent.refused.WithLabelValues(m.intake, r)
	}
}

func (m *intakeMetrics) aborted(reason string) {
	m.parent.aborted.WithLabelValues(m.intake, reason).Inc()
}

func (m *intakeMetrics) malformed(err error) {
	m.parent.droppedPackets.WithLabelValues(m.intake, malformedReason(err)).Inc()
}

// published counts the outcome of one buffer message.
func (m *intakeMetrics) published(records int, err error) {
	switch {
	case err == nil:
		m.buffered.Add(float64(records))
	case errors.Is(err, buffer.ErrFull):
		m.dropped(ReasonBufferFull, records)
	default:
		m.dropped("buffer_error", records)
		m.parent.log.Error("buffer refused records", "intake", m.intake, "records", records, "err", err)
	}
}

// MaxConnectionsRefused returns how a listener of another package (the
// local HTTP intake's) counts a connection it closed at once for being
// over max_connections (flowgate_refused_connections_total), served from
// the start, at 0.
func (m *Metrics) MaxConnectionsRefused(intake string) func() {
	c := m.refused.WithLabelValues(intake, refusedMaxConnections)
	return c.Inc
}

// Produced returns how an intake that makes its own events (a stats
// intake) counts them: decoded when made, then buffered or dropped as the
// buffer answers.
func (m *Metrics) Produced(intake string) func(events int, err error) {
	im := m.forIntake(intake)
	return func(events int, err error) {
		im.decoded.Add(float64(events))
		im.published(events, err)
	}
}
