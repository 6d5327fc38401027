package gateway_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/tether-iot/tether/gateway"
)

// retained follows the retained topics under some filters as a new
// subscriber sees them: the last payload of each (an empty one deletes
// it), and the messages that were published live rather than replayed.
type retained struct {
	mu      sync.Mutex
	topics  map[string]string
	live    map[string]int // messages not flagged retained, by topic
	changed chan struct{}
	c       paho.Client
}

func watchRetained(t *testing.T, ctx context.Context, url string, filters ...string) *retained {
	t.Helper()
	r := &retained{topics: map[string]string{}, live: map[string]int{}, changed: make(chan struct{})}
	url = strings.Replace(url, "mqtt://", "tcp://", 1)
	o := paho.NewClientOptions().AddBroker(url).SetClientID(fmt.Sprintf("ha-%p", r)).SetOrderMatters(true).SetAutoReconnect(false).
		SetDefaultPublishHandler(func(_ paho.Client, m paho.Message) {
			r.mu.Lock()
			if len(m.Payload()) == 0 {
				delete(r.topics, m.Topic())
			} else {
				r.topics[m.Topic()] = string(m.Payload())
			}
			if !m.Retained() {
				r.live[m.Topic()]++
			}
			close(r.changed)
			r.changed = make(chan struct{})
			r.mu.Unlock()
		})
	r.c = paho.NewClient(o)
	if err := wait(ctx, r.c.Connect()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.c.Disconnect(50) })
	subs := map[string]byte{}
	for _, f := range filters {
		subs[f] = 1
	}
	if err := wait(ctx, r.c.SubscribeMultiple(subs, nil)); err != nil {
		t.Fatal(err)
	}
	return r
}

// until waits until cond holds on the retained topics.
func (r *retained) until(t *testing.T, ctx context.Context, what string, cond func(topics map[string]string) bool) {
	t.Helper()
	r.untilLive(t, ctx, what, func(topics map[string]string, _ map[string]int) bool { return cond(topics) })
}

// untilLive waits until cond holds on the retained topics and the
// counts of live messages.
func (r *retained) untilLive(t *testing.T, ctx context.Context, what string, cond func(topics map[string]string, live map[string]int) bool) {
	t.Helper()
	for {
		r.mu.Lock()
		ok := cond(r.topics, r.live)
		ch := r.changed
		r.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-ch:
		case <-ctx.Done():
			r.mu.Lock()
			defer r.mu.Unlock()
			t.Fatalf("waiting for %s: %v; retained topics:\n%s", what, ctx.Err(), dump(r.topics))
		}
	}
}

func (r *retained) get(topic string) (string, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	v, ok := r.topics[topic]
	return v, ok
}

func (r *retained) snapshot() map[string]string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string]string, len(r.topics))
	for k, v := range r.topics {
		out[k] = v
	}
	return out
}

func (r *retained) liveCount(topic string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.live[topic]
}

func dump(m map[string]string) string {
	var b strings.Builder
	for _, k := range sortedKeys(m) {
		fmt.Fprintf(&b, "  %s = %s\n", k, m[k])
	}
	return b.String()
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	for i := 1; i < len(keys); i++ {
		for j := i; j > 0 && keys[j] < keys[j-1]; j-- {
			keys[j], keys[j-1] = keys[j-1], keys[j]
		}
	}
	return keys
}

// haTestConfig is a gateway with Home Assistant discovery, fields and
// commands.
func haTestConfig(t *testing.T) gateway.Config {
	cfg := gwConfig(t, "")
	on := true
	cfg.Web = gateway.WebConfig{Addr: "127.0.0.1:0", Enabled: &on}
	cfg.Nodes.Expect = []string{"kitchen", "a/b+#$%"}
	cfg.Discovery = gateway.DiscoveryConfig{Enabled: true, HADiscovery: gateway.HADiscovery{
		Fields:     map[string]gateway.FieldSensor{"rssi": {DeviceClass: "signal_strength", Unit: "dBm"}},
		Commands:   map[string]string{"ping": "ping"},
		AutoFields: true,
		Nodes: map[string]gateway.NodeDiscovery{"kitchen": {
			Name: "Kitchen sensor", Area: "Kitchen",
			Fields: map[string]gateway.FieldSensor{
				"temp": {DeviceClass: "temperature", Unit: "°C"},
				"hum":  {DeviceClass: "humidity", Unit: "%"},
			},
			Commands: map[string]string{"reboot": "reboot"},
		}},
	}}
	return cfg
}

