package httpintake

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// The names of the local HTTP intake's metrics: defined here, next to what
// they measure, and nowhere else.
const (
	MetricRequestsTotal    = "flowgate_http_intake_requests_total"
	MetricRefusedKeysTotal = "flowgate_http_intake_refused_keys_total"
)

// The reasons of flowgate_http_intake_refused_keys_total.
const (
	ReasonUnknownKey   = "unknown_key"
	ReasonMalformedKey = "malformed_key"
	ReasonMaxKeys      = "max_keys"
)

// Metrics count the local HTTP intakes' requests, labelled by intake.
type Metrics struct {
	requests    *prometheus.CounterVec
	refusedKeys *prometheus.CounterVec
}

// NewMetrics registers the metrics.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: MetricRequestsTotal, Help: "Requests answered by a local HTTP intake, by status code.",
		}, []string{"intake", "code"}),
		refusedKeys: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: MetricRefusedKeysTotal, Help: "Requests refused (403) for their intake key, by reason (unknown_key: not in intake_keys; malformed_key; max_keys: intake_keys: any has max_keys already).",
		}, []string{"intake", "reason"}),
	}
	reg.MustRegister(m.requests, m.refusedKeys)
	return m
}

// intakeMetrics are one intake's children.
type intakeMetrics struct {
	m      *Metrics
	intake string
}

// forIntake serves the refusal reasons from the start, at 0, so that
// they can be alerted on before the first one.
func (m *Metrics) forIntake(intake string) intakeMetrics {
	for _, r := range []string{ReasonUnknownKey, ReasonMalformedKey, ReasonMaxKeys} {
		m.refusedKeys.WithLabelValues(intake, r)
	}
	return intakeMetrics{m: m, intake: intake}
}

func (im intakeMetrics) answered(code int) {
	im.m.requests.WithLabelValues(im.intake, strconv.Itoa(code)).Inc()
}

func (im intakeMetrics) refusedKey(reason string) {
	im.m.refusedKeys.WithLabelValues(im.intake, reason).Inc()
}
