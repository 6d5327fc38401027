package gateway_test

import (
	"errors"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tether-iot/tether/gateway"
)

func TestConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		name, text string
		line       int
		want       string
	}{
		{"unknown key", "listen: :8123\nmqtt:\n  brokr: x\n", 3, "brokr"},
		{"bad duration", "listen: :8123\n\ntimeout: fast\n", 3, "not a duration"},
		{"bad type", "nodes:\n  expect: [a, b]\n  strict: maybe\n", 3, "bool"},
		{"bad broker", "mqtt:\n  prefix: t\n  broker: localhost:1883\n", 3, "mqtt.broker"},
		{"route to itself", "routes:\n  - {from: tx, to: rx}\n  - from: a\n    to: a\n", 3, "loop"},
		{"route without to", "routes:\n  - from: tx\n", 2, "routes[0].to"},
		{"strict without expect", "nodes:\n  strict: true\n", 2, "expect"},
		{"bad prefix", "mqtt:\n  prefix: a/#\n", 2, "mqtt.prefix"},
		{"syntax", "listen: :8123\nmqtt: [\n", 2, ""},
		{"byte bound below max_line", "max_line: 100\nqueue:\n  max_bytes: 99\n", 3, "queue.max_bytes"},
		{"negative byte bound", "queue:\n  max_messages: 10\n  max_bytes: -1\n", 3, "queue.max_bytes"},
		{"total below max_line", "max_line: 100\nqueue:\n  max_total_bytes: 99\n", 3, "queue.max_total_bytes"},
		{"bad node metrics", "web:\n  addr: :8080\n  node_metrics: all\n", 3, "basic"},
	} {
		_, err := gateway.ParseConfig("gw.yaml", []byte(tc.text))
		var ce *gateway.ConfigError
		if !errors.As(err, &ce) {
			t.Errorf("%s: got %v, want a ConfigError", tc.name, err)
			continue
		}
		if ce.Line != tc.line || !strings.Contains(ce.Error(), tc.want) {
			t.Errorf("%s: got %q (line %d), want line %d and %q", tc.name, ce.Error(), ce.Line, tc.line, tc.want)
		}
		if !strings.HasPrefix(ce.Error(), "gw.yaml:") {
			t.Errorf("%s: %q does not name the file", tc.name, ce.Error())
		}
	}
}

// TestDocExample: the full example of docs/GATEWAY.md is valid and
// means what the doc says.
func TestDocExample(t *testing.T) {
	doc, err := os.ReadFile("../docs/GATEWAY.md")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)<!-- full example -->\\s*```yaml\n(.*?)```").FindSubmatch(doc)
	if m == nil {
		t.Fatal("docs/GATEWAY.md: no ```yaml block after <!-- full example -->")
	}
	c, err := gateway.ParseConfig("docs/GATEWAY.md", m[1])
	if err != nil {
		t.Fatal(err)
	}
	if c.Listen != ":8123" || time.Duration(c.Timeout) != 2*time.Second || len(c.Routes) == 0 || !c.Discovery.Enabled || c.Web.Addr != gateway.DefaultWebAddr || c.Web.TokenFile == "" {
		t.Errorf("unexpected config from the doc: %+v", c)
	}
	q := c.Queue
	if q.MaxMessages != gateway.DefaultQueueMessages || q.MaxBytes != 0 || q.MaxTotalBytes != gateway.DefaultQueueTotalBytes ||
		q.MaxNodes != gateway.DefaultQueueNodes || q.MaxUpMessages != gateway.DefaultUpMessages || c.Web.NodeMetrics != "basic" {
		t.Errorf("the doc's queue and node_metrics are not the defaults: %+v %q", c.Queue, c.Web.NodeMetrics)
	}
}

// TestQueueDefault: a zero Config bounds each node's queue to 1000
// messages; a negative bound is none.
func TestQueueDefault(t *testing.T) {
	g, err := gateway.New(gateway.Config{Data: t.TempDir(), MQTT: gateway.MQTTConfig{Broker: gateway.BrokerNone}})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	if q := g.Config().Queue; q.MaxMessages != 1000 || q.MaxBytes != 0 || q.MaxUpMessages != 1000 {
		t.Errorf("default queue bounds %+v, want 1000 messages, no byte bound, 1000 spooled", q)
	}
	c, err := gateway.ParseConfig("q.yaml", []byte("queue:\n  max_messages: -1\n"))
	if err != nil || c.Queue.MaxMessages != -1 {
		t.Errorf("max_messages -1: %+v, %v", c.Queue, err)
	}
}

func TestEscapeID(t *testing.T) {
	for _, id := range []string{"7", "a/b", "x+y", "#", "$SYS", "100%", "é/ü", "%2F"} {
		esc := gateway.EscapeID(id)
		if strings.ContainsAny(esc, "/+#$") {
			t.Errorf("EscapeID(%q) = %q: still has a separator or wildcard", id, esc)
		}
		back, err := gateway.UnescapeID(esc)
		if err != nil || back != id {
			t.Errorf("UnescapeID(EscapeID(%q)) = %q, %v", id, back, err)
		}
	}
	if gateway.EscapeID("%2F") == gateway.EscapeID("/") {
		t.Error("two IDs share a topic")
	}
}

// Per-node settings: the defaults under nodes, overridden by per_node;
// repeat_horizon 0 means none, pace needs every.
func TestPerNodeSettings(t *testing.T) {
	c, err := gateway.ParseConfig("n.yaml", []byte(`nodes:
  repeat_horizon: 30s
  pace: {ahead: 10, every: 500ms}
  per_node:
    fast: {repeat_horizon: 0s}
    slow: {pace: {ahead: 5, every: 2s}}
    proxied: {tcp_evidence: false}
`))
	if err != nil {
		t.Fatal(err)
	}
	if te := c.Nodes.Node("proxied").TCPEvidence; te == nil || *te {
		t.Errorf("proxied: tcp_evidence %v, want false", te)
	}
	if te := c.Nodes.Node("other").TCPEvidence; te != nil {
		t.Errorf("other: tcp_evidence %v, want unset (true)", *te)
	}
	for id, want := range map[string]struct {
		horizon time.Duration
		ahead   int
		every   time.Duration
	}{
		"other": {30 * time.Second, 10, 500 * time.Millisecond},
		"fast":  {0, 10, 500 * time.Millisecond},
		"slow":  {30 * time.Second, 5, 2 * time.Second},
	} {
		n := c.Nodes.Node(id)
		if n.RepeatHorizon == nil || time.Duration(*n.RepeatHorizon) != want.horizon || n.Pace == nil ||
			n.Pace.Ahead != want.ahead || time.Duration(n.Pace.Every) != want.every {
			t.Errorf("%s: %+v %+v, want %+v", id, n.RepeatHorizon, n.Pace, want)
		}
	}
	for _, bad := range []string{
		"nodes:\n  repeat_horizon: -1s\n",
		"nodes:\n  pace: {ahead: 10}\n",
		"nodes:\n  per_node:\n    x: {pace: {ahead: -1, every: 1s}}\n",
	} {
		if _, err := gateway.ParseConfig("bad.yaml", []byte(bad)); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
