package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net"
	"os"
	"slices"
	"strings"

	"github.com/tether-iot/tether/gateway/internal/bus"
	"github.com/tether-iot/tether/gateway/internal/store"
	"github.com/tether-iot/tether/link"
)

// Home Assistant MQTT discovery (docs/GATEWAY.md, "Home Assistant").
//
// The gateway is a device of its own (a connectivity sensor on its
// online/offline state); each node is a device "via" it, with:
//
//   - a connectivity binary sensor on <p>/<id>/state, available while the
//     gateway is online;
//   - a "Message" sensor on the node's last message (<p>/<id>/last,
//     retained: Home Assistant has it again after a restart), its state
//     cut to 255 characters (Home Assistant's limit), and the message's
//     JSON fields as attributes when it is a JSON object;
//   - a "Command" text entity and a "Send" notify entity that publish to
//     the node's down topic (with qos: queued while the node is down, so
//     they stay available while the gateway is online);
//   - a button per configured command;
//   - a sensor per configured JSON field, and per numeric field with
//     discovery.auto_fields, on <p>/<id>/field/<field>;
//
// the sensors being unavailable while the node or the gateway is down.
// Every config is retained and published when the node is introduced
// (at start for expected nodes and nodes with messages in the store),
// again when Home Assistant says it is back (online on
// <discovery prefix>/status) and after a reconnection to the broker, and
// cleared (an empty retained payload) when the node is forgotten or an
// entity is no longer configured.

// haSupportURL is the origin's support URL.
const haSupportURL = "https://github.com/tether-iot/tether"

// haConfig is one discovery config, retained on Topic.
type haConfig struct {
	Topic   string
	Payload map[string]any
	// Variable configs (buttons, fields) are recorded in the store, so
	// that they are cleared once no longer configured.
	Variable bool
}

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

// entitySlug turns s into the alphabet of entity IDs: lower-case letters,
// digits and single underscores, none first or last (Home Assistant's
// valid_entity_id); "x" if nothing is left. Two nodes may share a slug:
// Home Assistant then numbers the second entity (_2); unique_id, not the
// entity ID, identifies an entity.
func entitySlug(s string) string {
	var b strings.Builder
	under := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'A' && c <= 'Z':
			c += 'a' - 'A'
			fallthrough
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
			if under && b.Len() > 0 {
				b.WriteByte('_')
			}
			under = false
			b.WriteByte(c)
		default:
			under = true
		}
	}
	if b.Len() == 0 {
		return "x"
	}
	return b.String()
}

// nodeOID is node id's identifier in Home Assistant (device identifier,
// discovery object ID, unique_id prefix).
func nodeOID(id string) string { return "tether_" + objectID(id) }

// gatewayOID is the gateway's device identifier. No node's can be it:
// theirs start with "tether_".
func (g *Gateway) gatewayOID() string { return "tethergw_" + objectID(g.cfg.Name) }

func (g *Gateway) haTopic(component, oid, object string) string {
	return g.cfg.Discovery.Prefix + "/" + component + "/" + oid + "/" + object + "/config"
}

// haStatusTopic is where Home Assistant says it is online or offline.
func (g *Gateway) haStatusTopic() string { return g.cfg.Discovery.Prefix + "/status" }

// retainLast reports whether nodes' last messages are published,
// retained, on their last topic (mqtt.retain_last).
func (g *Gateway) retainLast() bool {
	if r := g.cfg.MQTT.RetainLast; r != nil {
		return *r
	}
	return g.cfg.Discovery.Enabled
}

// configurationURL is the status page's URL for Home Assistant's device
// links, or "".
func (g *Gateway) configurationURL() string {
	switch u := g.cfg.Discovery.ConfigurationURL; u {
	case "none":
		return ""
	case "":
	default:
		return u
	}
	if g.web == nil {
		return ""
	}
	addr := g.cfg.Web.Addr
	if g.webLn != nil {
		addr = g.webLn.Addr().String()
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return ""
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		if h, err := os.Hostname(); err == nil && h != "" {
			host = h
		} else {
			host = "localhost"
		}
	}
	return "http://" + net.JoinHostPort(host, port) + "/"
}

func (g *Gateway) haOrigin() map[string]any {
	return map[string]any{"name": "Tether", "sw_version": Version(), "support_url": haSupportURL}
}

// gatewayAvailability is the availability entry of the gateway's state.
func (g *Gateway) gatewayAvailability() map[string]any {
	return map[string]any{"topic": g.topics.Gateway(g.cfg.Name), "payload_available": "online", "payload_not_available": "offline"}
}

