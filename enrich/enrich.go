// Package enrich completes flow records between decoding and the buffer
// with what the configuration says: sampling rates and their scaling,
// exporter and interface names, and AS numbers, AS organisations and
// countries from MaxMind-format databases (geo.go). Pure functions over a
// record, no I/O on the way (databases are memory-mapped and reloaded
// aside), cheap enough for every flow.
package enrich

import (
	"net/netip"

	pb "github.com/flowgate/flowgate/proto"
)

// Config says what enrichment applies for one intake.
type Config struct {
	// ScaleSampling multiplies bytes and packets by the sampling rate, so
	// that sampled flows count what crossed the link.
	ScaleSampling bool
	// Exporters are per-exporter settings by address (IPv4 addresses in
	// their 4-byte form).
	Exporters map[netip.Addr]Exporter
	// Geo, when not nil, adds AS numbers, organisations and countries.
	Geo *Geo
}

// Exporter is what the configuration says about one exporter.
type Exporter struct {
	// Name goes into the flow as the exporter's name.
	Name string
	// SamplingRate is the rate of flows that state none, or of every flow
	// with SamplingOverride; 0: none.
	SamplingRate     uint64
	SamplingOverride bool
	// Interfaces names interfaces by ifIndex.
	Interfaces map[uint32]string
}

// Enricher applies a configuration to flows.
type Enricher struct {
	cfg Config
}

// New returns an enricher.
func New(cfg Config) *Enricher { return &Enricher{cfg: cfg} }

const samplingBit = 1 << uint(pb.Field_SAMPLING)

// Flow enriches one flow in place. The sampling rate the flow ends with,
// from the exporter or the configuration, is the one its counters were
// scaled by.
func (e *Enricher) Flow(f *pb.Flow) {
	if len(e.cfg.Exporters) > 0 {
		if a, ok := netip.AddrFromSlice(f.Exporter); ok {
			if x, ok := e.cfg.Exporters[a]; ok {
				x.apply(f)
			}
		}
	}
	if e.cfg.ScaleSampling && f.Present&samplingBit != 0 && f.SamplingRate > 1 {
		f.Bytes *= f.SamplingRate
		f.Packets *= f.SamplingRate
	}
	e.cfg.Geo.Flow(f)
}

func (x *Exporter) apply(f *pb.Flow) {
	f.ExporterName = x.Name
	if x.SamplingRate != 0 && (x.SamplingOverride || f.Present&samplingBit == 0) {
		f.SamplingRate = x.SamplingRate
		f.Present |= samplingBit
	}
	if len(x.Interfaces) > 0 {
		if f.Present&(1<<uint(pb.Field_IN_IF)) != 0 {
			f.InIfName = x.Interfaces[f.InIf]
		}
		if f.Present&(1<<uint(pb.Field_OUT_IF)) != 0 {
			f.OutIfName = x.Interfaces[f.OutIf]
		}
	}
}
