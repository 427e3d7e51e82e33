package ship

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// The names of the metrics the status page and the stats intake read:
// defined here, next to what they measure, and nowhere else.
const (
	MetricShipBackoffSecondsTotal = "flowgate_ship_backoff_seconds_total"
	MetricShipFailuresTotal       = "flowgate_ship_failures_total"
	MetricShipRequestsTotal       = "flowgate_ship_requests_total"
	MetricShipResumedTotal        = "flowgate_ship_resumed_total"
	MetricShipRetriesTotal        = "flowgate_ship_retries_total"
	MetricShippedBytesTotal       = "flowgate_shipped_bytes_total"
	MetricShippedEventsTotal      = "flowgate_shipped_events_total"
)

// Metrics are the shippers' counters, labelled by intake.
type Metrics struct {
	events   *prometheus.CounterVec
	bytes    *prometheus.CounterVec
	requests *prometheus.CounterVec
	failures *prometheus.CounterVec
	retries  *prometheus.CounterVec
	dropped  *prometheus.CounterVec
	backoff  *prometheus.CounterVec
	resumed  *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	paused   *prometheus.GaugeVec
	splits   *prometheus.CounterVec
	// deadLetters is labelled by intake and status.
	deadLetters        *prometheus.CounterVec
	deadLettersDropped *prometheus.CounterVec
}

// NewMetrics registers the shippers' metrics.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: MetricShippedEventsTotal, Help: "Events accepted by the intake.",
		}, []string{"intake"}),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: MetricShippedBytesTotal, Help: "Bytes of events accepted by the intake, before compression.",
		}, []string{"intake"}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: MetricShipRequestsTotal, Help: "Batches sent, accepted or not.",
		}, []string{"intake"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: MetricShipFailuresTotal, Help: "Batches not accepted, by remote status (or error, timeout).",
		}, []string{"intake", "status"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: MetricShipRetriesTotal, Help: "Batches sent again after a failure.",
		}, []string{"intake"}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flowgate_ship_unreadable_messages_total", Help: "Buffer messages that could not be read and were set aside.",
		}, []string{"intake"}),
		backoff: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: MetricShipBackoffSecondsTotal, Help: "Time batches waited before being sent again after a failure, summed over the batches in flight.",
		}, []string{"intake"}),
		resumed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: MetricShipResumedTotal, Help: "Batches accepted after one or more failures: the output is back.",
		}, []string{"intake"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "flowgate_ship_request_seconds", Help: "Time to send one batch and get the answer.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 14),
		}, []string{"intake"}),
		paused: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "flowgate_ship_paused", Help: "1 while the intake refuses the key (401, 403): nothing is sent, records wait in the buffer.",
		}, []string{"intake"}),
		splits: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flowgate_ship_splits_total", Help: "Batches sent again in halves after a 413, 400 or 422.",
		}, []string{"intake"}),
		deadLetters: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flowgate_dead_letters_total", Help: "Events the intake refused alone (400, 413, 422), set aside in the dead letters (flowgate dlq).",
		}, []string{"intake", "status"}),
		deadLettersDropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flowgate_dead_letters_dropped_total", Help: "Events the intake refused alone that the full dead-letter stream could not take.",
		}, []string{"intake"}),
	}
	reg.MustRegister(m.events, m.bytes, m.requests, m.failures, m.retries, m.dropped, m.backoff, m.resumed, m.latency,
		m.paused, m.splits, m.deadLetters, m.deadLettersDropped)
	return m
}

// intakeMetrics are one intake's children, looked up once.
type intakeMetrics struct {
	intake   string
	parent   *Metrics
	events   prometheus.Counter
	bytes    prometheus.Counter
	requests prometheus.Counter
	retries  prometheus.Counter
	dropped  prometheus.Counter
	backoff  prometheus.Counter
	resumed  prometheus.Counter
	latency  prometheus.Observer
	paused   prometheus.Gauge
	splits   prometheus.Counter
	// deadLettersDropped counts events lost for want of room.
	deadLettersDropped prometheus.Counter
}

func (m *Metrics) forIntake(intake string) *intakeMetrics {
	// Only these answers set an event aside: their counters start at 0,
	// visible before the first dead letter.
	for _, st := range []int{http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusUnprocessableEntity} {
		m.deadLetters.WithLabelValues(intake, strconv.Itoa(st))
	}
	return &intakeMetrics{
		intake:   intake,
		parent:   m,
		events:   m.events.WithLabelValues(intake),
		bytes:    m.bytes.WithLabelValues(intake),
		requests: m.requests.WithLabelValues(intake),
		retries:  m.retries.WithLabelValues(intake),
		dropped:  m.dropped.WithLabelValues(intake),
		backoff:  m.backoff.WithLabelValues(intake),
		resumed:  m.resumed.WithLabelValues(intake),
		latency:  m.latency.WithLabelValues(intake),
		paused:   m.paused.WithLabelValues(intake),
		splits:   m.splits.WithLabelValues(intake),

		deadLettersDropped: m.deadLettersDropped.WithLabelValues(intake),
	}
}

func (m *intakeMetrics) observe(b *Batch, took time.Duration, err error) {
	m.requests.Inc()
	m.latency.Observe(took.Seconds())
	if err != nil {
		m.parent.failures.WithLabelValues(m.intake, statusLabel(err)).Inc()
		return
	}
	m.events.Add(float64(b.Len()))
	m.bytes.Add(float64(b.Bytes()))
}
