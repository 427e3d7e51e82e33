package httpd

import (
	"context"
	"encoding/json"
	"net/http"
	"net/netip"
	"runtime"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flowgate/flowgate/buffer"
	"github.com/flowgate/flowgate/collect"
	"github.com/flowgate/flowgate/decoder/flow"
	"github.com/flowgate/flowgate/metrics"
	"github.com/flowgate/flowgate/ship"
)

// History of the status page: one sample every historyEvery, for
// historyLength, and rates over rateWindow.
const (
	historyEvery  = 5 * time.Second
	historyLength = 15 * time.Minute
	rateWindow    = time.Minute
)

// IntakeInfo describes one intake for the status page.
type IntakeInfo struct {
	Name string
	// Protocol is tcp, udp, tls, netflow, sflow or stats.
	Protocol string
	Port     int
	// Output says where its events go (transport and endpoint).
	Output string
	// OutputOf, set, makes this another output of that intake (named
	// intake#output), with no input of its own.
	OutputOf string
	// Ship is its shipper's status.
	Ship *ship.Status
	// Drain is how fast its backlog drains (zero when it does not).
	Drain Drain
}

// Drain is how fast an intake's backlog drains: buffer messages a second,
// and the time left at that rate.
type Drain struct {
	Rate float64
	Left time.Duration
}

// StatusSources are what the status page shows.
type StatusSources struct {
	Gatherer prometheus.Gatherer
	// Intakes lists the running intakes; a reload changes them.
	Intakes func() []IntakeInfo
	// Templates lists the NetFlow v9 and IPFIX templates held.
	Templates func() []flow.TemplateInfo
	// Errors keeps the warnings and errors logged per intake.
	Errors  *ErrorLog
	Version string
}

// Status is the JSON document of /status.json, which the page renders.
type Status struct {
	Time      time.Time        `json:"time"`
	Version   string           `json:"version"`
	Ready     bool             `json:"ready"`
	NotReady  []string         `json:"not_ready"`
	Intakes   []IntakeStatus   `json:"intakes"`
	Exporters []ExporterStatus `json:"exporters"`
	Process   ProcessStatus    `json:"process"`
	// Store is the buffer's use of the disk.
	Store   StoreStatus `json:"store"`
	History []Sample    `json:"history"`
}

// IntakeStatus is one intake's counters (since start), rates (events per
// second over the last minute) and state.
type IntakeStatus struct {
	Name            string              `json:"name"`
	Protocol        string              `json:"protocol"`
	Port            int                 `json:"port,omitempty"`
	Output          string              `json:"output"`
	OutputOf        string              `json:"output_of,omitempty"`
	ReceivedPackets float64             `json:"received_packets"`
	ReceivedBytes   float64             `json:"received_bytes"`
	Decoded         float64             `json:"decoded"`
	Buffered        float64             `json:"buffered"`
	Shipped         float64             `json:"shipped"`
	ShippedBytes    float64             `json:"shipped_bytes"`
	Requests        float64             `json:"requests"`
	Failures        float64             `json:"failures"`
	Retries         float64             `json:"retries"`
	Dropped         map[string]float64  `json:"dropped"`
	RateIn          float64             `json:"rate_in"`
	RateOut         float64             `json:"rate_out"`
	BufferMessages  float64             `json:"buffer_messages"`
	BufferBytes     float64             `json:"buffer_bytes"`
	BufferAge       float64             `json:"buffer_age_seconds"`
	DrainRate       float64             `json:"drain_rate"`
	TimeLeft        float64             `json:"time_left_seconds"`
	Ship            ship.StatusSnapshot `json:"ship"`
	Errors          []LoggedError       `json:"errors"`
	Exporters       int                 `json:"exporters"`
	TemplateCount   int                 `json:"templates"`
	// Rules are what each of its routes and drop rules took, by rule name.
	Rules []collect.RuleCount `json:"rules"`
}

// ExporterStatus is one exporter of a flow intake.
type ExporterStatus struct {
	Intake          string              `json:"intake"`
	Exporter        string              `json:"exporter"`
	Packets         float64             `json:"packets"`
	Flows           float64             `json:"flows"`
	Rate            float64             `json:"rate"`
	LastSeen        time.Time           `json:"last_seen,omitzero"`
	TemplateMissing float64             `json:"template_missing"`
	LostRecords     float64             `json:"lost_records"`
	LostDatagrams   float64             `json:"lost_datagrams"`
	Templates       []flow.TemplateInfo `json:"templates"`
}

