package gateway_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/tether-iot/tether/gateway"
	"github.com/tether-iot/tether/gateway/internal/web"
	"github.com/tether-iot/tether/internal/harness/testutil"
)

// TestStoreBounds: a gateway with no nodes.expect owns every ID. A flood
// on random IDs keeps messages for at most queue.max_nodes IDs never
// seen connected, and at most queue.max_total_bytes of them in all; the
// rest is dropped (acknowledged to the broker), counted by reason and
// logged once per episode; Send is refused past the total. Nodes with
// messages stored are listed offline on the status page and in the
// per-node metrics, before they connect and after a gateway restart. A
// node that has connected is no stranger, after a restart too.
func TestStoreBounds(t *testing.T) {
	ctx := testCtx(t)
	rec := newLogRecorder()
	cfg := gwConfig(t, "")
	cfg.Logger = rec.logger()
	cfg.MaxLine = 64
	cfg.Queue.MaxTotalBytes = 100
	cfg.Queue.MaxNodes = 2
	on := true
	cfg.Web = gateway.WebConfig{Addr: "127.0.0.1:0", Enabled: &on}
	g := startGateway(t, cfg)
	app := dialMQTT(t, ctx, mqttURL(g))
	// 10 bytes each. The embedded broker acknowledges a publish once the
	// gateway has stored or dropped it.
	msg := func(id string, i int) string { return fmt.Sprintf("%s-%07d", id, i) }
	pub := func(id string, i int) { app.publish(t, ctx, "tether/"+id+"/down", msg(id, i)) }

	pub("r1", 0)
	pub("r2", 0)
	pub("r3", 0) // a third stranger: dropped
	pub("r4", 0)
	for i := 1; i <= 8; i++ {
		pub("r1", i) // 100 bytes in all
	}
	pub("r1", 9) // past max_total_bytes: dropped
	pub("r2", 1)
	if err := g.Send(ctx, "r2", "x"); !errors.Is(err, gateway.ErrStoreFull) {
		t.Errorf("Send past max_total_bytes: %v, want ErrStoreFull", err)
	}
	for id, want := range map[string]int{"r1": 9, "r2": 1, "r3": 0, "r4": 0} {
		if got := g.Queue(id).Messages; got != want {
			t.Errorf("%s: %d queued, want %d", id, got, want)
		}
	}
	if l := rec.find("message for a node ID never seen connected dropped"); len(l) != 1 || l[0].attrs["node"] != "r3" {
		t.Errorf("too many nodes logged %d times (%v), want once, for r3", len(l), l)
	}
	if l := rec.find("the durable queues are full"); len(l) != 1 || l[0].attrs["max_total_bytes"] != "100" {
		t.Errorf("store full logged %d times (%v), want once", len(l), l)
	}

	webAddr := g.WebAddr().String()
	s := scrape(t, ctx, webAddr)
	for key, want := range map[string]float64{
		`tether_nodes_dropped_messages_total{reason="too_many_nodes"}`: 2,
		`tether_nodes_dropped_messages_total{reason="store_full"}`:     2,
		`tether_nodes_dropped_messages_total{reason="queue_full"}`:     0,
		`tether_nodes_stored_bytes`:                                    100,
		`tether_node_dropped_messages_total{node="r1"}`:                1,
		`tether_node_dropped_messages_total{node="r2"}`:                1,
		`tether_node_stored_messages{node="r1"}`:                       9,
		`tether_node_up{node="r1"}`:                                    0,
	} {
		if got := metric(t, s, key); got != want {
			t.Errorf("%s = %v, want %v", key, got, want)
		}
	}
	if _, ok := s[`tether_node_up{node="r3"}`]; ok {
		t.Error("/metrics has a series for r3, whose messages were all dropped")
	}
	rows := apiNodes(t, webAddr)
	if len(rows) != 2 || rows[0].ID != "r1" || rows[0].State != "offline" || *rows[0].Stored != 9 || rows[1].ID != "r2" {
		t.Errorf("/api/nodes = %+v, want r1 (offline, 9 stored) and r2", rows)
	}

	// r1 connects: it gets its 9 messages in order; the queues drain,
	// and r1 being no stranger any more, there is room for one.
	n := dialNode(t, ctx, g.Addr().String(), "r1")
	for i := range 9 {
		n.expect(t, ctx, msg("r1", i))
	}
	if room := rec.wait(t, ctx, "the durable queues have room again"); room.attrs["dropped"] != "2" {
		t.Errorf("room again logged as %v, want 2 dropped", room.attrs)
	}
	if again := rec.wait(t, ctx, "messages for node IDs never seen connected are kept again"); again.attrs["dropped"] != "2" {
		t.Errorf("strangers kept again logged as %v, want 2 dropped", again.attrs)
	}
	pub("r3", 1)
	if got := g.Queue("r3").Messages; got != 1 {
		t.Errorf("r3: %d queued once r1 connected, want 1", got)
	}
	var row web.Node
	getJSON(t, "http://"+webAddr+"/api/nodes/r1", &row)
	if row.State != "up" {
		t.Errorf("/api/nodes/r1 = %+v, want up", row)
	}
	n.Close()

	// After a restart, r2 and r3 are listed offline with their stored
	// messages; they are strangers still (so a new one is dropped), and
	// r1, which connected before, is not.
	g.Close()
	g = startGateway(t, cfg)
	webAddr = g.WebAddr().String()
	app = dialMQTT(t, ctx, mqttURL(g))
	rows = apiNodes(t, webAddr)
	if len(rows) != 2 || rows[0].ID != "r2" || rows[0].State != "offline" || *rows[0].Stored != 1 ||
		rows[1].ID != "r3" || rows[1].State != "offline" || *rows[1].Stored != 1 {
		t.Errorf("/api/nodes after a restart = %+v, want r2 and r3 offline, 1 stored each", rows)
	}
	getJSON(t, "http://"+webAddr+"/api/nodes/r2", &row)
	if row.State != "offline" {
		t.Errorf("/api/nodes/r2 = %+v, want offline", row)
	}
	s = scrape(t, ctx, webAddr)
	if got := metric(t, s, `tether_node_stored_messages{node="r3"}`); got != 1 {
		t.Errorf("r3's stored messages after a restart = %v, want 1", got)
	}
	pub("r5", 0)
	pub("r1", 10)
	if g.Queue("r5").Messages != 0 || g.Queue("r1").Messages != 1 {
		t.Errorf("after a restart: r5 %d queued (want 0: a third stranger), r1 %d (want 1: seen before)", g.Queue("r5").Messages, g.Queue("r1").Messages)
	}
}

// TestStoreBoundsDefault: a zero Config bounds the queues to 256 MiB in
// all and to 1000 IDs never seen connected; -1 is no bound, and a total
// below max_line is refused.
func TestStoreBoundsDefault(t *testing.T) {
	g, err := gateway.New(gateway.Config{Data: t.TempDir(), MQTT: gateway.MQTTConfig{Broker: gateway.BrokerNone}, Logger: testutil.Logger()})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	if q := g.Config().Queue; q.MaxTotalBytes != 256<<20 || q.MaxNodes != 1000 {
		t.Errorf("default store bounds %+v, want 256 MiB, 1000 nodes", q)
	}
	c, err := gateway.ParseConfig("q.yaml", []byte("queue:\n  max_total_bytes: -1\n  max_nodes: -1\n"))
	if err != nil || c.Queue.MaxTotalBytes != -1 || c.Queue.MaxNodes != -1 {
		t.Errorf("-1: %+v, %v", c.Queue, err)
	}
	if _, err := gateway.ParseConfig("q.yaml", []byte("queue:\n  max_total_bytes: 100\n")); err == nil {
		t.Error("max_total_bytes below max_line accepted")
	}
}
