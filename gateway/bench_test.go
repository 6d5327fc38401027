package gateway_test

import (
	"context"
	"strconv"
	"testing"
	"time"
)

// BenchmarkUplink: qos messages from one node, each published on the
// embedded broker and its window stored before the node's ACK.
func BenchmarkUplink(b *testing.B) {
	ctx := context.Background()
	cfg := gwConfigB(b, "")
	g := startGatewayB(b, cfg)
	app := dialMQTTB(b, ctx, mqttURL(g), "tether/n/up")
	n := dialNodeB(b, ctx, g.Addr().String(), "n")
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := n.Write(ctx, "m"+strconv.Itoa(i)); err != nil {
			b.Fatal(err)
		}
	}
	for i := 0; i < b.N; i++ {
		<-app.msgs
	}
}

// BenchmarkDownlink: qos messages to one node through the durable
// queue (stored, assigned, written, acknowledged, removed).
func BenchmarkDownlink(b *testing.B) {
	ctx := context.Background()
	cfg := gwConfigB(b, "")
	cfg.Queue.MaxMessages = -1 // Send runs ahead of the node
	g := startGatewayB(b, cfg)
	n := dialNodeB(b, ctx, g.Addr().String(), "n")
	if err := n.WaitUp(ctx); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	done := make(chan error, 1)
	go func() {
		for i := 0; i < b.N; i++ {
			if _, err := n.ReadLine(ctx); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	for i := 0; i < b.N; i++ {
		if err := g.Send(ctx, "n", "m"+strconv.Itoa(i)); err != nil {
			b.Fatal(err)
		}
	}
	if err := <-done; err != nil {
		b.Fatal(err)
	}
}

// BenchmarkSpool: qos messages from one node while mosquitto is down,
// each spooled with its window (one fsync) before the node's ACK: ns/op
// is the node's write. Then mosquitto comes back and the spool drains
// (a PUBACK, then a removal with one fsync, per message): drained/s.
func BenchmarkSpool(b *testing.B) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	addr, dir := freePort(b), b.TempDir()
	stop := runMosquittoPersistent(b, addr, dir)
	rec := newLogRecorder()
	cfg := gwConfigB(b, "mqtt://"+addr)
	cfg.Logger = rec.logger()
	cfg.Queue.MaxUpMessages = -1
	g := startGatewayB(b, cfg)
	n := dialNodeB(b, ctx, g.Addr().String(), "n")
	if err := n.WaitUp(ctx); err != nil {
		b.Fatal(err)
	}
	stop()
	rec.wait(b, ctx, "MQTT broker connection lost")
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := n.Write(ctx, "m"+strconv.Itoa(i)); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	start := time.Now()
	runMosquittoPersistent(b, addr, dir)
	rec.wait(b, ctx, "MQTT: the spooled messages are all published")
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "drained/s")
}
