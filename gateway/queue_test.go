package gateway_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"testing"

	"github.com/tether-iot/tether/gateway"
)

// TestQueueLimit fills a node's queue past its bound through a real
// broker, the embedded one and mosquitto: exactly the first max_messages
// are delivered, in order; the rest are dropped but acknowledged to the
// broker, counted per node and in all, shown on the status page and
// logged once; Send is refused; and once the node has drained its queue,
// new messages flow again.
func TestQueueLimit(t *testing.T) {
	for _, broker := range []string{"embedded", "mosquitto"} {
		t.Run(broker, func(t *testing.T) { testQueueLimit(t, broker) })
	}
}

func testQueueLimit(t *testing.T, broker string) {
	ctx := testCtx(t)
	const max, extra = 5, 3
	url := ""
	if broker == "mosquitto" {
		url = startMosquitto(t)
	}
	rec := newLogRecorder()
	cfg := gwConfig(t, url)
	cfg.Logger = rec.logger()
	cfg.Queue.MaxMessages = max
	cfg.Nodes.Expect = []string{"n", "m"}
	on := true
	cfg.Web = gateway.WebConfig{Addr: "127.0.0.1:0", Enabled: &on}
	g := startGateway(t, cfg)
	if url == "" {
		url = mqttURL(g)
	}
	web := g.WebAddr().String()

	// Node n has connected once (so that it has per-node series), and is
	// away; node m is up.
	n := dialNode(t, ctx, g.Addr().String(), "n")
	if err := g.Server().Wait(ctx, "n"); err != nil {
		t.Fatal(err)
	}
	n.Close()
	m := dialNode(t, ctx, g.Addr().String(), "m")

	app := dialMQTT(t, ctx, url)
	for i := range max + extra {
		app.publish(t, ctx, "tether/n/down", fmt.Sprintf("down %d", i))
	}
	// The gateway takes MQTT messages in order: once m has the marker,
	// every message for n has been stored or dropped. (Without qos it
	// is not stored, so the store holds n's messages only.)
	app.publish(t, ctx, "tether/m/down/noqos", "marker")
	m.expect(t, ctx, "marker")

	q := g.Queue("n")
	if q.Messages != max || q.Dropped != extra || !q.Full || q.Bytes != int64(max*len("down 0")) {
		t.Fatalf("queue of n = %+v, want %d messages of 6 bytes, %d dropped, full", q, max, extra)
	}
	if err := g.Send(ctx, "n", "from the API"); !errors.Is(err, gateway.ErrQueueFull) {
		t.Fatalf("Send to a full queue: %v, want ErrQueueFull", err)
	}
	if full := rec.find("node's queue is full"); len(full) != 1 || full[0].attrs["node"] != "n" || full[0].attrs["max_messages"] != "5" {
		t.Errorf("queue full logged %d times (%v), want once for n", len(full), full)
	}

	s := scrape(t, ctx, web)
	for key, want := range map[string]float64{
		`tether_node_dropped_messages_total{node="n"}`:             extra,
		`tether_node_dropped_messages_total{node="m"}`:             0,
		`tether_node_stored_messages{node="n"}`:                    max,
		`tether_nodes_dropped_messages_total{reason="queue_full"}`: extra,
		`tether_nodes_dropped_messages_total{reason="noqos_full"}`: 0,
		`tether_nodes_dropped_messages_total{reason="invalid"}`:    0,
		`tether_nodes_stored_messages`:                             max,
		`tether_nodes_stored_bytes`:                                max * 6,
		`tether_mqtt_publishes_total{kind="gateway"}`:              1, // online
		`tether_mqtt_publish_failures_total{kind="up"}`:            0,
		`tether_node_messages_total{direction="out",node="m"}`:     1, // the marker
	} {
		if got := metric(t, s, key); got != want {
			t.Errorf("%s = %v, want %v", key, got, want)
		}
	}
	if _, ok := s[`tether_node_qos_repeats_total{node="n"}`]; ok {
		t.Errorf("/metrics has a full per-node series by default")
	}

	// The status page's JSON shows it.
	var row struct {
		Stored    *int    `json:"stored"`
		Dropped   *uint64 `json:"dropped"`
		QueueFull bool    `json:"queue_full"`
	}
	getJSON(t, "http://"+web+"/api/nodes/n", &row)
	if row.Stored == nil || *row.Stored != max || row.Dropped == nil || *row.Dropped != extra || !row.QueueFull {
		t.Errorf("/api/nodes/n: stored %v dropped %v full %v, want %d, %d, true", row.Stored, row.Dropped, row.QueueFull, max, extra)
	}

	episode := extra // drops logged when the queue has room again
	if broker == "mosquitto" {
		// The dropped messages were acknowledged to mosquitto: a new
		// gateway on the same session and store gets none of them again.
		g.Close()
		cfg.Listen = g.Addr().String()
		g = startGateway(t, cfg)
		app.publish(t, ctx, "tether/m/down/noqos", "marker 2")
		m.expect(t, ctx, "marker 2")
		if q := g.Queue("n"); q.Messages != max || q.Dropped != 0 {
			t.Fatalf("after a gateway restart, queue of n = %+v: want %d messages and nothing redelivered (dropped)", q, max)
		}
		// A new episode.
		app.publish(t, ctx, "tether/n/down", "one too many")
		app.publish(t, ctx, "tether/m/down/noqos", "marker 3")
		m.expect(t, ctx, "marker 3")
		if q := g.Queue("n"); q.Dropped != 1 || !q.Full {
			t.Fatalf("queue of n = %+v, want 1 dropped, full", q)
		}
		episode = 1
	}

	// Node n comes back: the first max messages, in order, then only
	// what comes after its queue had room.
	n = dialNode(t, ctx, g.Addr().String(), "n")
	for i := range max {
		n.expect(t, ctx, fmt.Sprintf("down %d", i))
	}
	// The writer removed message max-2 before writing the last one, so
	// the queue had drained to half by now.
	room := rec.wait(t, ctx, "node's queue has room again")
	if room.attrs["node"] != "n" || room.attrs["dropped"] != fmt.Sprint(episode) {
		t.Errorf("room again logged as %v, want node n, %d dropped", room.attrs, episode)
	}
	app.publish(t, ctx, "tether/n/down", "after")
	n.expect(t, ctx, "after")
	if err := g.Send(ctx, "n", "from the API"); err != nil {
		t.Fatal(err)
	}
	n.expect(t, ctx, "from the API")
	if q := g.Queue("n"); q.Dropped != uint64(episode) || q.Full {
		t.Errorf("queue of n after draining = %+v, want %d dropped, not full", q, episode)
	}
}

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s: %s", url, resp.Status, body)
	}
	if err := json.Unmarshal(body, v); err != nil {
		t.Fatalf("GET %s: %v: %s", url, err, body)
	}
}