// configsValid checks every discovery config retained under
// homeassistant/ against Home Assistant's schema, and the links between
// them: each node device is via the gateway's device, whose config is
// there; sensors are unavailable when the node or the gateway is.
func configsValid(t *testing.T, topics map[string]string) (n int) {
	t.Helper()
	var gwID string
	devices := map[string]map[string]any{}
	for topic, payload := range topics {
		if !strings.HasPrefix(topic, "homeassistant/") || !strings.HasSuffix(topic, "/config") {
			continue
		}
		n++
		var p map[string]any
		if err := json.Unmarshal([]byte(payload), &p); err != nil {
			t.Errorf("%s: not JSON: %v", topic, err)
			continue
		}
		if err := validateDiscovery("homeassistant", topic, p); err != nil {
			t.Errorf("%s: %v\n%s", topic, err, payload)
			continue
		}
		dev := p["device"].(map[string]any)
		id := dev["identifiers"].([]any)[0].(string)
		if strings.HasPrefix(id, "tethergw_") {
			gwID = id
			if dev["sw_version"] != gateway.Version() {
				t.Errorf("%s: sw_version %v, want %s", topic, dev["sw_version"], gateway.Version())
			}
			continue
		}
		devices[topic] = p
	}
	if gwID == "" {
		t.Fatalf("no gateway device config")
	}
	for topic, p := range devices {
		dev := p["device"].(map[string]any)
		if dev["via_device"] != gwID {
			t.Errorf("%s: via_device %v, want %s", topic, dev["via_device"], gwID)
		}
		if p["origin"].(map[string]any)["sw_version"] != gateway.Version() {
			t.Errorf("%s: origin without the version", topic)
		}
		if !strings.HasPrefix(dev["configuration_url"].(string), "http://127.0.0.1:") {
			t.Errorf("%s: configuration_url %v", topic, dev["configuration_url"])
		}
		avail := p["availability"].([]any)
		_, isSensor := p["state_topic"]
		isSensor = isSensor && p["device_class"] != "connectivity"
		switch {
		case isSensor && (len(avail) != 2 || p["availability_mode"] != "all"):
			t.Errorf("%s: a sensor must be unavailable when its node or the gateway is: %v", topic, avail)
		case !isSensor && len(avail) != 1:
			t.Errorf("%s: connectivity and commands are available while the gateway is: %v", topic, avail)
		}
		if p["qos"] != 1.0 {
			t.Errorf("%s: qos %v, want 1", topic, p["qos"])
		}
	}
	return n
}

