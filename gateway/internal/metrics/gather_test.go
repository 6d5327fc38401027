package metrics_test

import (
	"testing"

	dto "github.com/prometheus/client_model/go"

	"github.com/tether-iot/tether/gateway/internal/metrics"
)

// family gathers col's registry and returns the family called name.
func family(t *testing.T, col *metrics.Collector, name string) *dto.MetricFamily {
	t.Helper()
	mfs, err := col.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf
		}
	}
	t.Fatalf("no metric %s", name)
	return nil
}

// sample returns the value of the sample of family name whose label is
// value.
func sample(t *testing.T, col *metrics.Collector, name, label, value string) float64 {
	t.Helper()
	for _, m := range family(t, col, name).GetMetric() {
		for _, lp := range m.GetLabel() {
			if lp.GetName() == label && lp.GetValue() == value {
				return m.GetCounter().GetValue() + m.GetGauge().GetValue()
			}
		}
	}
	t.Fatalf("no %s{%s=%q}", name, label, value)
	return 0
}

// histogram returns the sample count and sum of histogram name.
func histogram(t *testing.T, col *metrics.Collector, name string) (uint64, float64) {
	t.Helper()
	h := family(t, col, name).GetMetric()[0].GetHistogram()
	return h.GetSampleCount(), h.GetSampleSum()
}
