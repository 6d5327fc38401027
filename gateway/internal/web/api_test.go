package web_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/tether-iot/tether/gateway/internal/metrics"
	"github.com/tether-iot/tether/gateway/internal/web"
)

// get fetches url and decodes its JSON body into v (unless v is nil),
// checking the status code; it returns the response with its body read.
func get(t *testing.T, url string, code int, v any) (*http.Response, []byte) {
	t.Helper()
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != code {
		t.Fatalf("GET %s: %s, want %d: %s", url, resp.Status, code, body)
	}
	if v != nil {
		if err := json.Unmarshal(body, v); err != nil {
			t.Fatalf("GET %s: %v: %s", url, err, body)
		}
	}
	return resp, body
}

func TestAPI(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	e := start(t, 300*time.Millisecond, web.Config{
		Title: "test gateway",
		Queue: func(id string) web.Queue {
			return web.Queue{Stored: len(id), Bytes: 10 * int64(len(id)), Dropped: 7 * uint64(len(id)), Full: id == "slow",
				Spooled: 3 * len(id), SpooledBytes: 30 * int64(len(id)), SpoolRefused: 5, SpoolFull: id == "slow"}
		},
		Extra: func(id string) map[string]any { return map[string]any{"topic": "tether/" + id} },
		Broker: func() *web.Broker {
			return &web.Broker{Name: "mqtt://broker.lan:1883", Since: time.Unix(1e9, 0), Error: "connection refused"}
		},
	})
	n1 := e.dial(t, ctx, "n1")
	e.dialMismatched(t, ctx, "slow")
	e.exchange(t, ctx, n1, 2, 1)

	var pg web.Page
	get(t, e.url+"/api/nodes", http.StatusOK, &pg)
	nodes := pg.Nodes
	if len(nodes) != 2 || nodes[0].ID != "n1" || nodes[1].ID != "slow" || pg.Total != 2 || pg.Matched != 2 || pg.Limit != web.DefaultPageSize {
		t.Fatalf("nodes = %+v, want n1 and slow", pg)
	}
	n := nodes[0]
	if !n.Up || n.MessagesOut != 2 || n.Acked != 2 || n.MessagesIn != 1 || n.Reconnects != 0 || n.Connects != 1 {
		t.Errorf("n1 = %+v, want up, 2 out and acked, 1 in, 1 connection", n)
	}
	if n.Stored == nil || *n.Stored != 2 || n.Extra["topic"] != "tether/n1" {
		t.Errorf("n1 stored %v extra %v, want 2 and topic tether/n1", n.Stored, n.Extra)
	}
	if n.StoredBytes == nil || *n.StoredBytes != 20 || n.Dropped == nil || *n.Dropped != 14 || n.QueueFull {
		t.Errorf("n1 stored bytes %v, dropped %v, full %v; want 20, 14, false", n.StoredBytes, n.Dropped, n.QueueFull)
	}
	if n.Spooled == nil || *n.Spooled != 6 || n.SpooledBytes == nil || *n.SpooledBytes != 60 || n.SpoolRefused == nil || *n.SpoolRefused != 5 || n.SpoolFull {
		t.Errorf("n1 spooled %v, bytes %v, refused %v, full %v; want 6, 60, 5, false", n.Spooled, n.SpooledBytes, n.SpoolRefused, n.SpoolFull)
	}
	if n.LastRecv == nil || n.Since.IsZero() || n.Remote == "" {
		t.Errorf("n1 = %+v, want last_received, since and remote", n)
	}
	if n.Repeats == 0 && n.AckRTTMs == nil {
		t.Errorf("n1: no ACK round trip after 2 qos messages acknowledged at once")
	}
	slow := nodes[1]
	if !slow.QueueFull || !slow.SpoolFull {
		t.Errorf("slow: queue_full %v, spool_full %v, want true", slow.QueueFull, slow.SpoolFull)
	}
	if slow.PeerTimeoutMs == nil || !slow.TimeoutMismatch {
		t.Errorf("slow (T twice the server's): peer_timeout_ms %v, mismatch %v; want flagged", slow.PeerTimeoutMs, slow.TimeoutMismatch)
	}

	var st web.Status
	get(t, e.url+"/api/status", http.StatusOK, &st)
	if st.Title != "test gateway" || st.TimeoutMs != 300 || st.NodesUp != 2 || st.NodesTotal != 2 || len(st.Nodes) != 2 {
		t.Errorf("status header = %+v, want test gateway, 300 ms, 2/2 up", st.Header)
	}
	if b := st.MQTT; b == nil || b.Name != "mqtt://broker.lan:1883" || b.Connected || b.Error != "connection refused" || !b.Since.Equal(time.Unix(1e9, 0)) {
		t.Errorf("status header mqtt = %+v, want the broker, not connected, since and why", b)
	}
	if st.Handshakes.OK != 2 || st.Handshakes.Rejected != 0 {
		t.Errorf("handshakes = %+v, want 2 ok, none rejected", st.Handshakes)
	}
	if len(st.Events) != 2 || st.Events[0].Kind != "up" || st.Events[0].Seq >= st.Events[1].Seq {
		t.Errorf("events = %+v, want two ups in order", st.Events)
	}

	var one web.Node
	get(t, e.url+"/api/nodes/n1", http.StatusOK, &one)
	if one.ID != "n1" || one.MessagesOut != 2 {
		t.Errorf("/api/nodes/n1 = %+v", one)
	}
	get(t, e.url+"/api/nodes/nope", http.StatusNotFound, nil)

	resp, body := get(t, e.url+"/", http.StatusOK, nil)
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
		t.Errorf("page content type %q", ct)
	}
	if !strings.Contains(resp.Header.Get("Content-Security-Policy"), "default-src 'none'") {
		t.Errorf("page without a strict CSP: %q", resp.Header.Get("Content-Security-Policy"))
	}
	if !strings.Contains(string(body), `<table id="nodes">`) {
		t.Errorf("page without the node table")
	}
	get(t, e.url+"/app.js", http.StatusOK, nil)
	get(t, e.url+"/style.css", http.StatusOK, nil)
	get(t, e.url+"/nothing", http.StatusNotFound, nil)

	want := `
# HELP tether_nodes_up Nodes whose link is up.
# TYPE tether_nodes_up gauge
tether_nodes_up 2
# HELP tether_node_stored_messages Messages to the node waiting in the gateway's durable store.
# TYPE tether_node_stored_messages gauge
tether_node_stored_messages{node="n1"} 2
tether_node_stored_messages{node="slow"} 4
# HELP tether_node_spooled_messages Messages from the node acknowledged while the broker could not take them, waiting in the gateway's up spool to be published.
# TYPE tether_node_spooled_messages gauge
tether_node_spooled_messages{node="n1"} 6
tether_node_spooled_messages{node="slow"} 12
# HELP tether_node_dropped_messages_total Messages to the node that the gateway dropped: its durable queue was full, too many qos-off messages waited, or the message could never be written.
# TYPE tether_node_dropped_messages_total counter
tether_node_dropped_messages_total{node="n1"} 14
tether_node_dropped_messages_total{node="slow"} 28
`
	if err := testutil.ScrapeAndCompare(e.url+"/metrics", strings.NewReader(want), "tether_nodes_up", "tether_node_stored_messages", "tether_node_spooled_messages", "tether_node_dropped_messages_total"); err != nil {
		t.Error(err)
	}
	_, body = get(t, e.url+"/metrics", http.StatusOK, nil)
	for _, name := range []string{"tether_ack_rtt_seconds_bucket", "tether_nodes_messages_total{direction=\"in\"} 2", "go_goroutines"} {
		if !strings.Contains(string(body), name) {
			t.Errorf("/metrics has no %s", name)
		}
	}
	// The default per-node series are the basic ones.
	if strings.Contains(string(body), "tether_node_peer_timeout_seconds") {
		t.Errorf("/metrics has tether_node_peer_timeout_seconds, which is not a basic per-node series")
	}
}

