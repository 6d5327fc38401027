package metrics

import "time"

// unix returns t as fractional Unix seconds.
func unix(t time.Time) float64 {
	return float64(t.UnixNano()) / 1e9
}
