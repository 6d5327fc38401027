package gateway

import (
	"path/filepath"
	"strings"

	"github.com/tether-iot/tether/link"
)

// EmbeddedBrokerConfig configures the embedded broker (mqtt.embedded in
// the config file); it is ignored with an external broker. See "The
// embedded broker" in docs/GATEWAY.md.
type EmbeddedBrokerConfig struct {
	// MaxPacket is the largest MQTT packet a client may send, in bytes;
	// a client that sends a larger one is disconnected. 0 means 16 ×
	// max_line (64 KiB with the default max_line): room for a node's
	// longest message with its topic, and for other clients' own
	// messages (Home Assistant discovery configs and the like).
	MaxPacket int `yaml:"max_packet"`
	// Persist keeps the broker's retained messages and its clients'
	// persistent sessions (subscriptions, QoS 1 messages waiting for
	// them) in broker.db in the data directory, across restarts. nil
	// means true; false keeps them in memory only.
	Persist *bool `yaml:"persist"`
}

// maxPacketPerLine is MaxPacket's default in max_lines.
const maxPacketPerLine = 16

func (c Config) embeddedMaxPacket() int {
	if c.MQTT.Embedded.MaxPacket > 0 {
		return c.MQTT.Embedded.MaxPacket
	}
	maxLine := c.MaxLine
	if maxLine == 0 {
		maxLine = link.DefaultMaxLine
	}
	return maxPacketPerLine * maxLine
}

// brokerDB is where the embedded broker keeps its state, or "".
func (c Config) brokerDB() string {
	if p := c.MQTT.Embedded.Persist; p != nil && !*p {
		return ""
	}
	return filepath.Join(c.Data, "broker.db")
}

// validateEmbedded checks mqtt.embedded.
func (c Config) validateEmbedded() error {
	e := c.MQTT.Embedded
	maxLine := c.MaxLine
	if maxLine == 0 {
		maxLine = link.DefaultMaxLine
	}
	// A node's message on its down topic: the payload, the topic (the
	// prefix, the escaped ID: up to 3 bytes a byte, "/down/noqos") and
	// the packet's own header.
	if e.MaxPacket < 0 || (e.MaxPacket > 0 && e.MaxPacket < 2*maxLine) {
		return bad("mqtt.embedded.max_packet", "%d: must be 0 (the default: %d × max_line) or at least 2 × max_line (%d), so that any message for a node fits with its topic", e.MaxPacket, maxPacketPerLine, 2*maxLine)
	}
	return nil
}

// gatewayOnly reports whether only the gateway writes topic: a node's
// up and state topics and the gateways' own ($gateway). The embedded
// broker refuses them to every client.
func (t Topics) gatewayOnly(topic string) bool {
	rest, ok := strings.CutPrefix(topic, t.Prefix+"/")
	if !ok {
		return false
	}
	level, tail, _ := strings.Cut(rest, "/")
	if level == "$gateway" {
		return true
	}
	return tail == "up" || tail == "state"
}