// TestHomeAssistantDiscovery: every config the gateway publishes passes
// Home Assistant's discovery schema; expected nodes are announced at
// start; JSON fields become sensors (declared, and numeric ones with
// auto_fields); the last message is retained; commands reach the node;
// Home Assistant's "online" brings every config again; forgetting a node
// clears all its retained topics.
func TestHomeAssistantDiscovery(t *testing.T) {
	ctx := testCtx(t)
	g := startGateway(t, haTestConfig(t))
	r := watchRetained(t, ctx, mqttURL(g), "homeassistant/#", "tether/#")

	// At start, before any node connects: the gateway and both expected
	// nodes (connectivity, message, command, send, 2 buttons, 3 fields
	// for kitchen; 4 + ping + rssi for the other).
	r.until(t, ctx, "the expected nodes' configs", func(m map[string]string) bool {
		n := 0
		for k := range m {
			if strings.HasSuffix(k, "/config") {
				n++
			}
		}
		return n == 1+9+6
	})
	configsValid(t, r.snapshot())
	temp, _ := r.get("homeassistant/sensor/tether_kitchen/field_temp/config")
	for _, want := range []string{`"state_topic":"tether/kitchen/field/temp"`, `"device_class":"temperature"`, `"unit_of_measurement":"°C"`,
		`"state_class":"measurement"`, `"default_entity_id":"sensor.tether_kitchen_temp"`, `"suggested_area":"Kitchen"`, `"name":"Kitchen sensor"`} {
		if !strings.Contains(temp, want) {
			t.Errorf("temp config lacks %s: %s", want, temp)
		}
	}

	// A reading: two declared fields, one numeric field made a sensor by
	// itself, one string field ignored.
	n := dialNode(t, ctx, g.Addr().String(), "kitchen")
	reading := `{"temp": 21.5, "hum": 40, "battery": 97, "label": "x"}`
	if err := n.Write(ctx, reading); err != nil {
		t.Fatal(err)
	}
	r.until(t, ctx, "the fields' values", func(m map[string]string) bool {
		return m["tether/kitchen/field/temp"] == "21.5" && m["tether/kitchen/field/hum"] == "40" &&
			m["tether/kitchen/field/battery"] == "97" && m["tether/kitchen/last"] == reading &&
			m["homeassistant/sensor/tether_kitchen/field_battery/config"] != ""
	})
	if _, ok := r.get("tether/kitchen/field/label"); ok {
		t.Error("a string field not asked for was published")
	}
	configsValid(t, r.snapshot())

	// A message longer than Home Assistant's 255 characters: retained
	// whole; the sensor's template keeps its first 255.
	long := strings.Repeat("x", 300)
	if err := n.Write(ctx, long); err != nil {
		t.Fatal(err)
	}
	r.until(t, ctx, "the long message", func(m map[string]string) bool { return m["tether/kitchen/last"] == long })
	msg, _ := r.get("homeassistant/sensor/tether_kitchen/message/config")
	if !strings.Contains(msg, `"value_template":"{{ value[:255] }}"`) || !strings.Contains(msg, `"state_topic":"tether/kitchen/last"`) {
		t.Errorf("message sensor: %s", msg)
	}

	// Home Assistant's entities command the node: the text entity and a
	// button publish to its down topic.
	app := dialMQTT(t, ctx, mqttURL(g))
	app.publish(t, ctx, "tether/kitchen/down", "led on") // what the text entity sends
	n.expect(t, ctx, "led on")
	var button map[string]any
	b, _ := r.get("homeassistant/button/tether_kitchen/cmd_reboot/config")
	json.Unmarshal([]byte(b), &button)
	app.publish(t, ctx, button["command_topic"].(string), button["payload_press"].(string))
	n.expect(t, ctx, "reboot")

	// Home Assistant comes back online: every config is published again.
	before := r.liveCount("homeassistant/sensor/tether_kitchen/field_battery/config")
	app.publish(t, ctx, "homeassistant/status", "online")
	r.untilLive(t, ctx, "the configs published again", func(_ map[string]string, live map[string]int) bool {
		return live["homeassistant/sensor/tether_kitchen/field_battery/config"] > before &&
			live["homeassistant/binary_sensor/tethergw_test/status/config"] > 0
	})

	// A node not expected, forgotten: everything retained for it goes,
	// its auto field's sensor included.
	attic := dialNode(t, ctx, g.Addr().String(), "attic")
	if err := attic.Write(ctx, `{"lux": 120}`); err != nil {
		t.Fatal(err)
	}
	r.until(t, ctx, "attic's auto field", func(m map[string]string) bool {
		return m["tether/attic/field/lux"] == "120" && m["homeassistant/sensor/tether_attic/field_lux/config"] != ""
	})
	attic.Close()
	r.until(t, ctx, "attic down", func(m map[string]string) bool { return m["tether/attic/state"] == "down" })
	if _, _, err := g.Forget(ctx, "attic"); err != nil {
		t.Fatal(err)
	}
	r.until(t, ctx, "attic's topics cleared", func(m map[string]string) bool {
		for k := range m {
			// (up is not retained: the test's view keeps its last message)
			if (strings.Contains(k, "tether/attic/") && !strings.HasSuffix(k, "/up")) || strings.Contains(k, "/tether_attic/") {
				return false
			}
		}
		return true
	})
}

