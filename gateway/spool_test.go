package gateway_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/tether-iot/tether/gateway"
	"github.com/tether-iot/tether/internal/harness/legacy"
	"github.com/tether-iot/tether/internal/harness/testutil"
	"github.com/tether-iot/tether/link"
)

// dialSession connects a test MQTT client with a persistent session
// (clean session off) under client ID id: what an application that must
// not miss a message across a broker restart is.
func dialSession(t *testing.T, ctx context.Context, url, id string, filters ...string) *mqttClient {
	t.Helper()
	m := &mqttClient{msgs: make(chan paho.Message, 1000)}
	m.connectSession(t, ctx, url, id)
	t.Cleanup(func() { m.c.Disconnect(50) })
	subs := make(map[string]byte)
	for _, f := range filters {
		subs[f] = 1
	}
	if err := wait(ctx, m.c.SubscribeMultiple(subs, nil)); err != nil {
		t.Fatal(err)
	}
	return m
}

// connectSession connects m (again) under id with its session: after a
// broker restart, the broker's saved session keeps the subscriptions and
// the messages queued meanwhile.
func (m *mqttClient) connectSession(t *testing.T, ctx context.Context, url, id string) {
	t.Helper()
	if m.c != nil {
		m.c.Disconnect(0) // its connection died with the broker
	}
	o := paho.NewClientOptions().AddBroker(strings.Replace(url, "mqtt://", "tcp://", 1)).
		SetClientID(id).SetCleanSession(false).SetOrderMatters(true).SetAutoReconnect(false).
		SetDefaultPublishHandler(func(_ paho.Client, msg paho.Message) { m.msgs <- msg })
	m.c = paho.NewClient(o)
	if err := wait(ctx, m.c.Connect()); err != nil {
		t.Fatalf("test MQTT client: %v", err)
	}
}

// take reads messages into got, by topic, in order, until topic has
// count of them.
func (m *mqttClient) take(t *testing.T, ctx context.Context, got map[string][]string, topic string, count int) {
	t.Helper()
	for len(got[topic]) < count {
		select {
		case msg := <-m.msgs:
			got[msg.Topic()] = append(got[msg.Topic()], string(msg.Payload()))
		case <-ctx.Done():
			t.Fatalf("MQTT: %d messages on %s, want %d: %v (got %q)", len(got[topic]), topic, count, ctx.Err(), got)
		}
	}
}

// spoolGateway starts mosquitto (persistent, in its own dir) and a
// gateway on it whose node n has a durable route to node r (owned by
// another gateway: only the broker sees it), with the status page on.
func spoolGateway(t *testing.T, rec *logRecorder) (cfg gateway.Config, addr, mqdir string, stop func()) {
	t.Helper()
	addr, mqdir = freePort(t), t.TempDir()
	stop = runMosquittoPersistent(t, addr, mqdir)
	cfg = gwConfig(t, "mqtt://"+addr)
	cfg.Logger = rec.logger()
	cfg.Nodes.Expect = []string{"n", "legacy"}
	cfg.Routes = []gateway.Route{{From: "n", To: "r"}}
	on := true
	cfg.Web = gateway.WebConfig{Addr: "127.0.0.1:0", Enabled: &on}
	return cfg, addr, mqdir, stop
}

