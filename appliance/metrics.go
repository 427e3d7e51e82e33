package appliance

import (
	"runtime"
	"runtime/debug"

	"github.com/prometheus/client_golang/prometheus"
)

// MetricBuildInfo names the build: always 1, its labels say which.
const MetricBuildInfo = "flowgate_build_info"

// buildInfo is flowgate_build_info{version,revision,goversion}, the
// convention dashboards join on to show which build runs.
func buildInfo(version string) prometheus.Collector {
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: MetricBuildInfo, Help: "The build running: its version, VCS revision and Go version; always 1.",
		ConstLabels: prometheus.Labels{"version": version, "revision": revision(), "goversion": runtime.Version()},
	})
	g.Set(1)
	return g
}

// revision is the VCS revision the binary was built from ("unknown" when
// it was built outside a checkout, or by go test).
func revision() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				return s.Value
			}
		}
	}
	return "unknown"
}
