package adversarial

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/tether-iot/tether/client"
	"github.com/tether-iot/tether/gateway"
)

// withDiscovery turns Home Assistant discovery on, with a field sensor
// and numeric fields made sensors by themselves.
func withDiscovery(c *gateway.Config) {
	c.Discovery = gateway.DiscoveryConfig{Enabled: true, HADiscovery: gateway.HADiscovery{
		AutoFields: true,
		Fields:     map[string]gateway.FieldSensor{"temp": {DeviceClass: "temperature", Unit: "°C"}},
	}}
}

// TestHAEntitiesNotForgeable (issue 12): a client publishes, retained,
// on the honest node's last message and field value, and on the
// discovery configs of its entities and of the gateway's device (a
// forged config could point the node's command entity at another
// topic). None is taken: the retained values stay the gateway's, the
// refusals are counted.
func TestHAEntitiesNotForgeable(t *testing.T) {
	h := start(t, options{configure: withDiscovery})
	topics := h.g.Topics()
	last, field := topics.Last(honestID), topics.Field(honestID, "temp")
	msgConf := "homeassistant/sensor/tether_" + honestID + "/message/config"
	gwConf := "homeassistant/binary_sensor/tethergw_adversarial/status/config"
	h.attack(func(ctx context.Context) {
		m, _ := dialRaw(t, ctx, h.mqttAddr, rawOptions{ID: "forger", Clean: true})
		defer m.c.Close()
		m.publish(t, last, []byte("forged"), true, 0)
		m.publish(t, field, []byte("-273"), true, 0)
		m.publish(t, msgConf, []byte(`{"state_topic":"elsewhere","command_topic":"tether/victim/down"}`), true, 0)
		m.publish(t, gwConf, []byte(""), true, 0) // deleting the gateway's device
		m.publish(t, "homeassistant/sensor/tether_newnode/message/config", []byte(`{"state_topic":"x"}`), true, 0)
	})
	if got := retainedOn(t, h.ctx, h.mqttAddr, last); got == "forged" || got == "" {
		t.Errorf("retained %s = %q after the forgery, want the honest node's last message", last, got)
	}
	if got := retainedOn(t, h.ctx, h.mqttAddr, msgConf); !strings.Contains(got, `"state_topic":"tether/honest/last"`) {
		t.Errorf("retained %s = %q after the forgery, want the gateway's", msgConf, got)
	}
	if got := retainedOn(t, h.ctx, h.mqttAddr, gwConf); !strings.Contains(got, `"tethergw_adversarial"`) {
		t.Errorf("retained %s = %q after the forgery, want the gateway's", gwConf, got)
	}
	if v := h.metricValue(t, "tether_mqtt_refused_writes_total"); v < 5 {
		t.Errorf("tether_mqtt_refused_writes_total = %v, want the 5 forgeries", v)
	}
}

// TestAutoFieldsFlood (issue 12): with discovery.auto_fields, a node
// (anyone who can claim an ID) sends JSON messages with hundreds of
// numeric fields, odd names and huge numbers: at most MaxAutoFields
// sensors are made for it, the rest is counted and logged once, and
// the honest node's traffic goes on.
func TestAutoFieldsFlood(t *testing.T) {
	h := start(t, options{configure: withDiscovery})
	var sent int
	h.attack(func(ctx context.Context) {
		c, err := client.Dial(ctx, client.Config{ID: "rogue", Server: h.nodeAddr, Timeout: T, Logger: slog.New(h.logs)})
		if err != nil {
			t.Error(err)
			return
		}
		defer c.Close()
		for i := range 5 {
			var b strings.Builder
			b.WriteString("{")
			for j := range 50 {
				fmt.Fprintf(&b, `"f%d_%d": %d, `, i, j, j)
			}
			b.WriteString(`"a/b": 1, "$x": 2, "nested": {"y": 3}, "big": 1e308, "s": "text"}`)
			if err := c.Write(ctx, b.String()); err != nil {
				t.Error(err)
				return
			}
			sent++
		}
		if err := c.Drain(ctx); err != nil {
			t.Error(err)
		}
	})
	// The sensors made: read back the retained configs of the rogue node.
	m, _ := dialRaw(t, h.ctx, h.mqttAddr, rawOptions{ID: "count", Clean: true})
	defer m.c.Close()
	m.subscribe(t, "homeassistant/sensor/tether_rogue/+/config", 0)
	m.c.SetReadDeadline(time.Now().Add(2 * time.Second))
	fields := 0
	for {
		topic, payload, _, err := m.readPublish(t)
		if err != nil {
			break
		}
		if strings.Contains(topic, "/field_") && !strings.Contains(topic, "/field_temp/") && len(payload) > 0 { // temp: declared for every node
			fields++
		}
	}
	if fields != gateway.MaxAutoFields {
		t.Errorf("%d field sensors made for the rogue node, want %d", fields, gateway.MaxAutoFields)
	}
	if v := h.metricValue(t, "tether_discovery_auto_fields_refused_total"); v < 1 {
		t.Errorf("tether_discovery_auto_fields_refused_total = %v after %d messages of 50 fields", v, sent)
	}
	if n := strings.Count(h.logs.text(), "more numeric fields than discovery.auto_fields"); n != 1 {
		t.Errorf("the refusal was logged %d times, want once", n)
	}
}