// TestSpoolBrokerOutage: mosquitto stops; node n sends messages, qos
// and qos-off, and every one is acknowledged at once (spooled with its
// route); a legacy node's qos-off write no longer holds up its next
// qos+wait write. Mosquitto comes back on the same port with its saved
// sessions: an application sees every message once, in order, on the
// up topic and on the route's, and the spools drain to 0 (API and
// metrics).
func TestSpoolBrokerOutage(t *testing.T) {
	ctx := testCtx(t)
	rec := newLogRecorder()
	cfg, addr, mqdir, stop := spoolGateway(t, rec)
	g := startGateway(t, cfg)
	url := "mqtt://" + addr
	web := g.WebAddr().String()
	app := dialSession(t, ctx, url, "spool-app", "tether/n/up", "tether/r/down", "tether/legacy/up")
	n := dialNode(t, ctx, g.Addr().String(), "n")
	old, err := legacy.StartNode(ctx, legacy.NodeConfig{ID: "legacy", Addr: g.Addr().String(), Timeout: testT, Logger: testutil.Logger()})
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	if err := old.WaitUp(ctx); err != nil {
		t.Fatal(err)
	}
	if err := n.Write(ctx, "before"); err != nil {
		t.Fatal(err)
	}
	got := map[string][]string{}
	app.take(t, ctx, got, "tether/n/up", 1)

	stop()
	rec.wait(t, ctx, "MQTT broker connection lost")
	const count = 12
	var want []string
	for i := range count {
		p := fmt.Sprintf("spooled %d", i)
		want = append(want, p)
		var opts []link.WriteOption
		if i%3 == 1 && i != count-1 {
			opts = append(opts, link.QoS(false)) // never repeated: must not be lost
		}
		if err := n.Write(ctx, p, opts...); err != nil {
			t.Fatalf("write %q while the broker is down: %v", p, err)
		}
	}
	// The legacy node: a qos-off write (never repeated), then a qos+wait
	// write, which waits for every earlier id to be acknowledged.
	if err := old.Write(ctx, "legacy noqos", false, false); err != nil {
		t.Fatal(err)
	}
	if err := old.Write(ctx, "legacy qos", true, true); err != nil {
		t.Fatalf("legacy qos+wait write after a qos-off one while the broker is down: %v", err)
	}
	if l, err := g.Server().Lookup("n"); err != nil || l.Stats().Refused != 0 {
		t.Fatalf("node n's messages refused by the gateway: %v %+v", err, l.Stats())
	}
	if s := g.Spool("n"); s.Messages != count || s.Refused != 0 || s.Full {
		t.Fatalf("spool of n = %+v, want %d messages", s, count)
	}
	if l := rec.find("MQTT: the broker does not take messages now"); len(l) != 1 {
		t.Errorf("spooling logged %d times, want once: %v", len(l), l)
	}
	s := scrape(t, ctx, web)
	for key, want := range map[string]float64{
		`tether_nodes_spooled_messages`:                         count + 2,
		`tether_node_spooled_messages{node="n"}`:                count,
		`tether_node_spooled_messages{node="legacy"}`:           2,
		`tether_nodes_spooled_total`:                            count + 2,
		`tether_mqtt_publish_failures_total{kind="up"}`:         0, // not tried: the broker was down
		`tether_nodes_spool_refused_total{reason="spool_full"}`: 0,
	} {
		if got := metric(t, s, key); got != want {
			t.Errorf("%s = %v, want %v", key, got, want)
		}
	}
	var row struct {
		Spooled      *int   `json:"spooled"`
		SpooledBytes *int64 `json:"spooled_bytes"`
	}
	getJSON(t, "http://"+web+"/api/nodes/n", &row)
	bytes := int64(len(strings.Join(want, "")))
	if row.Spooled == nil || *row.Spooled != count || row.SpooledBytes == nil || *row.SpooledBytes != bytes {
		t.Errorf("/api/nodes/n: spooled %v (%v bytes), want %d (%d bytes)", deref(row.Spooled), deref(row.SpooledBytes), count, bytes)
	}

	runMosquittoPersistent(t, addr, mqdir)
	app.connectSession(t, ctx, url, "spool-app")
	rec.wait(t, ctx, "MQTT: the spooled messages are all published")
	if s := g.Spool("n"); s.Messages != 0 {
		t.Errorf("spool of n after the drain = %+v", s)
	}
	// Nothing spooled now: the next message takes the direct path, after
	// the spooled ones.
	if err := n.Write(ctx, "after"); err != nil {
		t.Fatal(err)
	}
	app.take(t, ctx, got, "tether/n/up", count+2)
	app.take(t, ctx, got, "tether/r/down", count+2)
	app.take(t, ctx, got, "tether/legacy/up", 2)
	all := slices.Concat([]string{"before"}, want, []string{"after"})
	if !slices.Equal(got["tether/n/up"], all) {
		t.Errorf("tether/n/up: got %q, want %q (each once, in order)", got["tether/n/up"], all)
	}
	if !slices.Equal(got["tether/r/down"], all) {
		t.Errorf("tether/r/down (the route): got %q, want %q", got["tether/r/down"], all)
	}
	if w := []string{"legacy noqos", "legacy qos"}; !slices.Equal(got["tether/legacy/up"], w) {
		t.Errorf("tether/legacy/up: got %q, want %q", got["tether/legacy/up"], w)
	}
	s = scrape(t, ctx, web)
	for key, want := range map[string]float64{
		`tether_nodes_spooled_messages`:          0,
		`tether_nodes_spooled_bytes`:             0,
		`tether_node_spooled_messages{node="n"}`: 0,
		`tether_mqtt_publishes_total{kind="up"}`: count + 4,
	} {
		if got := metric(t, s, key); got != want {
			t.Errorf("%s = %v, want %v", key, got, want)
		}
	}
}

