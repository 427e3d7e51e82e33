package config

import (
	"fmt"
	"time"
)

// Report is the block of keys of a stats intake, which ships the
// appliance's own counters in the shapes of rsyslog's impstats.
type Report struct {
	// Interval is how often it reports (default 60s).
	Interval time.Duration `yaml:"interval"`
}

const (
	defaultStatsInterval = time.Minute
	minStatsInterval     = time.Second
)

// validateStats checks a stats intake: it listens on nothing.
func (in *Intake) validateStats(where string) []error {
	var errs []error
	if in.Protocol != "" || in.Port != 0 {
		errs = append(errs, fmt.Errorf("%s: a stats intake takes no protocol or port: it ships the appliance's own counters", where))
	}
	if in.Report.Interval < minStatsInterval {
		errs = append(errs, fmt.Errorf("%s: interval %s is below the minimum of %s", where, in.Report.Interval, minStatsInterval))
	}
	return errs
}