// ProcessStatus is the process's use of the machine.
type ProcessStatus struct {
	Goroutines    int     `json:"goroutines"`
	ResidentBytes float64 `json:"resident_bytes"`
	HeapBytes     uint64  `json:"heap_bytes"`
	OpenFDs       float64 `json:"open_fds"`
	Uptime        float64 `json:"uptime_seconds"`
}

// StoreStatus is the buffer's use of the disk.
type StoreStatus struct {
	Bytes      float64 `json:"bytes"`
	LimitBytes float64 `json:"limit_bytes"`
}

// Sample is the counters of every intake at one moment, for charts.
type Sample struct {
	Time    time.Time               `json:"t"`
	Intakes map[string]IntakeSample `json:"intakes"`
	// flows are the exporters' flows, by intake and exporter, for their
	// rates; not sent.
	flows map[string]float64
}

func (s *Sample) exporterFlows(intake, exporter string) float64 {
	return s.flows[intake+"\x00"+exporter]
}

// IntakeSample is one intake's counters in a Sample.
type IntakeSample struct {
	In      float64 `json:"in"`
	Out     float64 `json:"out"`
	Dropped float64 `json:"dropped"`
	Depth   float64 `json:"depth"`
}

// monitor keeps the history and serves the status.
type monitor struct {
	src     StatusSources
	ready   func() []string
	started time.Time

	mu      sync.Mutex
	history []Sample
}

// gather reads the metrics; a registry that cannot be read shows zeros.
func (m *monitor) gather() metrics.Values {
	v, err := metrics.Read(m.src.Gatherer)
	if err != nil {
		return metrics.Values{}
	}
	return v
}

// sample takes the counters history keeps.
func (m *monitor) sample(g metrics.Values, now time.Time) Sample {
	s := Sample{Time: now, Intakes: map[string]IntakeSample{}, flows: map[string]float64{}}
	g.Each(collect.MetricExporterFlowsTotal, func(intake, exporter string, v float64) {
		s.flows[intake+"\x00"+exporter] = v
	})
	for _, in := range m.src.Intakes() {
		is := IntakeSample{
			In:      g.Get(collect.MetricDecodedEventsTotal, in.Name),
			Out:     g.Get(ship.MetricShippedEventsTotal, in.Name),
			Dropped: g.Get(collect.MetricDroppedEventsTotal, in.Name) + g.Get(collect.MetricDroppedPacketsTotal, in.Name),
			Depth:   g.Get(buffer.MetricBufferMessages, in.Name),
		}
		s.Intakes[in.Name] = is
	}
	return s
}

// record appends a sample to the history, keeping historyLength of it.
func (m *monitor) record(s Sample) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.history = append(m.history, s)
	if n := int(historyLength / historyEvery); len(m.history) > n {
		m.history = append(m.history[:0], m.history[len(m.history)-n:]...)
	}
}

// run samples the history until ctx ends.
func (m *monitor) run(ctx context.Context) {
	tick := time.NewTicker(historyEvery)
	defer tick.Stop()
	m.record(m.sample(m.gather(), time.Now()))
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			m.record(m.sample(m.gather(), now))
		}
	}
}

