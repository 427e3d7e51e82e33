package config

import (
	"fmt"
	"net/netip"
	"strings"
)

// UDP is the block of keys of the intakes that receive datagrams (udp,
// netflow, sflow).
type UDP struct {
	// ReceiveBuffer is the socket receive buffer (SO_RCVBUF) asked for, per
	// socket; 0 is receiver/udp's default.
	ReceiveBuffer Size `yaml:"receive_buffer"`
	// Sockets is how many SO_REUSEPORT sockets share the port; 0: one per CPU.
	Sockets int `yaml:"sockets"`
}

// Flow is the block of keys of the flow intakes (netflow, sflow).
type Flow struct {
	// Format is how flow events are written: ipfix, keys named after IANA
	// IPFIX elements (the default), or goflow2, goflow2's JSON for
	// pipelines built on it.
	Format string `yaml:"format"`
	// Workers decode in parallel, each exporter on one; 0: one per CPU.
	Workers int `yaml:"workers"`
	// ScaleSampling multiplies bytes and packets of sampled flows by the
	// sampling rate; on unless set to false (see Scaling).
	ScaleSampling *bool `yaml:"scale_sampling"`
	// Exporters are per-router settings, by address.
	Exporters []Exporter `yaml:"exporters"`
	// Aggregate sums the flows that share its keys over its window into
	// one event.
	Aggregate *Aggregate `yaml:"aggregate"`
}

// Bounds on the receive-path and flow settings.
const (
	maxReceiveBuffer = Size(1<<31 - 1) // SO_RCVBUF takes an int
	maxSockets       = 256
	maxWorkers       = 1024
)

// Scaling says whether sampled flows are scaled up by their rate.
func (f *Flow) Scaling() bool { return f.ScaleSampling == nil || *f.ScaleSampling }

func (f *Flow) resolve() {
	f.Format = strings.ToLower(strings.TrimSpace(f.Format))
	if f.Format == "" {
		f.Format = FormatIPFIX
	}
}

func (u *UDP) validate(where string) []error {
	var errs []error
	if u.ReceiveBuffer > maxReceiveBuffer {
		errs = append(errs, fmt.Errorf("%s: receive_buffer %s is above the most a socket takes (%s)", where, u.ReceiveBuffer, maxReceiveBuffer))
	}
	if u.Sockets < 0 || u.Sockets > maxSockets {
		errs = append(errs, fmt.Errorf("%s: sockets %d is not between 1 and %d", where, u.Sockets, maxSockets))
	}
	return errs
}

// validateFlow checks the blocks of a netflow or sflow intake, and parses
// exporter addresses.
func (in *Intake) validateFlow(where string) []error {
	f := in.Flow
	errs := in.UDP.validate(where)
	if f.Format != FormatIPFIX && f.Format != FormatGoFlow2 {
		errs = append(errs, fmt.Errorf("%s: unknown format %q (ipfix or goflow2)", where, f.Format))
	}
	if f.Workers < 0 || f.Workers > maxWorkers {
		errs = append(errs, fmt.Errorf("%s: workers %d is not between 1 and %d", where, f.Workers, maxWorkers))
	}
	seen := map[netip.Addr]int{}
	for i := range f.Exporters {
		errs = append(errs, f.Exporters[i].validate(in, i, seen)...)
	}
	return append(errs, f.validateAggregate(where)...)
}
