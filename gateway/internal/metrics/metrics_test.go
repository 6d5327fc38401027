package metrics_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/tether-iot/tether/client"
	"github.com/tether-iot/tether/gateway/internal/metrics"
	tutil "github.com/tether-iot/tether/internal/harness/testutil"
	"github.com/tether-iot/tether/internal/harness/tethertest"
	"github.com/tether-iot/tether/server"
)

func TestScrape(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	const T = 300 * time.Millisecond

	col := metrics.New(metrics.Config{
		Stored:      func(id string) int { return len(id) },
		Dropped:     func(id string) uint64 { return 10 * uint64(len(id)) },
		NodeMetrics: metrics.NodeFull,
	})
	srv, err := server.New(server.Config{Timeout: T, Configure: col.Configure, Logger: tutil.Logger()})
	if err != nil {
		t.Fatal(err)
	}
	col.SetServer(srv)
	addr := tethertest.Serve(t, srv)

	a := tethertest.DialUp(t, ctx, client.Config{ID: "a", Server: addr, Timeout: T})
	b := tethertest.DialUp(t, ctx, client.Config{ID: "bb", Server: addr, Timeout: T})
	na, err := srv.Lookup("a")
	if err != nil {
		t.Fatal(err)
	}
	// Three qos messages out to a, two in from a.
	for i := range 3 {
		if err := na.Write(ctx, fmt.Sprint("down ", i)); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 2 {
		if err := a.Write(ctx, fmt.Sprint("up ", i)); err != nil {
			t.Fatal(err)
		}
		if _, err := na.ReadLine(ctx); err != nil {
			t.Fatal(err)
		}
	}

	// A raw node sends one bad line of each kind, then a good message: once
	// the good one is read, the bad ones have been counted.
	rawNode(t, addr, "raw", "zz", "00\xff\xfe", "00"+strings.Repeat("x", 5000), "00ok")
	nr, err := srv.Node(ctx, "raw")
	if err != nil {
		t.Fatal(err)
	}
	if line, err := nr.ReadLine(ctx); err != nil || line != "ok" {
		t.Fatalf("raw node: got %q, %v", line, err)
	}
	// A bad ID: the server counts it, then closes the socket.
	readEOF(t, rawNode(t, addr, "bad\x01id"))

	takeDown(t, ctx, srv, b)

	hs := httptest.NewServer(col.Handler())
	defer hs.Close()
	want := `
# HELP tether_nodes Nodes that have connected at least once.
# TYPE tether_nodes gauge
tether_nodes 3
# HELP tether_nodes_up Nodes whose link is up.
# TYPE tether_nodes_up gauge
tether_nodes_up 2
# HELP tether_node_up 1 if the node's link is up, else 0.
# TYPE tether_node_up gauge
tether_node_up{node="a"} 1
tether_node_up{node="bb"} 0
tether_node_up{node="raw"} 1
# HELP tether_node_messages_total Messages, by direction: in = new messages received from the node, out = first transmissions to it (qos or not).
# TYPE tether_node_messages_total counter
tether_node_messages_total{direction="in",node="a"} 2
tether_node_messages_total{direction="out",node="a"} 3
tether_node_messages_total{direction="in",node="bb"} 0
tether_node_messages_total{direction="out",node="bb"} 0
tether_node_messages_total{direction="in",node="raw"} 1
tether_node_messages_total{direction="out",node="raw"} 0
# HELP tether_node_qos_acked_total Qos messages to the node that it acknowledged.
# TYPE tether_node_qos_acked_total counter
tether_node_qos_acked_total{node="a"} 3
tether_node_qos_acked_total{node="bb"} 0
tether_node_qos_acked_total{node="raw"} 0
# HELP tether_node_bad_lines_total Bad lines received from the node, by reason.
# TYPE tether_node_bad_lines_total counter
tether_node_bad_lines_total{node="a",reason="malformed"} 0
tether_node_bad_lines_total{node="a",reason="not_utf8"} 0
tether_node_bad_lines_total{node="a",reason="too_long"} 0
tether_node_bad_lines_total{node="bb",reason="malformed"} 0
tether_node_bad_lines_total{node="bb",reason="not_utf8"} 0
tether_node_bad_lines_total{node="bb",reason="too_long"} 0
tether_node_bad_lines_total{node="raw",reason="malformed"} 1
tether_node_bad_lines_total{node="raw",reason="not_utf8"} 1
tether_node_bad_lines_total{node="raw",reason="too_long"} 1
# HELP tether_node_reconnects_total Reconnections of the node (connects after the first).
# TYPE tether_node_reconnects_total counter
tether_node_reconnects_total{node="a"} 0
tether_node_reconnects_total{node="bb"} 0
tether_node_reconnects_total{node="raw"} 0
# HELP tether_node_stored_messages Messages to the node waiting in the gateway's durable store.
# TYPE tether_node_stored_messages gauge
tether_node_stored_messages{node="a"} 1
tether_node_stored_messages{node="bb"} 2
tether_node_stored_messages{node="raw"} 3
# HELP tether_node_dropped_messages_total Messages to the node that the gateway dropped: its durable queue was full, too many qos-off messages waited, or the message could never be written.
# TYPE tether_node_dropped_messages_total counter
tether_node_dropped_messages_total{node="a"} 10
tether_node_dropped_messages_total{node="bb"} 20
tether_node_dropped_messages_total{node="raw"} 30
# HELP tether_nodes_messages_total Messages of all nodes, by direction: in = new messages received from nodes, out = first transmissions to them (qos or not).
# TYPE tether_nodes_messages_total counter
tether_nodes_messages_total{direction="in"} 3
tether_nodes_messages_total{direction="out"} 3
# HELP tether_nodes_qos_acked_total Qos messages to nodes that they acknowledged.
# TYPE tether_nodes_qos_acked_total counter
tether_nodes_qos_acked_total 3
# HELP tether_nodes_bad_lines_total Bad lines received from nodes, by reason.
# TYPE tether_nodes_bad_lines_total counter
tether_nodes_bad_lines_total{reason="malformed"} 1
tether_nodes_bad_lines_total{reason="not_utf8"} 1
tether_nodes_bad_lines_total{reason="too_long"} 1
# HELP tether_nodes_reconnects_total Reconnections of all nodes (connects after each node's first).
# TYPE tether_nodes_reconnects_total counter
tether_nodes_reconnects_total 0
# HELP tether_timeout_seconds The server's T: a node is declared down after T without a byte from it.
# TYPE tether_timeout_seconds gauge
tether_timeout_seconds 0.3
`
	names := []string{
		"tether_nodes", "tether_nodes_up", "tether_node_up", "tether_node_messages_total",
		"tether_node_qos_acked_total", "tether_node_bad_lines_total", "tether_node_reconnects_total",
		"tether_node_stored_messages", "tether_timeout_seconds", "tether_node_dropped_messages_total",
		"tether_nodes_messages_total", "tether_nodes_qos_acked_total", "tether_nodes_bad_lines_total",
		"tether_nodes_reconnects_total",
	}
	if err := testutil.ScrapeAndCompare(hs.URL, strings.NewReader(want), names...); err != nil {
		t.Error(err)
	}

	// Bad IDs are rejections by reason; the rest are zero.
	if got := sample(t, col, "tether_handshake_rejections_total", "reason", "bad_id"); got != 1 {
		t.Errorf("bad_id rejections = %v, want 1", got)
	}

	// Each of a's three qos messages was acknowledged; the histogram has
	// those acknowledged on their first transmission (all of them unless
	// the machine stalled for T).
	count, sum := histogram(t, col, "tether_ack_rtt_seconds")
	rep := na.Stats().Repeats
	if count > 3 || count+rep < 3 {
		t.Errorf("ack rtt histogram count = %d with %d repeats, want 3 minus repeats", count, rep)
	}
	if count > 0 && sum <= 0 {
		t.Errorf("ack rtt histogram sum = %v, want > 0", sum)
	}

	problems, err := testutil.GatherAndLint(col.Registry())
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
}

func TestNoServer(t *testing.T) {
	col := metrics.New(metrics.Config{NoRuntime: true})
	col.ObserveRTT("x", 20*time.Millisecond)
	n, err := testutil.GatherAndCount(col.Registry())
	if err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Errorf("with no server, %d metrics gathered, want the histogram only", n)
	}
}
