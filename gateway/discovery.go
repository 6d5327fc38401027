package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
)

// objectID turns a node ID into Home Assistant's [a-zA-Z0-9_-] alphabet:
// other bytes become _xx (hex), and _ itself __.
func objectID(id string) string {
	var b strings.Builder
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-':
			b.WriteByte(c)
		case c == '_':
			b.WriteString("__")
		default:
			fmt.Fprintf(&b, "_%02x", c)
		}
	}
	return b.String()
}

// discoveryTopics returns Home Assistant's discovery config topics of
// node id: its connectivity binary sensor and its message sensor.
func (g *Gateway) discoveryTopics(id string) (conn, msg string) {
	oid := "tether_" + objectID(id)
	p := g.cfg.Discovery.Prefix
	return p + "/binary_sensor/" + oid + "/connectivity/config", p + "/sensor/" + oid + "/message/config"
}

// announce publishes node id's Home Assistant discovery configs
// (retained), so that it appears without any YAML on that side.
func (g *Gateway) announce(ctx context.Context, id string) error {
	oid := "tether_" + objectID(id)
	device := map[string]any{
		"identifiers":  []string{oid},
		"name":         "Tether node " + id,
		"manufacturer": "Tether",
		"model":        "micropython-iot node",
	}
	avail := map[string]any{
		"availability_topic":    g.topics.Gateway(g.cfg.Name),
		"payload_available":     "online",
		"payload_not_available": "offline",
	}
	conn := map[string]any{
		"name":         "Connectivity",
		"unique_id":    oid + "_connectivity",
		"object_id":    oid + "_connectivity",
		"device_class": "connectivity",
		"state_topic":  g.topics.State(id),
		"payload_on":   "up",
		"payload_off":  "down",
		"device":       device,
	}
	msg := map[string]any{
		"name":        "Message",
		"unique_id":   oid + "_message",
		"object_id":   oid + "_message",
		"state_topic": g.topics.Up(id),
		"icon":        "mdi:message-text",
		"device":      device,
	}
	for k, v := range avail {
		conn[k], msg[k] = v, v
	}
	ct, mt := g.discoveryTopics(id)
	for _, p := range []struct {
		topic string
		v     any
	}{{ct, conn}, {mt, msg}} {
		b, err := json.Marshal(p.v)
		if err != nil {
			return err
		}
		if err := g.publish(ctx, pubDiscovery, p.topic, b, true); err != nil {
			return err
		}
	}
	return nil
}
