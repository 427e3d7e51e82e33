// Package enrich completes flow records between decoding and the buffer:
// pure functions over a record, no I/O, cheap enough for every flow.
package enrich

import (
	pb "github.com/flowgate/flowgate/proto"
)

// Config says what enrichment applies.
type Config struct {
	// ScaleSampling multiplies bytes and packets by the sampling rate, so
	// that sampled flows count what crossed the link.
	ScaleSampling bool
}

// DefaultConfig scales sampled flows.
func DefaultConfig() Config { return Config{ScaleSampling: true} }

// Enricher applies a configuration to flows.
type Enricher struct {
	cfg Config
}

// New returns an enricher.
func New(cfg Config) *Enricher { return &Enricher{cfg: cfg} }

// Flow enriches one flow in place.
func (e *Enricher) Flow(f *pb.Flow) {
	if e.cfg.ScaleSampling && f.Present&(1<<uint(pb.Field_SAMPLING)) != 0 && f.SamplingRate > 1 {
		f.Bytes *= f.SamplingRate
		f.Packets *= f.SamplingRate
	}
}