// gatewayConfig is the gateway device's entity: a connectivity sensor
// on its state (never unavailable: offline is its off).
func (g *Gateway) gatewayConfig() haConfig {
	oid := g.gatewayOID()
	dev := map[string]any{
		"identifiers":  []string{oid},
		"name":         "Tether gateway " + g.cfg.Name,
		"manufacturer": "Tether",
		"model":        "tether serve",
		"sw_version":   Version(),
	}
	if u := g.configurationURL(); u != "" {
		dev["configuration_url"] = u
	}
	return haConfig{
		Topic: g.haTopic("binary_sensor", oid, "status"),
		Payload: map[string]any{
			"name":              "Status",
			"unique_id":         oid + "_status",
			"default_entity_id": "binary_sensor.tether_gateway_" + entitySlug(g.cfg.Name) + "_status",
			"device_class":      "connectivity",
			"entity_category":   "diagnostic",
			"state_topic":       g.topics.Gateway(g.cfg.Name),
			"payload_on":        "online",
			"payload_off":       "offline",
			"qos":               1,
			"device":            dev,
			"origin":            g.haOrigin(),
		},
	}
}

// fieldsOf returns node id's field sensors: every node's, then its own
// (which override by name).
func (g *Gateway) fieldsOf(id string) map[string]FieldSensor {
	return merged(g.cfg.Discovery.Fields, g.cfg.Discovery.Nodes[id].Fields)
}

// commandsOf returns node id's buttons, as fieldsOf.
func (g *Gateway) commandsOf(id string) map[string]string {
	return merged(g.cfg.Discovery.Commands, g.cfg.Discovery.Nodes[id].Commands)
}

// merged returns every node's entries overridden by one node's, or nil if
// there are none.
func merged[V any](all, own map[string]V) map[string]V {
	if len(all) == 0 && len(own) == 0 {
		return nil
	}
	out := make(map[string]V, len(all)+len(own))
	maps.Copy(out, all)
	maps.Copy(out, own)
	return out
}

// maxCommand is the longest message a node takes, in bytes, within Home
// Assistant's 255 characters.
func (g *Gateway) maxCommand() int {
	ml := g.cfg.MaxLine
	if ml == 0 {
		ml = link.DefaultMaxLine
	}
	return min(255, ml-2)
}

