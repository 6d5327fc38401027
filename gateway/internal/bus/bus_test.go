package bus_test

import (
	"testing"

	"github.com/tether-iot/tether/gateway/internal/bus"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestMatch(t *testing.T) {
	for _, tc := range []struct {
		filter, topic string
		want          bool
	}{
		{"tether/+/down", "tether/7/down", true},
		{"tether/+/down", "tether/7/down/noqos", false},
		{"tether/+/down/noqos", "tether/7/down/noqos", true},
		{"tether/#", "tether/7/up", true},
		{"tether/#", "tether", true},
		{"#", "$SYS/broker", false},
		{"tether/7/down", "tether/8/down", false},
		{"tether/+", "tether", false},
	} {
		if got := bus.Match(tc.filter, tc.topic); got != tc.want {
			t.Errorf("Match(%q, %q) = %v", tc.filter, tc.topic, got)
		}
	}
}
