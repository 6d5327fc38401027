package gateway_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/tether-iot/tether/gateway"
)

// configRules lists, for every key of the config file, values that make
// no sense and what the error must say (issue 10.7). cmd/tether checks
// the same values given as flags against the same words.
var configRules = []struct {
	key, yaml string // the key's path and a YAML document setting it
	want      string
}{
	{"name", "name: \"a/b\"\n", "name"},
	{"name", "name: \"gw\\u200b1\"\n", "visible"},
	{"listen", "listen: \"8123\"\n", "host:port"},
	{"listen", "listen: \":99999\"\n", "host:port"},
	{"timeout", "timeout: 0s\n", "between 50ms and 1h"},
	{"timeout", "timeout: -1s\n", "between 50ms and 1h"},
	{"timeout", "timeout: 1ns\n", "between 50ms and 1h"},
	{"timeout", "timeout: 2h\n", "between 50ms and 1h"},
	{"timeout", "timeout: fast\n", "not a duration"},
	{"max_line", "max_line: 2\n", "between 8 and 1048576"},
	{"max_line", "max_line: -5\n", "between 8 and 1048576"},
	{"max_line", "max_line: 100000000\n", "between 8 and 1048576"},
	{"nodes.expect", "nodes:\n  expect: [\"a\\tb\"]\n", "nodes.expect[0]"},
	{"nodes.strict", "nodes:\n  strict: true\n", "nodes.expect"},
	{"nodes.max", "nodes:\n  max: -2\n", "-1 (no bound), 0 (the default"},
	{"nodes.forget_after", "nodes:\n  forget_after: 1ms\n", "at least T"},
	{"queue.max_messages", "queue:\n  max_messages: -2\n", "-1 (no bound), 0 (the default"},
	{"queue.max_bytes", "queue:\n  max_bytes: -1\n", "at least max_line"},
	{"queue.max_total_bytes", "queue:\n  max_total_bytes: -7\n", "-1 (no bound), 0 (the default"},
	{"queue.max_up_messages", "queue:\n  max_up_messages: -3\n", "-1 (no bound), 0 (the default"},
	{"queue.max_nodes", "queue:\n  max_nodes: -100\n", "-1 (no bound), 0 (the default"},
	{"mqtt.broker", "mqtt:\n  broker: localhost\n", "broker URL"},
	{"mqtt.listen", "mqtt:\n  listen: \"1883\"\n", "host:port"},
	{"mqtt.prefix", "mqtt:\n  prefix: \"a/#\"\n", "mqtt.prefix"},
	{"mqtt.tls", "mqtt:\n  tls:\n    cert: c.pem\n", "cert and key"},
	{"routes", "routes:\n  - {from: a, to: a}\n", "loop"},
	{"discovery.prefix", "discovery:\n  enabled: true\n  prefix: \"ha/+\"\n", "discovery.prefix"},
	{"web.addr", "web:\n  addr: \"8080\"\n", "host:port"},
	{"web.node_metrics", "web:\n  node_metrics: all\n", "basic"},
}

// TestConfigRules: every key refuses the values that make no sense, with
// the key's name and what is allowed.
func TestConfigRules(t *testing.T) {
	for _, tc := range configRules {
		_, err := gateway.ParseConfig("gw.yaml", []byte(tc.yaml))
		var ce *gateway.ConfigError
		if !errors.As(err, &ce) {
			t.Errorf("%s: %q accepted (%v)", tc.key, tc.yaml, err)
			continue
		}
		if !strings.Contains(err.Error(), tc.key) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %q: error %q, want the key and %q", tc.key, tc.yaml, err, tc.want)
		}
	}
	// The same rules hold for a Config built in code.
	for _, c := range []gateway.Config{
		{Timeout: gateway.Duration(1)},
		{MaxLine: 2},
		{Queue: gateway.QueueConfig{MaxMessages: -2}},
		{Listen: "8123"},
	} {
		c.Data = t.TempDir()
		c.MQTT.Broker = gateway.BrokerNone
		if g, err := gateway.New(c); err == nil {
			g.Close()
			t.Errorf("New(%+v) accepted", c)
		}
	}
}

// TestConfigRulesAccept: the limits themselves and the documented
// special values are accepted.
func TestConfigRulesAccept(t *testing.T) {
	for _, text := range []string{
		"timeout: 50ms\n", "timeout: 1h\n", "max_line: 8\n", "max_line: 1048576\n",
		"queue:\n  max_messages: -1\n  max_total_bytes: -1\n  max_up_messages: -1\n  max_nodes: -1\n",
		"queue:\n  max_messages: 0\n", "listen: \"[::1]:0\"\n", "mqtt:\n  listen: none\n", "web:\n  addr: \"localhost:8080\"\n",
	} {
		if _, err := gateway.ParseConfig("gw.yaml", []byte(text)); err != nil {
			t.Errorf("%q: %v", text, err)
		}
	}
}
