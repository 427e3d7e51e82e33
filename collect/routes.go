package collect

import (
	"slices"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flowgate/flowgate/metrics"
	pb "github.com/flowgate/flowgate/proto"
	"github.com/flowgate/flowgate/route"
)

// Routes are what an intake's rules need from the receiver: the compiled
// rules and, by rule, the buffer subject its events go to.
type Routes struct {
	// Table is the intake's rules; nil: none.
	Table *route.Table
	// Subjects gives, by rule, the subject of the rule's intake key ("" for
	// a drop rule).
	Subjects []string
}

// router sends each record to the destination of the rule that takes it.
// Destinations are buffer subjects by index: 0 is the intake's own, the
// others one per routed key.
type router struct {
	table *route.Table
	// subjects are the destinations' subjects; subjects[0] is "" when the
	// intake has no key: what no rule takes is then dropped.
	subjects []string
	// dest is, by rule, its destination, or -1 for a drop rule.
	dest    []int
	matched []prometheus.Counter
	// dropRule and noRoute count the drops, looked up once.
	dropRule, noRoute prometheus.Counter
}

func newRouter(own string, rs Routes, m *intakeMetrics) *router {
	r := &router{table: rs.Table, subjects: []string{own}}
	if rs.Table == nil {
		return r
	}
	r.dropRule = m.parent.droppedEvents.WithLabelValues(m.intake, ReasonDropRule)
	r.noRoute = m.parent.droppedEvents.WithLabelValues(m.intake, ReasonNoRoute)
	for i, rule := range rs.Table.Rules() {
		// Created now, so that each rule's counter is there from the start.
		r.matched = append(r.matched, m.parent.matched.WithLabelValues(m.intake, rule.Name))
		d := -1
		if !rule.Drop && i < len(rs.Subjects) {
			d = r.destination(rs.Subjects[i])
		}
		r.dest = append(r.dest, d)
	}
	return r
}

// destination is the index of subject, added when new.
func (r *router) destination(subject string) int {
	for i, s := range r.subjects {
		if s == subject && (i > 0 || s != "") {
			return i
		}
	}
	r.subjects = append(r.subjects, subject)
	return len(r.subjects) - 1
}

// take counts what rule i (or none) did with an event, and returns its
// destination, -1 when it is dropped.
func (r *router) take(i int) int {
	if i == route.None {
		if r.subjects[0] == "" {
			r.noRoute.Inc()
			return -1
		}
		return 0
	}
	r.matched[i].Inc()
	d := r.dest[i]
	if d < 0 {
		r.dropRule.Inc()
	}
	return d
}

// log returns the destination of a syslog record, -1 when it is dropped.
func (r *router) log(l *pb.Log) int {
	if r.table == nil {
		return 0
	}
	return r.take(r.table.Log(l))
}

// flow returns the destination of a flow record, -1 when it is dropped.
func (r *router) flow(f *pb.Flow) int {
	if r.table == nil {
		return 0
	}
	return r.take(r.table.Flow(f))
}

// RuleCount is how many events one rule of an intake took.
type RuleCount struct {
	Rule    string  `json:"rule"`
	Matched float64 `json:"matched"`
}

// RouteMatched reads, from the appliance's metrics, how many events each
// rule of intake took (flowgate_route_matched_total), by rule name: for
// the status page and the stats intake.
func RouteMatched(v metrics.Values, intake string) []RuleCount {
	var out []RuleCount
	v.Each(MetricRouteMatchedTotal, func(in, rule string, n float64) {
		if in == intake {
			out = append(out, RuleCount{rule, n})
		}
	})
	slices.SortFunc(out, func(a, b RuleCount) int { return strings.Compare(a.Rule, b.Rule) })
	return out
}
