package gateway_test

import (
	"context"
	"testing"
	"time"
)

// TestEmbeddedRestart (issue 10.4): the embedded broker's retained
// messages and its clients' persistent sessions survive a restart of the
// gateway: a node's retained state that nobody publishes again, and a
// QoS 1 message queued for a persistent session (Home Assistant's,
// Node-RED's) that was away.
func TestEmbeddedRestart(t *testing.T) {
	ctx := testCtx(t)
	cfg := gwConfig(t, "")
	cfg.MQTT.Listen = freePort(t) // the same port for both runs
	g, err := newGateway(cfg)
	if err != nil {
		t.Fatal(err)
	}
	url := mqttURL(g)
	up, state := g.Topics().Up("n"), g.Topics().State("n")

	app := dialSession(t, ctx, url, "home-assistant", up)
	app.c.Disconnect(50) // away; its session stays
	watch := dialMQTT(t, ctx, url, state)
	n := dialNode(t, ctx, g.Addr().String(), "n")
	watch.waitPayload(t, ctx, state, "up")
	if err := n.Write(ctx, "while away"); err != nil {
		t.Fatal(err)
	}
	n.Close()
	watch.waitPayload(t, ctx, state, "down")
	watch.c.Disconnect(50)
	sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := g.Shutdown(sctx); err != nil {
		t.Fatal(err)
	}

	startGateway(t, cfg)
	// Node n is neither expected nor queued: the gateway does not
	// publish its state again; the retained "down" is the broker's.
	m := dialMQTT(t, ctx, url, state)
	select {
	case msg := <-m.msgs:
		if string(msg.Payload()) != "down" || !msg.Retained() {
			t.Errorf("after the restart %s is %q (retained %v), want the retained down", state, msg.Payload(), msg.Retained())
		}
	case <-time.After(5 * time.Second): // a hang guard: retained messages come with the SUBACK
		t.Errorf("after the restart, no retained message on %s", state)
	}
	app.connectSession(t, ctx, url, "home-assistant")
	select {
	case msg := <-app.msgs:
		if msg.Topic() != up || string(msg.Payload()) != "while away" {
			t.Errorf("persistent session: got %s %q, want %s \"while away\"", msg.Topic(), msg.Payload(), up)
		}
	case <-time.After(5 * time.Second):
		t.Errorf("the persistent session's queued message is gone after the restart")
	}
}
