package gateway_test

import (
	"strings"
	"testing"

	"github.com/tether-iot/tether/gateway"
)

// TestPublishFailures: mosquitto dies while a node sends; the gateway
// cannot publish the node's message, counts the failure, logs it once,
// and does not acknowledge the message; the node repeats it, and once
// a mosquitto is back on the same port the message is published and
// acknowledged.
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
	if err := n.Write(ctx, "before"); err != nil {
		t.Fatal(err)
	}
	stop()
	written := make(chan error, 1)
	go func() { written <- n.Write(ctx, "during") }()
	failing := rec.wait(t, ctx, "MQTT: publishes are failing")
	if failing.attrs["kind"] != "up" {
		t.Errorf("first failure logged as %v, want kind up", failing.attrs)
	}
	select {
	case err := <-written:
		t.Fatalf("the node's message was acknowledged while the broker was down (%v)", err)
	default:
	}
	runMosquitto(t, addr, "allow_anonymous true\n")
	if err := <-written; err != nil {
		t.Fatalf("the node's message was not acknowledged once the broker was back: %v", err)
	}
	rec.wait(t, ctx, "MQTT: publishes succeed again")
	if n := len(rec.find("MQTT: publishes are failing")); n != 1 {
		t.Errorf("publish failures logged %d times, want once", n)
	}

	s := scrape(t, ctx, web)
	if v := metric(t, s, `tether_mqtt_publish_failures_total{kind="up"}`); v < 1 {
		t.Errorf("up publish failures = %v, want at least 1", v)
	}
	if v := metric(t, s, `tether_mqtt_publishes_total{kind="up"}`); v < 2 {
		t.Errorf("up publishes = %v, want at least 2 (before, during)", v)
	}
	if v := metric(t, s, `tether_nodes_refused_total`); v < 1 {
		t.Errorf("messages refused by the gateway = %v, want at least 1 (the failed delivery)", v)
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
