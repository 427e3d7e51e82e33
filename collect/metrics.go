package collect

import (
	"errors"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flowgate/flowgate/buffer"
)

// Metrics are the receiving side's counters, labelled by intake.
type Metrics struct {
	log             *slog.Logger
	packets         *prometheus.CounterVec
	bytes           *prometheus.CounterVec
	decoded         *prometheus.CounterVec
	buffered        *prometheus.CounterVec
	droppedEvents   *prometheus.CounterVec
	droppedPackets  *prometheus.CounterVec
	templateMissing *prometheus.CounterVec
	connections     *prometheus.GaugeVec
	paused          *prometheus.GaugeVec
	refused         *prometheus.CounterVec
}

// NewMetrics registers the receiving side's metrics.
func NewMetrics(reg prometheus.Registerer, log *slog.Logger) *Metrics {
	m := &Metrics{
		log: log,
		packets: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flowgate_received_packets_total", Help: "Datagrams (or syslog frames) received.",
		}, []string{"intake"}),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flowgate_received_bytes_total", Help: "Bytes received.",
		}, []string{"intake"}),
		decoded: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flowgate_decoded_events_total", Help: "Events (flow records, syslog messages) decoded.",
		}, []string{"intake"}),
		buffered: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flowgate_buffered_events_total", Help: "Events stored in the buffer: from here on, nothing is lost.",
		}, []string{"intake"}),
		droppedEvents: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flowgate_dropped_events_total", Help: "Events received and not stored, by reason (buffer_full, buffer_error, encode; oversize and truncated syslog frames).",
		}, []string{"intake", "reason"}),
		droppedPackets: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flowgate_dropped_packets_total", Help: "Datagrams refused, by reason (malformed, unknown_version).",
		}, []string{"intake", "reason"}),
		templateMissing: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flowgate_template_missing_total", Help: "Data sets skipped because the exporter had not sent their template.",
		}, []string{"intake"}),
		connections: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "flowgate_open_connections", Help: "TCP and TLS connections open on a syslog intake.",
		}, []string{"intake"}),
		paused: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "flowgate_paused_connections", Help: "Connections not being read because the buffer is full: their senders keep the data.",
		}, []string{"intake"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flowgate_refused_connections_total", Help: "Connections closed at once, by reason: over the intake's max_connections, a failed TLS handshake, or a handshake abandoned because max_connections newer ones were under way (tls_handshake_slow).",
		}, []string{"intake", "reason"}),
	}
	reg.MustRegister(m.packets, m.bytes, m.decoded, m.buffered, m.droppedEvents, m.droppedPackets, m.templateMissing,
		m.connections, m.paused, m.refused)
	return m
}

// intakeMetrics are one intake's children, looked up once.
type intakeMetrics struct {
	intake          string
	parent          *Metrics
	packets         prometheus.Counter
	bytes           prometheus.Counter
	decoded         prometheus.Counter
	buffered        prometheus.Counter
	templateMissing prometheus.Counter
	connections     prometheus.Gauge
	paused          prometheus.Gauge
}

func (m *Metrics) forIntake(intake string) *intakeMetrics {
	return &intakeMetrics{
		intake:          intake,
		parent:          m,
		packets:         m.packets.WithLabelValues(intake),
		bytes:           m.bytes.WithLabelValues(intake),
		decoded:         m.decoded.WithLabelValues(intake),
		buffered:        m.buffered.WithLabelValues(intake),
		templateMissing: m.templateMissing.WithLabelValues(intake),
		connections:     m.connections.WithLabelValues(intake),
		paused:          m.paused.WithLabelValues(intake),
	}
}

func (m *intakeMetrics) dropped(reason string, events int) {
	m.parent.droppedEvents.WithLabelValues(m.intake, reason).Add(float64(events))
}

func (m *intakeMetrics) refused(reason string) {
	m.parent.refused.WithLabelValues(m.intake, reason).Inc()
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
		m.dropped("buffer_full", records)
	default:
		m.dropped("buffer_error", records)
		m.parent.log.Error("buffer refused records", "intake", m.intake, "records", records, "err", err)
	}
}
