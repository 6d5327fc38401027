package gateway

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tether-iot/tether/gateway/internal/metrics"
	"github.com/tether-iot/tether/internal/buildinfo"
)

// Version is the running build's version (see tether version): on the
// status page, in tether_build_info and in Home Assistant's sw_version.
func Version() string { return buildinfo.Read().Short() }

var descBuildInfo = prometheus.NewDesc(metrics.Namespace+"_build_info",
	"The running build of Tether: always 1; its labels are the module version, the VCS revision (\"\" unknown) and the Go version.",
	[]string{"version", "revision", "goversion"}, nil)

var descAutoRefused = prometheus.NewDesc(metrics.Namespace+"_discovery_auto_fields_refused_total",
	"Numeric fields of nodes' JSON messages not made Home Assistant sensors because the node had MaxAutoFields (16) already (discovery.auto_fields).", nil, nil)

// buildCollector exports tether_build_info, and the discovery counter.
type buildCollector struct{ g *Gateway }

func (buildCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descBuildInfo
	ch <- descAutoRefused
}

func (c buildCollector) Collect(ch chan<- prometheus.Metric) {
	i := buildinfo.Read()
	ch <- prometheus.MustNewConstMetric(descBuildInfo, prometheus.GaugeValue, 1, i.Version, i.Revision, i.GoVersion)
	ch <- prometheus.MustNewConstMetric(descAutoRefused, prometheus.CounterValue, float64(c.g.stats.autoRefused.Load()))
}
