package gateway_test

import (
	"strings"
	"testing"

	"github.com/tether-iot/tether/gateway"
)

// TestPublishFailures: mosquitto dies; node n's messages meanwhile are
// acknowledged and spooled (no publish is tried, none fails), but the
// retained state that the gateway publishes when node m goes down
// cannot wait for the broker for ever: it fails after T, is counted by
// kind and logged once. Once a mosquitto is back on the same port,
// publishes succeed again (logged once) and the spool is published.
func TestPublishFailures(t *testing.T) {
	ctx := testCtx(t)
	addr := freePort(t)
	stop := runMosquitto(t, addr, "allow_anonymous true\n")
	rec := newLogRecorder()
	cfg := gwConfig(t, "mqtt://"+addr)
	cfg.Logger = rec.logger()
	on := true
	cfg.Web = gateway.WebConfig{Addr: "127.0.0.1:0", Enabled: &on, NodeMetrics: "none"}
	// Closed after the second mosquitto stopped (cleanups run last
	// first): Close must stop a reconnecting bus at once.
	g := startGateway(t, cfg)
	web := g.WebAddr().String()

	n := dialNode(t, ctx, g.Addr().String(), "n")
	m := dialNode(t, ctx, g.Addr().String(), "m")
	if err := n.Write(ctx, "before"); err != nil {
		t.Fatal(err)
	}
	if err := m.WaitUp(ctx); err != nil {
		t.Fatal(err)
	}
	stop()
	rec.wait(t, ctx, "MQTT broker connection lost")
	if err := n.Write(ctx, "during"); err != nil {
		t.Fatalf("the node's message was not acknowledged while the broker was down: %v", err)
	}
	m.Close()
	failing := rec.wait(t, ctx, "MQTT: publishes are failing")
	if failing.attrs["kind"] != "state" {
		t.Errorf("first failure logged as %v, want kind state", failing.attrs)
	}
	runMosquitto(t, addr, "allow_anonymous true\n")
	rec.wait(t, ctx, "MQTT: publishes succeed again")
	rec.wait(t, ctx, "MQTT: the spooled messages are all published")
	if n := len(rec.find("MQTT: publishes are failing")); n != 1 {
		t.Errorf("publish failures logged %d times, want once", n)
	}

	s := scrape(t, ctx, web)
	if v := metric(t, s, `tether_mqtt_publish_failures_total{kind="state"}`); v < 1 {
		t.Errorf("state publish failures = %v, want at least 1", v)
	}
	if v := metric(t, s, `tether_mqtt_publish_failures_total{kind="up"}`); v != 0 {
		t.Errorf("up publish failures = %v, want 0 (spooled, not tried)", v)
	}
	if v := metric(t, s, `tether_mqtt_publishes_total{kind="up"}`); v != 2 {
		t.Errorf("up publishes = %v, want 2 (before, during)", v)
	}
	if v := metric(t, s, `tether_nodes_refused_total`); v != 0 {
		t.Errorf("messages refused by the gateway = %v, want 0", v)
	}
	fleet := 0
	for key := range s {
		if strings.Contains(key, `node="`) {
			t.Errorf("node_metrics none, yet /metrics has %s", key)
		}
		if strings.HasPrefix(key, "tether_") {
			fleet++
		}
	}
	t.Logf("%d tether_ series with node_metrics none", fleet)
}