// deref returns *p, or the zero value for nil.
func deref[T any](p *T) T {
	var v T
	if p != nil {
		v = *p
	}
	return v
}

// TestSpoolGatewayRestart: the gateway is closed while the broker is
// down and node n's spool holds messages; once the broker is back, a new
// gateway on the same store publishes them, in order, before what the
// node sends after, each once.
func TestSpoolGatewayRestart(t *testing.T) {
	ctx := testCtx(t)
	rec := newLogRecorder()
	cfg, addr, mqdir, stop := spoolGateway(t, rec)
	g := startGateway(t, cfg)
	cfg.Listen = g.Addr().String() // the new gateway takes the same port
	url := "mqtt://" + addr
	app := dialSession(t, ctx, url, "spool-app", "tether/n/up")
	n := dialNode(t, ctx, g.Addr().String(), "n")
	if err := n.Write(ctx, "before"); err != nil {
		t.Fatal(err)
	}
	got := map[string][]string{}
	app.take(t, ctx, got, "tether/n/up", 1)

	stop()
	rec.wait(t, ctx, "MQTT broker connection lost")
	const count = 8
	want := []string{"before"}
	for i := range count {
		p := fmt.Sprintf("spooled %d", i)
		want = append(want, p)
		if err := n.Write(ctx, p); err != nil {
			t.Fatalf("write %q while the broker is down: %v", p, err)
		}
	}
	if s := g.Spool("n"); s.Messages != count {
		t.Fatalf("spool of n = %+v, want %d messages", s, count)
	}
	g.Close() // the broker is down, the drainer waits for it: Close stops it

	runMosquittoPersistent(t, addr, mqdir)
	app.connectSession(t, ctx, url, "spool-app")
	rec2 := newLogRecorder()
	cfg.Logger = rec2.logger()
	g = startGateway(t, cfg)
	// The node comes back by itself; its next messages come after the
	// spooled ones (spooled too while the spool is not empty).
	for i := range 3 {
		p := fmt.Sprintf("after %d", i)
		want = append(want, p)
		if err := n.Write(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	app.take(t, ctx, got, "tether/n/up", len(want))
	if !slices.Equal(got["tether/n/up"], want) {
		t.Errorf("tether/n/up: got %q, want %q (each once, in order)", got["tether/n/up"], want)
	}
	// The spool is empty once the log says so (it may have been before
	// the node's messages after the restart, which then went straight).
	if len(rec2.find("publishing the messages from nodes spooled before the restart")) != 1 {
		t.Errorf("the restarted gateway did not say it publishes the spool")
	}
	rec2.wait(t, ctx, "MQTT: the spooled messages are all published")
	if s := g.Spool("n"); s.Messages != 0 {
		t.Errorf("spool of n at the end = %+v, want empty", s)
	}
	select {
	case ev := <-n.restarts:
		t.Fatalf("the node saw the gateway restart its sequence: %+v", ev)
	default:
	}
}

// TestSpoolFull: node n's spool holds queue.max_up_messages; while the
// broker is down, its next message is not acknowledged (the node
// repeats it), counted and logged once; once the broker is back the
// spool drains, the node's repeat is taken, and every message is
// published once, in order.
func TestSpoolFull(t *testing.T) {
	ctx := testCtx(t)
	rec := newLogRecorder()
	cfg, addr, mqdir, stop := spoolGateway(t, rec)
	const max = 3
	cfg.Queue.MaxUpMessages = max
	cfg.Web.NodeMetrics = "none"
	g := startGateway(t, cfg)
	url := "mqtt://" + addr
	web := g.WebAddr().String()
	app := dialSession(t, ctx, url, "spool-app", "tether/n/up")
	n := dialNode(t, ctx, g.Addr().String(), "n")
	if err := n.WaitUp(ctx); err != nil {
		t.Fatal(err)
	}

	stop()
	rec.wait(t, ctx, "MQTT broker connection lost")
	var want []string
	for i := range max {
		p := fmt.Sprintf("spooled %d", i)
		want = append(want, p)
		if err := n.Write(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	want = append(want, "one too many")
	written := make(chan error, 1)
	go func() { written <- n.Write(ctx, "one too many") }()
	full := rec.wait(t, ctx, "node's up spool is full")
	if full.attrs["node"] != "n" || full.attrs["reason"] != "spool_full" || full.attrs["max_up_messages"] != fmt.Sprint(max) {
		t.Errorf("spool full logged as %v", full.attrs)
	}
	select {
	case err := <-written:
		t.Fatalf("a message past the spool's bound was acknowledged (%v)", err)
	default:
	}
	if s := g.Spool("n"); s.Messages != max || s.Refused < 1 || !s.Full {
		t.Errorf("spool of n = %+v, want %d messages, refused, full", s, max)
	}
	s := scrape(t, ctx, web)
	if v := metric(t, s, `tether_nodes_spool_refused_total{reason="spool_full"}`); v < 1 {
		t.Errorf("refused for a full spool = %v, want at least 1", v)
	}
	if v := metric(t, s, `tether_nodes_spooled_messages`); v != max {
		t.Errorf("spooled messages = %v, want %d", v, max)
	}
	for key := range s {
		if strings.Contains(key, `node="`) {
			t.Errorf("node_metrics none, yet /metrics has %s", key)
		}
	}
	var row struct {
		Refused *uint64 `json:"spool_refused"`
		Full    bool    `json:"spool_full"`
	}
	getJSON(t, "http://"+web+"/api/nodes/n", &row)
	if deref(row.Refused) < 1 || !row.Full {
		t.Errorf("/api/nodes/n: spool_refused %v, spool_full %v; want at least 1, true", deref(row.Refused), row.Full)
	}

	runMosquittoPersistent(t, addr, mqdir)
	app.connectSession(t, ctx, url, "spool-app")
	if err := <-written; err != nil {
		t.Fatalf("the refused message was not taken once the broker was back: %v", err)
	}
	got := map[string][]string{}
	app.take(t, ctx, got, "tether/n/up", len(want))
	if !slices.Equal(got["tether/n/up"], want) {
		t.Errorf("tether/n/up: got %q, want %q (each once, in order)", got["tether/n/up"], want)
	}
	again := rec.wait(t, ctx, "node's messages are taken again")
	if again.attrs["node"] != "n" || again.attrs["refused"] == "0" {
		t.Errorf("taken again logged as %v", again.attrs)
	}
	if l := rec.find("node's up spool is full"); len(l) != 1 {
		t.Errorf("spool full logged %d times, want once", len(l))
	}
	if s := g.Spool("n"); s.Full {
		t.Errorf("spool of n still full: %+v", s)
	}
}
