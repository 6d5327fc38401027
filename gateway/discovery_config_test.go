package gateway_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/tether-iot/tether/gateway"
)

// TestDiscoveryConfigRules: the discovery keys are checked at start;
// an error names the key and says what Home Assistant allows.
func TestDiscoveryConfigRules(t *testing.T) {
	ok := `discovery:
  enabled: true
  nodes:
    kitchen:
      fields:
        temp: {device_class: temperature, unit_of_measurement: °C}
        hum: {device_class: humidity, unit_of_measurement: "%"}
`
	c, err := gateway.ParseConfig("ok.yaml", []byte(ok))
	if err != nil {
		t.Fatal(err)
	}
	if f := c.Discovery.Nodes["kitchen"].Fields["temp"]; f.DeviceClass != "temperature" || f.Unit != "°C" {
		t.Fatalf("parsed %+v", c.Discovery)
	}
	for _, tc := range []struct{ text, key, says string }{
		{"discovery:\n  fields:\n    temp: {}\n", "discovery", "discovery.enabled"},
		{"discovery:\n  enabled: true\n  fields:\n    temp: {device_class: temprature}\n", "discovery.fields.temp.device_class", "not a Home Assistant sensor device class"},
		{"discovery:\n  enabled: true\n  fields:\n    temp: {device_class: temperature, unit_of_measurement: C}\n", "discovery.fields.temp.unit_of_measurement", `"°C", "°F", "K"`},
		{"discovery:\n  enabled: true\n  fields:\n    t: {device_class: timestamp, state_class: measurement}\n", "discovery.fields.t", "no unit_of_measurement and no state_class"},
		{"discovery:\n  enabled: true\n  fields:\n    t: {device_class: enum}\n", "discovery.fields.t.device_class", "options"},
		{"discovery:\n  enabled: true\n  fields:\n    t: {state_class: average}\n", "discovery.fields.t.state_class", "measurement"},
		{"discovery:\n  enabled: true\n  fields:\n    t: {icon: thermometer}\n", "discovery.fields.t.icon", "mdi:"},
		{"discovery:\n  enabled: true\n  fields:\n    t: {suggested_display_precision: -1}\n", "discovery.fields.t.suggested_display_precision", "0 or more"},
		{"discovery:\n  enabled: true\n  commands:\n    reboot: \"\"\n", "discovery.commands.reboot", "empty"},
		{"discovery:\n  enabled: true\n  commands:\n    reboot: \"a\\nb\"\n", "discovery.commands.reboot", "one line"},
		{"max_line: 16\ndiscovery:\n  enabled: true\n  commands:\n    long: \"0123456789abcdef\"\n", "discovery.commands.long", "max_line"},
		{"discovery:\n  enabled: true\n  nodes:\n    \"bad\\u200bid\": {}\n", "discovery.nodes.bad\u200bid", "node ID"},
		{"discovery:\n  enabled: true\n  configuration_url: gateway.lan\n", "discovery.configuration_url", "http://"},
	} {
		_, err := gateway.ParseConfig("t.yaml", []byte(tc.text))
		var ce *gateway.ConfigError
		if !errors.As(err, &ce) || ce.Key != tc.key || !strings.Contains(ce.Msg, tc.says) {
			t.Errorf("%q:\n got %v (key %q)\nwant key %s saying %q", tc.text, err, keyOf(ce), tc.key, tc.says)
		}
	}
}

func keyOf(ce *gateway.ConfigError) string {
	if ce == nil {
		return ""
	}
	return ce.Key
}

// TestHASchemaRejects: the schema test can fail: each payload breaks one
// of Home Assistant's rules.
func TestHASchemaRejects(t *testing.T) {
	good := `{"name":"Message","unique_id":"u","default_entity_id":"sensor.tether_k_message","state_topic":"tether/k/last",
		"availability":[{"topic":"tether/$gateway/g/state"}],"device":{"identifiers":["tether_k"]},"origin":{"name":"Tether"},"qos":1}`
	var p map[string]any
	if err := json.Unmarshal([]byte(good), &p); err != nil {
		t.Fatal(err)
	}
	if err := validateDiscovery("homeassistant", "homeassistant/sensor/tether_k/message/config", p); err != nil {
		t.Fatalf("good payload refused: %v", err)
	}
	for _, tc := range []struct {
		topic  string
		change func(p map[string]any)
	}{
		{"homeassistant/sensor/tether k/message/config", func(map[string]any) {}},
		{"homeassistant/vacuum/tether_k/message/config", func(map[string]any) {}},
		{"", func(p map[string]any) { p["object_id"] = "tether_k_message" }},
		{"", func(p map[string]any) { delete(p, "state_topic") }},
		{"", func(p map[string]any) { p["state_topic"] = "tether/#/x" }},
		{"", func(p map[string]any) { p["json_attribute_topic"] = "typo" }},
		{"", func(p map[string]any) { p["device_class"] = "temprature" }},
		{"", func(p map[string]any) { p["state_class"] = "average" }},
		{"", func(p map[string]any) { p["device_class"] = "timestamp"; p["unit_of_measurement"] = "s" }},
		{"", func(p map[string]any) { p["default_entity_id"] = "tether_k_message" }},
		{"", func(p map[string]any) { p["default_entity_id"] = "binary_sensor.tether_k_message" }},
		{"", func(p map[string]any) { p["default_entity_id"] = "sensor.tether__k" }},
		{"", func(p map[string]any) { p["availability_topic"] = "x" }},
		{"", func(p map[string]any) { p["availability_mode"] = "most" }},
		{"", func(p map[string]any) { p["availability"] = []any{map[string]any{"payload_available": "up"}} }},
		{"", func(p map[string]any) { p["device"] = map[string]any{"name": "no id"} }},
		{"", func(p map[string]any) { p["device"].(map[string]any)["configuration_url"] = "gateway.lan:8080" }},
		{"", func(p map[string]any) { p["device"].(map[string]any)["via_hub"] = "x" }},
		{"", func(p map[string]any) { p["origin"] = map[string]any{"sw_version": "1"} }},
		{"", func(p map[string]any) { p["qos"] = 3.0 }},
		{"", func(p map[string]any) { p["icon"] = "thermometer" }},
		{"", func(p map[string]any) { p["entity_category"] = "primary" }},
		{"", func(p map[string]any) { p["suggested_display_precision"] = -1.0 }},
		{"homeassistant/text/tether_k/command/config", func(p map[string]any) { textize(p); p["max"] = 300.0 }},
		{"homeassistant/text/tether_k/command/config", func(p map[string]any) { textize(p); p["min"] = 10.0; p["max"] = 10.0 }},
		{"homeassistant/text/tether_k/command/config", func(p map[string]any) { textize(p); p["command_topic"] = "tether/+/down" }},
		{"homeassistant/button/tether_k/cmd_x/config", func(p map[string]any) {
			textize(p)
			p["default_entity_id"] = "button.x"
			p["device_class"] = "shutdown"
		}},
	} {
		var q map[string]any
		json.Unmarshal([]byte(good), &q)
		tc.change(q)
		topic := tc.topic
		if topic == "" {
			topic = "homeassistant/sensor/tether_k/message/config"
		}
		if err := validateDiscovery("homeassistant", topic, q); err == nil {
			b, _ := json.Marshal(q)
			t.Errorf("accepted: %s %s", topic, b)
		}
	}
}

// textize makes the good sensor payload a command entity's.
func textize(p map[string]any) {
	delete(p, "state_topic")
	p["command_topic"] = "tether/k/down"
	p["default_entity_id"] = "text.tether_k_command"
}