// status builds the document.
func (m *monitor) status() Status {
	now := time.Now()
	g := m.gather()
	cur := m.sample(g, now)
	m.mu.Lock()
	history := append([]Sample(nil), m.history...)
	m.mu.Unlock()
	// The rates compare now with the oldest sample within rateWindow.
	var base *Sample
	for i := range history {
		if now.Sub(history[i].Time) <= rateWindow+historyEvery/2 {
			base = &history[i]
			break
		}
	}
	rate := func(now, then float64, dt time.Duration) float64 {
		if dt <= 0 {
			return 0
		}
		return max(now-then, 0) / dt.Seconds()
	}
	notReady := m.ready()
	st := Status{Time: now, Version: m.src.Version, Ready: len(notReady) == 0, NotReady: notReady,
		History: append(history, cur), Intakes: []IntakeStatus{}, Exporters: []ExporterStatus{}}
	var templates []flow.TemplateInfo
	if m.src.Templates != nil {
		templates = m.src.Templates()
	}
	byExporter := map[netip.Addr][]flow.TemplateInfo{}
	for _, t := range templates {
		byExporter[t.Exporter] = append(byExporter[t.Exporter], t)
	}
	for _, ts := range byExporter {
		sort.Slice(ts, func(i, j int) bool {
			if ts[i].Domain != ts[j].Domain {
				return ts[i].Domain < ts[j].Domain
			}
			return ts[i].ID < ts[j].ID
		})
	}
	for _, in := range m.src.Intakes() {
		n := in.Name
		is := IntakeStatus{Name: n, Protocol: in.Protocol, Port: in.Port, Output: in.Output, OutputOf: in.OutputOf,
			ReceivedPackets: g.Get(collect.MetricReceivedPacketsTotal, n),
			ReceivedBytes:   g.Get(collect.MetricReceivedBytesTotal, n),
			Decoded:         g.Get(collect.MetricDecodedEventsTotal, n),
			Buffered:        g.Get(collect.MetricBufferedEventsTotal, n),
			Shipped:         g.Get(ship.MetricShippedEventsTotal, n),
			ShippedBytes:    g.Get(ship.MetricShippedBytesTotal, n),
			Requests:        g.Get(ship.MetricShipRequestsTotal, n),
			Failures:        g.Get(ship.MetricShipFailuresTotal, n),
			Retries:         g.Get(ship.MetricShipRetriesTotal, n),
			BufferMessages:  g.Get(buffer.MetricBufferMessages, n),
			BufferBytes:     g.Get(buffer.MetricBufferBytes, n),
			BufferAge:       g.Get(buffer.MetricBufferOldestAgeSeconds, n),
			DrainRate:       in.Drain.Rate,
			TimeLeft:        in.Drain.Left.Seconds(),
			Dropped:         map[string]float64{},
			Errors:          []LoggedError{},
			Rules:           append([]collect.RuleCount{}, collect.RouteMatched(g, n)...),
		}
		for _, family := range []string{collect.MetricDroppedEventsTotal, collect.MetricDroppedPacketsTotal} {
			g.Each(family, func(intake, reason string, v float64) {
				if intake == n && v > 0 {
					is.Dropped[reason] += v
				}
			})
		}
		if base != nil {
			dt := now.Sub(base.Time)
			is.RateIn = rate(cur.Intakes[n].In, base.Intakes[n].In, dt)
			is.RateOut = rate(cur.Intakes[n].Out, base.Intakes[n].Out, dt)
		}
		if in.Ship != nil {
			is.Ship = in.Ship.Snapshot()
		}
		if m.src.Errors != nil {
			is.Errors = m.src.Errors.Recent(n)
		}
		st.Intakes = append(st.Intakes, is)
	}
	st.Exporters = m.exporters(g, base, now, byExporter)
	for _, e := range st.Exporters {
		for i := range st.Intakes {
			if st.Intakes[i].Name == e.Intake {
				st.Intakes[i].Exporters++
				st.Intakes[i].TemplateCount += len(e.Templates)
			}
		}
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	st.Process = ProcessStatus{Goroutines: runtime.NumGoroutine(), HeapBytes: ms.HeapAlloc,
		ResidentBytes: g.Get(metricResidentBytes, ""),
		OpenFDs:       g.Get(metricOpenFDs, ""),
		Uptime:        now.Sub(m.started).Seconds()}
	st.Store = StoreStatus{Bytes: g.Get(buffer.MetricBufferStoreBytes, ""), LimitBytes: g.Get(buffer.MetricBufferStoreLimitBytes, "")}
	return st
}

// exporters lists every exporter the metrics name, with its templates.
func (m *monitor) exporters(g metrics.Values, base *Sample, now time.Time, templates map[netip.Addr][]flow.TemplateInfo) []ExporterStatus {
	out := []ExporterStatus{}
	g.Each(collect.MetricExporterPacketsTotal, func(intake, exporter string, packets float64) {
		e := ExporterStatus{Intake: intake, Exporter: exporter, Packets: packets,
			Flows:           g.Get(collect.MetricExporterFlowsTotal, intake, exporter),
			TemplateMissing: g.Get(collect.MetricTemplateMissingTotal, intake, exporter),
			LostRecords:     g.Get(collect.MetricExporterLostRecordsTotal, intake, exporter),
			LostDatagrams:   g.Get(collect.MetricExporterLostDatagramsTotal, intake, exporter),
			Templates:       []flow.TemplateInfo{},
		}
		if seen := g.Get(collect.MetricExporterLastSeenTimestampSeconds, intake, exporter); seen > 0 {
			e.LastSeen = time.UnixMilli(int64(seen * 1e3))
		}
		if base != nil && now.After(base.Time) {
			e.Rate = max(e.Flows-base.exporterFlows(intake, exporter), 0) / now.Sub(base.Time).Seconds()
		}
		if a, err := netip.ParseAddr(exporter); err == nil {
			e.Templates = append(e.Templates, templates[a]...)
		}
		out = append(out, e)
	})
	sort.Slice(out, func(i, j int) bool {
		if out[i].Intake != out[j].Intake {
			return out[i].Intake < out[j].Intake
		}
		return out[i].Exporter < out[j].Exporter
	})
	return out
}

func (m *monitor) serveJSON(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	enc := json.NewEncoder(w)
	_ = enc.Encode(m.status())
}
