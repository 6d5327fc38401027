package bus

import (
	"bytes"
	"encoding/json"
	"unicode/utf8"

	"github.com/mochi-mqtt/server/v2/packets"
)

// Content types (docs/GATEWAY.md, "Node-RED and plain MQTT"). The
// embedded broker speaks MQTT 5: the gateway's publishes carry a content
// type and a payload format indicator, which MQTT 5 subscribers receive
// (Node-RED's mqtt-in set to MQTT 5 and "auto-detect" parses
// application/json into an object); MQTT 3.1.1 subscribers get the same
// payload without them. Through an external broker the gateway speaks
// MQTT 3.1.1 (Eclipse Paho), which has no such properties.

// Content types of the gateway's messages.
const (
	ContentJSON = "application/json"
	ContentText = "text/plain; charset=utf-8"
)

// ContentType is the content type of a payload: JSON for a JSON object
// or array, text for any other UTF-8, "" for anything else (and the
// empty payload that clears a retained topic).
func ContentType(payload []byte) string {
	switch {
	case len(payload) == 0, !utf8.Valid(payload):
		return ""
	case isJSONDoc(payload):
		return ContentJSON
	}
	return ContentText
}

// isJSONDoc reports whether p is a JSON object or array (a bare number
// or string is a node's plain text as much as JSON).
func isJSONDoc(p []byte) bool {
	t := bytes.TrimSpace(p)
	if len(t) == 0 || (t[0] != '{' && t[0] != '[') {
		return false
	}
	return json.Valid(t)
}

// publishPacket is the PUBLISH the gateway injects: QoS 1, with the
// payload's content type and, for UTF-8, the payload format indicator.
func publishPacket(topic string, payload []byte, retain bool) packets.Packet {
	pk := packets.Packet{
		FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: 1, Retain: retain},
		TopicName:   topic,
		Payload:     payload,
		PacketID:    1, // not used by the broker for the inline client, but checked for validity
	}
	if ct := ContentType(payload); ct != "" {
		pk.Properties.ContentType = ct
		pk.Properties.PayloadFormat = 1
		pk.Properties.PayloadFormatFlag = true
	}
	return pk
}
