package gateway

import (
	"fmt"
	"strings"
)

// EscapeID turns a node ID into one MQTT topic level: '%', '/', '+',
// '#' and '$' are written as %25, %2F, %2B, %23 and %24, so that an ID
// can neither span levels nor act as a wildcard, and no escaped ID
// starts with '$' (topics of the gateways themselves use "$gateway").
// Every other character is kept.
func EscapeID(id string) string {
	if !strings.ContainsAny(id, "%/+#$") {
		return id
	}
	var b strings.Builder
	for i := 0; i < len(id); i++ {
		switch c := id[i]; c {
		case '%', '/', '+', '#', '$':
			fmt.Fprintf(&b, "%%%02X", c)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// UnescapeID undoes EscapeID.
func UnescapeID(level string) (string, error) {
	if !strings.Contains(level, "%") {
		return level, nil
	}
	var b strings.Builder
	for i := 0; i < len(level); i++ {
		c := level[i]
		if c != '%' {
			b.WriteByte(c)
			continue
		}
		if i+2 >= len(level) {
			return "", fmt.Errorf("bad escape in topic level %q", level)
		}
		var v byte
		if _, err := fmt.Sscanf(level[i+1:i+3], "%02X", &v); err != nil {
			return "", fmt.Errorf("bad escape in topic level %q", level)
		}
		b.WriteByte(v)
		i += 2
	}
	return b.String(), nil
}

// Topics is the MQTT topic layout under a prefix (see docs/GATEWAY.md).
type Topics struct{ Prefix string }

// Up is where node id's messages are published (QoS 1, not retained).
func (t Topics) Up(id string) string { return t.Prefix + "/" + EscapeID(id) + "/up" }

// Down is where messages for node id are published: each is queued
// durably and written with qos, exactly once.
func (t Topics) Down(id string) string { return t.Prefix + "/" + EscapeID(id) + "/down" }

// DownNoQoS is where messages for node id are written once, without
// qos, if the node is up (may be lost; never queued on disk).
func (t Topics) DownNoQoS(id string) string { return t.Down(id) + "/noqos" }

// Last is node id's last message, retained (mqtt.retain_last).
func (t Topics) Last(id string) string { return t.Prefix + "/" + EscapeID(id) + "/last" }

// Field is the value of field f of node id's last JSON message that
// carried it, retained (discovery.fields), f escaped as an ID is.
func (t Topics) Field(id, f string) string {
	return t.Prefix + "/" + EscapeID(id) + "/field/" + EscapeID(f)
}

// State is node id's retained state: "up" or "down".
func (t Topics) State(id string) string { return t.Prefix + "/" + EscapeID(id) + "/state" }

// Gateway is the retained state of gateway name: "online", or
// "offline" (also its MQTT last will).
func (t Topics) Gateway(name string) string { return t.Prefix + "/$gateway/" + name + "/state" }

// parseDown returns the node of a Down or DownNoQoS topic.
func (t Topics) parseDown(topic string) (id string, qos bool, ok bool) {
	rest, found := strings.CutPrefix(topic, t.Prefix+"/")
	if !found {
		return "", false, false
	}
	level, tail, _ := strings.Cut(rest, "/")
	switch tail {
	case "down":
		qos = true
	case "down/noqos":
	default:
		return "", false, false
	}
	id, err := UnescapeID(level)
	if err != nil || id == "" {
		return "", false, false
	}
	return id, qos, true
}