// TestHomeAssistantConfigChange: after a restart with a command and a
// field no longer configured, their entities' configs are cleared; the
// others stay.
func TestHomeAssistantConfigChange(t *testing.T) {
	ctx := testCtx(t)
	cfg := haTestConfig(t)
	g := startGateway(t, cfg)
	r := watchRetained(t, ctx, mqttURL(g), "homeassistant/#")
	const ping = "homeassistant/button/tether_kitchen/cmd_ping/config"
	const hum = "homeassistant/sensor/tether_kitchen/field_hum/config"
	r.until(t, ctx, "the configs", func(m map[string]string) bool { return m[ping] != "" && m[hum] != "" })
	g.Close()

	cfg.Discovery.Commands = nil
	nd := cfg.Discovery.Nodes["kitchen"]
	delete(nd.Fields, "hum")
	cfg.Discovery.Nodes["kitchen"] = nd
	g = startGateway(t, cfg)
	r = watchRetained(t, ctx, mqttURL(g), "homeassistant/#")
	r.until(t, ctx, "the removed entities cleared", func(m map[string]string) bool {
		_, p := m[ping]
		_, h := m[hum]
		return !p && !h && m["homeassistant/sensor/tether_kitchen/field_temp/config"] != ""
	})
}

// TestDocsHomeAssistantExample: the example of docs/GATEWAY.md ("A
// node's JSON reading as sensors") does what the doc says: with its
// config, node kitchen's {"temp": 21.5, "hum": 40} gives the two field
// topics and exactly the discovery payloads shown (the version aside).
func TestDocsHomeAssistantExample(t *testing.T) {
	doc, err := os.ReadFile("../docs/GATEWAY.md")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)<!-- BEGIN ha example config[^>]*-->\\s*```yaml\n(.*?)```").FindSubmatch(doc)
	if m == nil {
		t.Fatal("docs/GATEWAY.md: no ha example config")
	}
	cfg, err := gateway.ParseConfig("docs/GATEWAY.md", m[1])
	if err != nil {
		t.Fatal(err)
	}
	base := gwConfig(t, "")
	cfg.Listen, cfg.Timeout, cfg.Data, cfg.Logger, cfg.Web = base.Listen, base.Timeout, base.Data, base.Logger, base.Web
	cfg.MQTT.Listen = base.MQTT.Listen
	payloads := map[string]map[string]any{}
	for _, p := range regexp.MustCompile("(?s)<!-- BEGIN ha example payload (\\S+) -->\\s*```json\n(.*?)```").FindAllSubmatch(doc, -1) {
		var v map[string]any
		if err := json.Unmarshal(p[2], &v); err != nil {
			t.Fatalf("doc payload %s: %v", p[1], err)
		}
		payloads[string(p[1])] = v
	}
	if len(payloads) != 2 {
		t.Fatalf("%d payloads in the doc, want temp's and hum's", len(payloads))
	}

	ctx := testCtx(t)
	g := startGateway(t, cfg)
	r := watchRetained(t, ctx, mqttURL(g), "homeassistant/#", "tether/#")
	n := dialNode(t, ctx, g.Addr().String(), "kitchen")
	if err := n.Write(ctx, `{"temp": 21.5, "hum": 40}`); err != nil {
		t.Fatal(err)
	}
	r.until(t, ctx, "the doc's topics", func(m map[string]string) bool {
		for topic := range payloads {
			if m[topic] == "" {
				return false
			}
		}
		return m["tether/kitchen/field/temp"] == "21.5" && m["tether/kitchen/field/hum"] == "40"
	})
	for topic, want := range payloads {
		got, _ := r.get(topic)
		var v map[string]any
		json.Unmarshal([]byte(got), &v)
		for _, x := range []map[string]any{v, want} {
			x["origin"].(map[string]any)["sw_version"] = "VERSION"
		}
		gb, _ := json.MarshalIndent(v, "", "  ")
		wb, _ := json.MarshalIndent(want, "", "  ")
		if string(gb) != string(wb) {
			t.Errorf("%s: the gateway publishes\n%s\nthe doc shows\n%s", topic, gb, wb)
		}
	}
}
