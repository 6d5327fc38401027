package gateway

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/tether-iot/tether/gateway/internal/bus"

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
	// PasswordFile is a mosquitto_passwd file ("user:hash" lines; make
	// one with tether mqtt passwd or mosquitto_passwd) of the users who
	// may connect. It is required when mqtt.listen is not a loopback
	// address (unless Insecure); on loopback, clients without a user
	// name are accepted as well.
	PasswordFile string `yaml:"password_file"`
	// ACL gives each user the topic filters it may read and write; a
	// user not listed reads every topic and writes none. No client ever
	// writes a node's up or state topic or the gateways' $gateway
	// topics: only the gateway does.
	ACL map[string]ACL `yaml:"acl"`
	// Insecure lets a listener that is not on loopback accept clients
	// without a user name (with every right but the gateway's topics):
	// anyone on the network may then command the nodes. Logged as a
	// warning at every start.
	Insecure bool `yaml:"insecure"`
}

// ACL is what one user of the embedded broker may read (subscribe to and
// receive; empty: every topic) and write (publish to; empty: nothing),
// as MQTT topic filters.
type ACL struct {
	Read  []string `yaml:"read"`
	Write []string `yaml:"write"`
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
	for user, a := range e.ACL {
		for i, f := range slices.Concat(a.Read, a.Write) {
			if !validFilter(f) {
				return bad(fmt.Sprintf("mqtt.embedded.acl.%s", user), "filter %d %q is not an MQTT topic filter", i, f)
			}
		}
	}
	return nil
}

// validFilter reports whether f is an MQTT topic filter.
func validFilter(f string) bool {
	if f == "" {
		return false
	}
	levels := strings.Split(f, "/")
	for i, l := range levels {
		if strings.Contains(l, "#") && (l != "#" || i != len(levels)-1) {
			return false
		}
		if strings.Contains(l, "+") && l != "+" {
			return false
		}
	}
	return true
}

// loopbackAddr reports whether the listen address addr binds loopback
// only (127.0.0.0/8, ::1, localhost). An empty host (all interfaces),
// 0.0.0.0, :: or any other address is not loopback.
func loopbackAddr(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// embeddedAuth reads the password file and makes the embedded broker's
// rights. Whether anonymous clients are accepted depends on the
// listener's address, not on a client's: a client that reaches a
// wildcard listener through 127.0.0.1 logs in as any other (a local
// proxy or port forward may be relaying anyone).
func (g *Gateway) embeddedAuth() (*bus.Auth, error) {
	e := g.cfg.MQTT.Embedded
	loopback := loopbackAddr(g.cfg.MQTT.Listen)
	auth := &bus.Auth{Anonymous: loopback || e.Insecure, Users: map[string]bus.User{}}
	if e.PasswordFile != "" {
		text, err := os.ReadFile(e.PasswordFile)
		if err != nil {
			return nil, fmt.Errorf("gateway: mqtt.embedded.password_file: %w", err)
		}
		hashes, err := bus.ParsePasswords(text)
		if err != nil {
			return nil, fmt.Errorf("gateway: mqtt.embedded.password_file %s: %w", e.PasswordFile, err)
		}
		for user, hash := range hashes {
			a := e.ACL[user]
			auth.Users[user] = bus.User{Hash: hash, Read: a.Read, Write: a.Write}
		}
	}
	for user := range e.ACL {
		if _, ok := auth.Users[user]; !ok {
			return nil, fmt.Errorf("gateway: mqtt.embedded.acl: user %q is not in the password file (mqtt.embedded.password_file)", user)
		}
	}
	if !loopback && len(auth.Users) == 0 && !e.Insecure {
		return nil, fmt.Errorf("gateway: the embedded broker listens on %s, beyond this machine, with no users: "+
			"give it users (mqtt.embedded.password_file, --mqtt-password-file; make one with: tether mqtt passwd FILE USER), "+
			"or listen on loopback (127.0.0.1:1883, the default), or accept anyone anonymously with mqtt.embedded.insecure / --mqtt-insecure", g.cfg.MQTT.Listen)
	}
	if !loopback && e.Insecure {
		g.log.Warn("embedded MQTT broker: INSECURE: it accepts clients without a password beyond this machine: anyone on the network can read the nodes' messages and command them",
			"listen", g.cfg.MQTT.Listen, "hint", "give it users: mqtt.embedded.password_file (tether mqtt passwd)")
	}
	return auth, nil
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
	return tail == "up" || tail == "state" || tail == "last" || strings.HasPrefix(tail, "field/")
}

// gatewayOnlyTopic is gatewayOnly, and the Home Assistant discovery
// configs of the gateway's devices (object IDs tether_... and
// tethergw_...): no client may forge a node's entities.
func (g *Gateway) gatewayOnlyTopic(topic string) bool {
	if g.topics.gatewayOnly(topic) {
		return true
	}
	rest, ok := strings.CutPrefix(topic, g.cfg.Discovery.Prefix+"/")
	if !ok {
		return false
	}
	_, rest, _ = strings.Cut(rest, "/") // the component
	oid, _, _ := strings.Cut(rest, "/")
	return strings.HasPrefix(oid, "tether_") || strings.HasPrefix(oid, "tethergw_")
}

// SetMQTTPassword returns the embedded broker's password file text with
// user's password set (added, or replaced), hashed as mosquitto_passwd
// does; the file's other lines are kept. (tether mqtt passwd.)
func SetMQTTPassword(text []byte, user, password string) ([]byte, error) {
	if _, err := bus.ParsePasswords(text); err != nil {
		return nil, err
	}
	hash, err := bus.HashPassword(password)
	if err != nil {
		return nil, err
	}
	return bus.SetPassword(text, user, hash)
}