// nodeConfigs returns node id's discovery configs, with sensors for the
// auto fields given.
func (g *Gateway) nodeConfigs(id string, auto []string) []haConfig {
	oid := nodeOID(id)
	slug := "tether_" + entitySlug(id)
	nd := g.cfg.Discovery.Nodes[id]
	name := nd.Name
	if name == "" {
		name = "Tether node " + id
	}
	dev := map[string]any{
		"identifiers":  []string{oid},
		"name":         name,
		"manufacturer": "Tether",
		"model":        "micropython-iot node",
		"via_device":   g.gatewayOID(),
	}
	if u := g.configurationURL(); u != "" {
		dev["configuration_url"] = u
	}
	if nd.Area != "" {
		dev["suggested_area"] = nd.Area
	}
	origin := g.haOrigin()
	gwOnly := []any{g.gatewayAvailability()}
	both := []any{g.gatewayAvailability(),
		map[string]any{"topic": g.topics.State(id), "payload_available": "up", "payload_not_available": "down"}}
	entity := func(p map[string]any, avail []any) map[string]any {
		p["device"] = dev
		p["origin"] = origin
		p["availability"] = avail
		if len(avail) > 1 {
			p["availability_mode"] = "all"
		}
		p["qos"] = 1
		return p
	}
	msgTopic := g.topics.Up(id)
	if g.retainLast() {
		msgTopic = g.topics.Last(id)
	}
	out := []haConfig{
		{Topic: g.haTopic("binary_sensor", oid, "connectivity"), Payload: entity(map[string]any{
			"name":              "Connectivity",
			"unique_id":         oid + "_connectivity",
			"default_entity_id": "binary_sensor." + slug + "_connectivity",
			"device_class":      "connectivity",
			"state_topic":       g.topics.State(id),
			"payload_on":        "up",
			"payload_off":       "down",
		}, gwOnly)},
		{Topic: g.haTopic("sensor", oid, "message"), Payload: entity(map[string]any{
			"name":                     "Message",
			"unique_id":                oid + "_message",
			"default_entity_id":        "sensor." + slug + "_message",
			"icon":                     "mdi:message-text",
			"state_topic":              msgTopic,
			"value_template":           "{{ value[:255] }}",
			"json_attributes_topic":    msgTopic,
			"json_attributes_template": "{{ value if value_json is defined and value_json is mapping else '{}' }}",
		}, both)},
		{Topic: g.haTopic("text", oid, "command"), Payload: entity(map[string]any{
			"name":              "Command",
			"unique_id":         oid + "_command",
			"default_entity_id": "text." + slug + "_command",
			"icon":              "mdi:console-line",
			"command_topic":     g.topics.Down(id),
			"retain":            false,
			"mode":              "text",
			"min":               0,
			"max":               g.maxCommand(),
		}, gwOnly)},
		{Topic: g.haTopic("notify", oid, "send"), Payload: entity(map[string]any{
			"name":              "Send",
			"unique_id":         oid + "_send",
			"default_entity_id": "notify." + slug + "_send",
			"command_topic":     g.topics.Down(id),
			"retain":            false,
		}, gwOnly)},
	}
	cmds := g.commandsOf(id)
	for _, c := range sortedKeys(cmds) {
		out = append(out, haConfig{Variable: true, Topic: g.haTopic("button", oid, "cmd_"+objectID(c)), Payload: entity(map[string]any{
			"name":              c,
			"unique_id":         oid + "_cmd_" + objectID(c),
			"default_entity_id": "button." + slug + "_" + entitySlug(c),
			"command_topic":     g.topics.Down(id),
			"payload_press":     cmds[c],
			"retain":            false,
		}, gwOnly)})
	}
	fields := g.fieldsOf(id)
	for _, f := range auto {
		if _, ok := fields[f]; !ok {
			if fields == nil {
				fields = make(map[string]FieldSensor)
			}
			fields[f] = FieldSensor{StateClass: "measurement"}
		}
	}
	for _, f := range sortedKeys(fields) {
		fs := fields[f]
		p := map[string]any{
			"name":              f,
			"unique_id":         oid + "_field_" + objectID(f),
			"default_entity_id": "sensor." + slug + "_" + entitySlug(f),
			"state_topic":       g.topics.Field(id, f),
		}
		if fs.Name != "" {
			p["name"] = fs.Name
		}
		if fs.DeviceClass != "" {
			p["device_class"] = fs.DeviceClass
		}
		if fs.Unit != "" {
			p["unit_of_measurement"] = fs.Unit
		}
		if sc := fs.stateClass(); sc != "" {
			p["state_class"] = sc
		}
		if fs.ValueTemplate != "" {
			p["value_template"] = fs.ValueTemplate
		}
		if fs.Icon != "" {
			p["icon"] = fs.Icon
		}
		if fs.Precision != nil {
			p["suggested_display_precision"] = *fs.Precision
		}
		out = append(out, haConfig{Variable: true, Topic: g.haTopic("sensor", oid, "field_"+objectID(f)), Payload: entity(p, both)})
	}
	return out
}

// stateClass is the state class the sensor gets (FieldSensor.StateClass).
func (f FieldSensor) stateClass() string {
	switch {
	case f.StateClass == "none":
		return ""
	case f.StateClass != "":
		return f.StateClass
	case slices.Contains(nonNumericClasses, f.DeviceClass), slices.Contains(meterClasses, f.DeviceClass):
		return ""
	case f.DeviceClass != "" || f.Unit != "":
		return "measurement"
	}
	return ""
}

// announceGateway publishes the gateway device's config (before any
// node's: they name it as their via_device).
func (g *Gateway) announceGateway(ctx context.Context) error {
	c := g.gatewayConfig()
	b, err := json.Marshal(c.Payload)
	if err != nil {
		return err
	}
	return g.publish(ctx, pubDiscovery, c.Topic, b, true)
}