func TestMismatch(t *testing.T) {
	const T = 2 * time.Second
	for _, c := range []struct {
		peer time.Duration
		want bool
	}{
		{0, false},
		{T, false},
		{T * 5 / 4, false},
		{T * 3 / 4, false},
		{T * 13 / 10, true},
		{T * 7 / 10, true},
		{T / 2, true},
		{4 * T, true},
	} {
		if got := web.Mismatch(c.peer, T, web.DefaultMismatchTolerance); got != c.want {
			t.Errorf("Mismatch(%v, %v) = %v, want %v", c.peer, T, got, c.want)
		}
	}
}

func TestConfig(t *testing.T) {
	if _, err := web.New(web.Config{Refresh: -time.Second}); err == nil {
		t.Error("negative Refresh accepted")
	}
	ws, err := web.New(web.Config{Addr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	ws.Close()
	ws.Close() // idempotent
	if err := ws.ListenAndServe(context.Background()); !errors.Is(err, web.ErrServerClosed) {
		t.Errorf("ListenAndServe after Close: %v, want ErrServerClosed", err)
	}
}

// TestOffline: nodes listed by Config.Offline that have not connected
// are rows with state "offline" (their stored messages shown), in the
// list, by ID and on /metrics (basic series only); once one connects,
// its row is its link's.
func TestOffline(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	e := start(t, 300*time.Millisecond, web.Config{
		Queue:   func(id string) web.Queue { return web.Queue{Stored: len(id), Bytes: int64(len(id))} },
		Offline: func() []string { return []string{"n1", "away", "away"} },
		Metrics: metrics.New(metrics.Config{
			NodeMetrics: metrics.NodeFull,
			Stored:      func(id string) int { return len(id) },
			Offline:     func() []string { return []string{"n1", "away", "away"} },
		}),
	})
	e.dial(t, ctx, "n1")

	var pg web.Page
	get(t, e.url+"/api/nodes", http.StatusOK, &pg)
	nodes := pg.Nodes
	if len(nodes) != 2 || nodes[0].ID != "away" || nodes[1].ID != "n1" {
		t.Fatalf("nodes = %+v, want away and n1", pg)
	}
	if a := nodes[0]; a.State != "offline" || a.Up || a.Stored == nil || *a.Stored != 4 || !a.Since.IsZero() {
		t.Errorf("away = %+v, want offline, 4 stored, no since", a)
	}
	if n := nodes[1]; n.State != "up" || !n.Up {
		t.Errorf("n1 = %+v, want up", n)
	}
	var one web.Node
	get(t, e.url+"/api/nodes/away", http.StatusOK, &one)
	if one.State != "offline" {
		t.Errorf("/api/nodes/away = %+v, want offline", one)
	}
	var st web.Status
	get(t, e.url+"/api/status", http.StatusOK, &st)
	if st.NodesTotal != 2 || st.NodesUp != 1 || st.NodesOffline != 1 || st.NodesDown != 0 || len(st.Nodes) != 2 {
		t.Errorf("status: %d nodes total (%d up, %d down, %d offline), %d rows; want 2 (1 up, 1 offline), 2 rows",
			st.NodesTotal, st.NodesUp, st.NodesDown, st.NodesOffline, len(st.Nodes))
	}

	want := `
# HELP tether_node_up 1 if the node's link is up, else 0.
# TYPE tether_node_up gauge
tether_node_up{node="away"} 0
tether_node_up{node="n1"} 1
# HELP tether_node_stored_messages Messages to the node waiting in the gateway's durable store.
# TYPE tether_node_stored_messages gauge
tether_node_stored_messages{node="away"} 4
tether_node_stored_messages{node="n1"} 2
`
	if err := testutil.ScrapeAndCompare(e.url+"/metrics", strings.NewReader(want), "tether_node_up", "tether_node_stored_messages"); err != nil {
		t.Error(err)
	}
	_, body := get(t, e.url+"/metrics", http.StatusOK, nil)
	if strings.Contains(string(body), `tether_node_connects_total{node="away"}`) {
		t.Error("/metrics has a link's series for an offline node")
	}

	e.dial(t, ctx, "away")
	get(t, e.url+"/api/nodes/away", http.StatusOK, &one)
	if one.State != "up" {
		t.Errorf("/api/nodes/away after it connected = %+v, want up", one)
	}
}
