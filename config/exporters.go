package config

import (
	"fmt"
	"maps"
	"net/netip"
	"slices"
)

// Exporter is what the configuration says about one router exporting to
// a flow intake. Events of its flows carry the names.
type Exporter struct {
	// Address is the exporter's address, as its datagrams come from (for
	// sFlow, the agent address).
	Address string `yaml:"address"`
	// Name is written in the events as exporterName.
	Name string `yaml:"name"`
	// SamplingRate is used when the exporter states no rate (one packet in
	// SamplingRate), or always with SamplingOverride.
	SamplingRate uint64 `yaml:"sampling_rate"`
	// SamplingOverride makes SamplingRate win over what the exporter says.
	SamplingOverride bool `yaml:"sampling_override"`
	// Interfaces names the exporter's interfaces by ifIndex.
	Interfaces map[uint32]string `yaml:"interfaces"`

	// Addr is Address, parsed.
	Addr netip.Addr `yaml:"-"`
	// Line is where the exporter starts in the file, for messages.
	Line int `yaml:"-"`
}

// maxNameBytes bounds the names of an exporter and its interfaces.
const maxNameBytes = 256

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
