package gateway_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/tether-iot/tether/gateway"
)

// FuzzEscapeID: every node ID comes back from its topic level, and the
// level holds no MQTT separator or wildcard ('/', '+', '#') and starts with
// no '$'; UnescapeID of any level never panics.
func FuzzEscapeID(f *testing.F) {
	for _, s := range []string{"", "7", "kitchen", "a/b+#$%", "%", "%2F", "%%41", "€/é", "$SYS", "\x00\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, id string) {
		level := gateway.EscapeID(id)
		if strings.ContainsAny(level, "/+#") || strings.HasPrefix(level, "$") {
			t.Fatalf("EscapeID(%q) = %q: a separator or wildcard is left", id, level)
		}
		back, err := gateway.UnescapeID(level)
		if err != nil || back != id {
			t.Fatalf("UnescapeID(EscapeID(%q) = %q) = %q, %v", id, level, back, err)
		}
		gateway.UnescapeID(id) // any level: an error or an ID, no panic
	})
}

// FuzzParseConfig: any text is either refused with a *ConfigError or
// parsed into a Config that Validate accepts.
func FuzzParseConfig(f *testing.F) {
	for _, s := range []string{
		"",
		"name: gw\nlisten: 127.0.0.1:8123\ntimeout: 2s\n",
		"timeout: 0s\n",
		"mqtt:\n  broker: mqtt://127.0.0.1:1883\n  prefix: home\n  tls:\n    ca: ca.pem\n",
		"nodes:\n  expect: [a, b]\n  strict: true\nroutes:\n  - from: a\n    to: b\n",
		"queue:\n  max_messages: -1\n  max_bytes: 10\n",
		"web:\n  addr: 127.0.0.1:8080\n  node_metrics: full\n",
		"unknown: 1\n",
		"timeout: [1, 2]\n",
		"- a\n- b\n",
		"&a [*a]\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, text []byte) {
		c, err := gateway.ParseConfig("fuzz.yaml", text)
		if err != nil {
			var ce *gateway.ConfigError
			if !errors.As(err, &ce) {
				t.Fatalf("ParseConfig: %v (%T), want a *ConfigError", err, err)
			}
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("ParseConfig accepted %q, but Validate says: %v", text, err)
		}
	})
}