// announce publishes node id's discovery configs (retained), so that it
// appears without any YAML on Home Assistant's side, and clears those it
// published before that are no longer configured.
func (g *Gateway) announce(ctx context.Context, id string) error {
	mu := g.ha.announceLock(id)
	mu.Lock()
	defer mu.Unlock()
	prev, err := g.st.Announced(id)
	if err != nil {
		return err
	}
	auto := g.ha.autoFields(id, prev.Auto)
	configs := g.nodeConfigs(id, auto)
	var now []string
	for _, c := range configs {
		if c.Variable {
			now = append(now, c.Topic)
		}
	}
	for f := range g.fieldsOf(id) {
		now = append(now, g.topics.Field(id, f))
	}
	for _, f := range auto {
		now = append(now, g.topics.Field(id, f))
	}
	slices.Sort(now)
	now = slices.Compact(now)
	// Recorded before they are published: a stop in between leaves no
	// retained topic that the next start does not know of.
	if both := union(prev.Topics, now); !slices.Equal(both, prev.Topics) || !slices.Equal(auto, prev.Auto) {
		if err := g.st.SetAnnounced(id, store.Announced{Topics: both, Auto: auto}); err != nil {
			return err
		}
	}
	if err := g.publishConfigs(ctx, configs); err != nil {
		return err
	}
	for _, t := range prev.Topics {
		if !slices.Contains(now, t) {
			if err := g.publish(ctx, pubDiscovery, t, nil, true); err != nil {
				return err
			}
		}
	}
	if !slices.Equal(now, prev.Topics) || !slices.Equal(auto, prev.Auto) {
		return g.st.SetAnnounced(id, store.Announced{Topics: now, Auto: auto})
	}
	return nil
}

// announceAuto records node id's auto fields all and publishes the
// configs of the new ones, added.
func (g *Gateway) announceAuto(ctx context.Context, id string, all, added []string) error {
	mu := g.ha.announceLock(id)
	mu.Lock()
	defer mu.Unlock()
	prev, err := g.st.Announced(id)
	if err != nil {
		return err
	}
	var topics []string
	var configs []haConfig
	for _, c := range g.nodeConfigs(id, all) {
		for _, f := range added {
			if c.Topic == g.haTopic("sensor", nodeOID(id), "field_"+objectID(f)) {
				configs = append(configs, c)
				topics = append(topics, c.Topic, g.topics.Field(id, f))
			}
		}
	}
	slices.Sort(topics)
	if err := g.st.SetAnnounced(id, store.Announced{Topics: union(prev.Topics, topics), Auto: all}); err != nil {
		return err
	}
	return g.publishConfigs(ctx, configs)
}

// publishConfigs publishes discovery configs, retained.
func (g *Gateway) publishConfigs(ctx context.Context, configs []haConfig) error {
	for _, c := range configs {
		b, err := json.Marshal(c.Payload)
		if err != nil {
			return err
		}
		if err := g.publish(ctx, pubDiscovery, c.Topic, b, true); err != nil {
			return err
		}
	}
	return nil
}

// union returns the sorted union of two sorted lists.
func union(a, b []string) []string {
	out := slices.Concat(a, b)
	slices.Sort(out)
	return slices.Compact(out)
}

// retainedTopics returns every retained topic the gateway may have
// published for node id: its state and last message, and, with
// discovery, its discovery configs and field values, those it recorded
// (store.Announced) included. Forgetting a node clears them all (see
// unpublish, forget.go).
func (g *Gateway) retainedTopics(id string) []string {
	topics := []string{g.topics.State(id), g.topics.Last(id)}
	if !g.cfg.Discovery.Enabled {
		return topics
	}
	prev, err := g.st.Announced(id)
	if err != nil {
		g.log.Warn("store: cannot read the node's Home Assistant topics; clearing the configured ones only", "node", id, "err", err)
	}
	for _, c := range g.nodeConfigs(id, prev.Auto) {
		topics = append(topics, c.Topic)
	}
	for f := range g.fieldsOf(id) {
		topics = append(topics, g.topics.Field(id, f))
	}
	topics = append(topics, prev.Topics...)
	for _, f := range prev.Auto {
		topics = append(topics, g.topics.Field(id, f))
	}
	slices.Sort(topics)
	return slices.Compact(topics)
}

// unpublished forgets what was recorded of node id's Home Assistant
// topics, once they are cleared.
func (g *Gateway) unpublished(id string) {
	g.ha.forget(id)
	if err := g.st.SetAnnounced(id, store.Announced{}); err != nil {
		g.log.Warn("store: cannot forget the node's Home Assistant topics", "node", id, "err", err)
	}
}

// fromHAStatus handles Home Assistant's status message: when it comes
// back online (after a restart, it may have lost what it knew), every
// discovery config and state is published again. It reports whether m
// was one.
func (g *Gateway) fromHAStatus(m bus.Message) bool {
	if !g.cfg.Discovery.Enabled || m.Topic != g.haStatusTopic() {
		return false
	}
	if strings.TrimSpace(string(m.Payload)) == "online" {
		g.log.Info("Home Assistant is online: publishing the discovery configs again")
		g.republishSoon()
	}
	return true
}
