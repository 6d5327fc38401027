package gateway_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/tether-iot/tether/gateway"
	"github.com/tether-iot/tether/internal/harness/testutil"
	"go.uber.org/goleak"
)

// TestBrokerRestart: the external broker goes away and comes back
// without the gateway's session (mosquitto without persistence); the
// gateway reconnects by itself, subscribes again and republishes its
// online state. The broker then goes away for good: Close returns at
// once although the gateway is waiting to reconnect, and leaves no
// goroutine behind.
func TestBrokerRestart(t *testing.T) {
	ctx := testCtx(t)
	before := goleak.IgnoreCurrent()
	addr := freePort(t)
	stop := runMosquitto(t, addr, "allow_anonymous true\n")
	rec := newLogRecorder()
	cfg := gwConfig(t, "mqtt://"+addr)
	cfg.Logger = rec.logger()
	g := startGateway(t, cfg)
	n := dialNode(t, ctx, g.Addr().String(), "n")

	stop()
	rec.wait(t, ctx, "MQTT broker connection lost")
	rec.wait(t, ctx, "MQTT broker: reconnection failed")
	stop = runMosquitto(t, addr, "allow_anonymous true\n")
	rec.wait(t, ctx, "MQTT broker reconnected")

	// One client per topic: waiting on one topic discards the others'
	// messages, and the two retained messages come in either order.
	m := dialMQTT(t, ctx, "mqtt://"+addr, g.Topics().Gateway("test"))
	m.waitPayload(t, ctx, g.Topics().Gateway("test"), "online")
	// The broker restarted without persistence: the node's retained
	// state is published again.
	ms := dialMQTT(t, ctx, "mqtt://"+addr, g.Topics().State("n"))
	ms.waitPayload(t, ctx, g.Topics().State("n"), "up")
	ms.c.Disconnect(50)
	rec.wait(t, ctx, "MQTT: node states published again")
	m.publish(t, ctx, g.Topics().Down("n"), "after the restart")
	n.expect(t, ctx, "after the restart")
	if err := n.Write(ctx, "up again"); err != nil {
		t.Fatalf("node's message not acknowledged after the broker came back: %v", err)
	}
	m.c.Disconnect(50)

	stop()
	rec.wait(t, ctx, "MQTT broker connection lost")
	n.Close()
	closed := make(chan struct{})
	go func() {
		g.Close()
		close(closed)
	}()
	// A hang guard, not a timing assertion: Paho's own reconnection
	// slept up to 10 s and could not be stopped.
	select {
	case <-closed:
	case <-time.After(20 * time.Second):
		t.Fatal("Close did not return while the broker was down")
	}
	goleak.VerifyNone(t, before)
}

// TestDialAbandoned: Start's context ends while the broker does not
// answer the MQTT handshake (a listener that never accepts: the kernel
// completes the TCP handshake, nobody reads); Start returns its
// context's error and leaves nothing behind.
func TestDialAbandoned(t *testing.T) {
	before := goleak.IgnoreCurrent()
	ln := testutil.Listen(t)
	g, err := gateway.New(gwConfig(t, "mqtt://"+ln.Addr().String()))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*testT)
	defer cancel()
	err = g.Start(ctx)
	g.Close()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Start with a broker that never answers: %v, want the context's deadline", err)
	}
	goleak.VerifyNone(t, before)
}
