// Package metrics reads the appliance's own metrics, by the names their
// packages export, for the status page and the monitoring-events intake.
package metrics

import (
	"fmt"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
)

// Values are the appliance's metrics as the monitoring intake and the status
// page read them: by metric name, then summed by intake, and by intake
// and the second label that tells samples apart (reason, exporter or
// rule).
type Values map[string]map[string]float64

// Read gathers every counter and gauge of g.
func Read(g prometheus.Gatherer) (Values, error) {
	mfs, err := g.Gather()
	if err != nil && len(mfs) == 0 {
		return nil, fmt.Errorf("reading metrics: %w", err)
	}
	v := Values{}
	for _, mf := range mfs {
		byLabel := map[string]float64{}
		for _, s := range mf.GetMetric() {
			var x float64
			switch {
			case s.Counter != nil:
				x = s.Counter.GetValue()
			case s.Gauge != nil:
				x = s.Gauge.GetValue()
			default:
				continue
			}
			intake, second := "", ""
			for _, l := range s.GetLabel() {
				switch l.GetName() {
				case "intake":
					intake = l.GetValue()
				case "exporter", "reason", "rule":
					second = l.GetValue()
				}
			}
			byLabel[intake] += x
			if second != "" {
				byLabel[intake+"\x00"+second] += x
			}
		}
		v[mf.GetName()] = byLabel
	}
	return v, nil
}

// Get is the value of a metric for an intake ("" for none), summed over
// its other labels, or for an intake and a reason, exporter or rule.
func (v Values) Get(name, intake string, second ...string) float64 {
	k := intake
	if len(second) > 0 {
		k += "\x00" + second[0]
	}
	return v[name][k]
}

// Each calls fn for every intake and reason (or exporter) of a metric.
func (v Values) Each(name string, fn func(intake, second string, value float64)) {
	for k, x := range v[name] {
		if intake, second, ok := strings.Cut(k, "\x00"); ok {
			fn(intake, second, x)
		}
	}
}
