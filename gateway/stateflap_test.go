package gateway_test

import (
	"slices"
	"testing"
)

// TestStateNoFlap (issue 10.9): a node's retained state is published
// only when it changes. A node's first connection publishes "up" alone
// (no "down" before it, which Home Assistant records as a disconnect),
// and its outages publish each change once, with the embedded broker
// and with an external one (mosquitto).
func TestStateNoFlap(t *testing.T) {
	for _, tc := range []struct{ name, broker string }{{"embedded", ""}, {"mosquitto", "mosquitto"}} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := testCtx(t)
			broker := tc.broker
			if broker == "mosquitto" {
				broker = startMosquitto(t)
			}
			g := startGateway(t, gwConfig(t, broker))
			url := broker
			if url == "" {
				url = mqttURL(g)
			}
			state := g.Topics().State("n")
			m := dialMQTT(t, ctx, url, state)
			var got []string
			for round := range 2 {
				n := dialNode(t, ctx, g.Addr().String(), "n")
				got = append(got, m.next(t, ctx, state))
				n.Close()
				got = append(got, m.next(t, ctx, state))
				if want := slices.Repeat([]string{"up", "down"}, round+1); !slices.Equal(got, want) {
					t.Fatalf("states published on %s: %q, want %q", state, got, want)
				}
			}
		})
	}
}
