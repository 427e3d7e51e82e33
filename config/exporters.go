package config

import (
	"fmt"
	"maps"
	"net/netip"
	"slices"
)

// Bounds on the receive-path and exporter settings.
const (
	maxReceiveBuffer = Size(1<<31 - 1) // SO_RCVBUF takes an int
	maxSockets       = 256
	maxWorkers       = 1024
	maxNameBytes     = 256
)

// validateFlow checks the receive-path settings (UDP intakes) and the
// flow settings (netflow, sflow) of an intake, and parses exporter
// addresses.
func (in *Intake) validateFlow(where string) []error {
	var errs []error
	flow := in.Protocol == ProtocolNetFlow || in.Protocol == ProtocolSFlow
	udp := flow || in.Protocol == ProtocolUDP
	onlyFor := func(key string, set bool, ok bool, kinds string) {
		if set && !ok {
			errs = append(errs, fmt.Errorf("%s: %s applies to %s intakes only", where, key, kinds))
		}
	}
	onlyFor("receive_buffer", in.ReceiveBuffer != 0, udp, "udp, netflow and sflow")
	onlyFor("sockets", in.Sockets != 0, udp, "udp, netflow and sflow")
	onlyFor("workers", in.Workers != 0, flow, "netflow and sflow")
	onlyFor("scale_sampling", in.ScaleSampling != nil, flow, "netflow and sflow")
	onlyFor("exporters", len(in.Exporters) > 0, flow, "netflow and sflow")
	if in.ReceiveBuffer > maxReceiveBuffer {
		errs = append(errs, fmt.Errorf("%s: receive_buffer %s is above the most a socket takes (%s)", where, in.ReceiveBuffer, maxReceiveBuffer))
	}
	if in.Sockets < 0 || in.Sockets > maxSockets {
		errs = append(errs, fmt.Errorf("%s: sockets %d is not between 1 and %d", where, in.Sockets, maxSockets))
	}
	if in.Workers < 0 || in.Workers > maxWorkers {
		errs = append(errs, fmt.Errorf("%s: workers %d is not between 1 and %d", where, in.Workers, maxWorkers))
	}
	seen := map[netip.Addr]int{}
	for i := range in.Exporters {
		errs = append(errs, in.Exporters[i].validate(in, i, seen)...)
	}
	return errs
}

func (e *Exporter) validate(in *Intake, i int, seen map[netip.Addr]int) []error {
	var errs []error
	where := fmt.Sprintf("line %d: intake %q: exporter %s", e.Line, in.Name, e.Address)
	if e.Address == "" {
		where = fmt.Sprintf("line %d: intake %q: exporter #%d", e.Line, in.Name, i+1)
		errs = append(errs, fmt.Errorf("%s: address is missing", where))
	} else if a, err := netip.ParseAddr(e.Address); err != nil || a.Zone() != "" {
		errs = append(errs, fmt.Errorf("%s: address is not an IP address", where))
	} else {
		e.Addr = a.Unmap()
		if prev, dup := seen[e.Addr]; dup {
			errs = append(errs, fmt.Errorf("%s: address already listed at line %d", where, prev))
		}
		seen[e.Addr] = e.Line
	}
	if len(e.Name) > maxNameBytes {
		errs = append(errs, fmt.Errorf("%s: name is longer than %d bytes", where, maxNameBytes))
	}
	if e.SamplingOverride && e.SamplingRate == 0 {
		errs = append(errs, fmt.Errorf("%s: sampling_override needs a sampling_rate", where))
	}
	if e.SamplingRate > 1<<32-1 {
		errs = append(errs, fmt.Errorf("%s: sampling_rate %d is too large", where, e.SamplingRate))
	}
	for _, ifIndex := range slices.Sorted(maps.Keys(e.Interfaces)) {
		if name := e.Interfaces[ifIndex]; name == "" || len(name) > maxNameBytes {
			errs = append(errs, fmt.Errorf("%s: interface %d: the name must have 1 to %d bytes", where, ifIndex, maxNameBytes))
		}
	}
	return errs
}
