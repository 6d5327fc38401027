package gateway_test

import (
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"
)

// Home Assistant's MQTT discovery schema, for the components the gateway
// publishes, encoded from homeassistant/components/mqtt (read with the
// search tool; files and what each rule comes from below):
//
//   - schemas.py / config.py: MQTT_AVAILABILITY_SCHEMA (availability_topic
//     and availability exclusive; availability a list of {topic required,
//     payload_available, payload_not_available, value_template};
//     availability_mode all|any|latest), MQTT_ENTITY_DEVICE_INFO_SCHEMA
//     (identifiers, connections, manufacturer, model, model_id, name,
//     hw_version, serial_number, sw_version, via_device, suggested_area,
//     configuration_url; identifiers or connections required),
//     MQTT_ORIGIN_INFO_SCHEMA (name required, sw_version, support_url),
//     MQTT_ENTITY_COMMON_SCHEMA (device, origin, enabled_by_default,
//     entity_category, icon, json_attributes_topic,
//     json_attributes_template, object_id, unique_id, and since 2025.10
//     default_entity_id: object_id is deprecated, ignored since 2026.4,
//     so it is refused here), MQTT_BASE_SCHEMA (qos 0-2, encoding,
//     group), MQTT_RO_SCHEMA (state_topic required, value_template),
//     MQTT_RW_SCHEMA (command_topic required, optimistic, retain,
//     state_topic);
//   - sensor.py: device_class (SensorDeviceClass), expire_after,
//     force_update, last_reset_value_template (state_class total only),
//     name, options (enum only, no unit or state class),
//     suggested_display_precision, state_class (SensorStateClass),
//     unit_of_measurement;
//   - binary_sensor.py: device_class (BinarySensorDeviceClass),
//     expire_after, force_update, name, off_delay, payload_on, payload_off;
//   - text.py: command_template, name, max (<= 255), min (< max), mode
//     text|password, pattern (a regex), value_template;
//   - notify.py (the entity platform): command_template, command_topic
//     required, name, retain;
//   - button.py: command_template, command_topic required, device_class
//     identify|restart|update, name, payload_press, retain;
//   - util.py: valid_topic (UTF-8, 1-65535 bytes, no NUL, no control
//     characters U+0000-U+001F and U+007F-U+009F, no non-characters),
//     valid_subscribe_topic (+ and # whole levels, # last),
//     valid_publish_topic (no wildcard);
//   - discovery.py: the config topic
//     <prefix>/<component>/[<node_id>/]<object_id>/config, IDs
//     [a-zA-Z0-9_-];
//   - homeassistant/core.py: valid_entity_id for default_entity_id
//     (<domain>.<object_id>, lower-case letters, digits and single
//     underscores, the domain being the component's).
//
// Home Assistant drops keys it does not know (REMOVE_EXTRA) without a
// word: here an unknown key is an error, as it would be a silent bug.

// haKind is a value type of the schema.
type haKind int

const (
	hString haKind = iota
	hStringOrNull
	hBool
	hPositiveInt // cv.positive_int: an int >= 0
	hQoS
	hSubTopic
	hPubTopic
	hTemplate
	hIcon
	hEntityCategory
	hDevice
	hOrigin
	hAvailabilityList
	hAvailabilityMode
	hDefaultEntityID
	hRegex
	hList
)

// haComponent is one component's schema: its keys, which are required,
// and its checks across keys.
type haComponent struct {
	keys     map[string]haKind
	required []string
	enums    map[string][]string // allowed values of some string keys
	check    func(p map[string]any) error
}

var (
	availabilityKeys = map[string]haKind{
		"availability_topic":    hSubTopic,
		"availability_template": hTemplate,
		"payload_available":     hString,
		"payload_not_available": hString,
		"availability_mode":     hAvailabilityMode,
		"availability":          hAvailabilityList,
	}
	commonKeys = map[string]haKind{
		"device":                   hDevice,
		"origin":                   hOrigin,
		"enabled_by_default":       hBool,
		"entity_category":          hEntityCategory,
		"icon":                     hIcon,
		"json_attributes_topic":    hSubTopic,
		"json_attributes_template": hTemplate,
		"unique_id":                hString,
		"default_entity_id":        hDefaultEntityID,
		"qos":                      hQoS,
		"encoding":                 hString,
		"group":                    hList,
	}
	roKeys = map[string]haKind{"state_topic": hSubTopic, "value_template": hTemplate}
	rwKeys = map[string]haKind{"command_topic": hPubTopic, "optimistic": hBool, "retain": hBool, "state_topic": hSubTopic}

	sensorDeviceClasses = []string{"date", "enum", "timestamp", "apparent_power", "aqi", "area", "atmospheric_pressure",
		"battery", "blood_glucose_concentration", "carbon_monoxide", "carbon_dioxide", "conductivity", "current",
		"data_rate", "data_size", "distance", "duration", "energy", "energy_distance", "energy_storage", "frequency",
		"gas", "humidity", "illuminance", "irradiance", "moisture", "monetary", "nitrogen_dioxide", "nitrogen_monoxide",
		"nitrous_oxide", "ozone", "ph", "pm1", "pm10", "pm25", "power_factor", "power", "precipitation",
		"precipitation_intensity", "pressure", "reactive_power", "signal_strength", "sound_pressure", "speed",
		"sulphur_dioxide", "temperature", "temperature_delta", "volatile_organic_compounds",
		"volatile_organic_compounds_parts", "voltage", "volume", "volume_storage", "volume_flow_rate", "water",
		"weight", "wind_direction", "wind_speed"}
	binarySensorDeviceClasses = []string{"battery", "battery_charging", "carbon_monoxide", "cold", "connectivity",
		"door", "garage_door", "gas", "heat", "light", "lock", "moisture", "motion", "moving", "occupancy", "opening",
		"plug", "power", "presence", "problem", "running", "safety", "smoke", "sound", "tamper", "update", "vibration",
		"window"}
)

func mergeKeys(ms ...map[string]haKind) map[string]haKind {
	out := map[string]haKind{}
	for _, m := range ms {
		for k, v := range m {
			out[k] = v
		}
	}
	return out
}

var haSchema = map[string]haComponent{
	"sensor": {
		keys: mergeKeys(availabilityKeys, commonKeys, roKeys, map[string]haKind{
			"device_class": hStringOrNull, "expire_after": hPositiveInt, "force_update": hBool,
			"last_reset_value_template": hTemplate, "name": hStringOrNull, "options": hList,
			"suggested_display_precision": hPositiveInt, "state_class": hStringOrNull, "unit_of_measurement": hStringOrNull,
		}),
		required: []string{"state_topic"},
		enums: map[string][]string{
			"device_class": sensorDeviceClasses,
			"state_class":  {"measurement", "measurement_angle", "total", "total_increasing"},
		},
		check: func(p map[string]any) error {
			if _, ok := p["last_reset_value_template"]; ok && p["state_class"] != "total" {
				return fmt.Errorf("last_reset_value_template needs state_class total")
			}
			if _, ok := p["options"]; ok {
				if p["device_class"] != "enum" || p["state_class"] != nil || p["unit_of_measurement"] != nil {
					return fmt.Errorf("options need device_class enum, and no state_class or unit_of_measurement")
				}
			}
			if dc, _ := p["device_class"].(string); slices.Contains([]string{"date", "timestamp", "enum"}, dc) {
				if p["state_class"] != nil || p["unit_of_measurement"] != nil {
					return fmt.Errorf("device_class %s takes no state_class or unit_of_measurement", dc)
				}
			}
			return nil
		},
	},
	"binary_sensor": {
		keys: mergeKeys(availabilityKeys, commonKeys, roKeys, map[string]haKind{
			"device_class": hStringOrNull, "expire_after": hPositiveInt, "force_update": hBool,
			"name": hStringOrNull, "off_delay": hPositiveInt, "payload_off": hString, "payload_on": hString,
		}),
		required: []string{"state_topic"},
		enums:    map[string][]string{"device_class": binarySensorDeviceClasses},
	},
	"text": {
		keys: mergeKeys(availabilityKeys, commonKeys, rwKeys, map[string]haKind{
			"command_template": hTemplate, "name": hStringOrNull, "max": hPositiveInt, "min": hPositiveInt,
			"mode": hString, "pattern": hRegex, "value_template": hTemplate,
		}),
		required: []string{"command_topic"},
		enums:    map[string][]string{"mode": {"text", "password"}},
		check: func(p map[string]any) error {
			lo, hi := 0.0, 255.0
			if v, ok := p["min"].(float64); ok {
				lo = v
			}
			if v, ok := p["max"].(float64); ok {
				hi = v
			}
			if lo >= hi {
				return fmt.Errorf("text length min %v must be below max %v", lo, hi)
			}
			if hi > 255 {
				return fmt.Errorf("max text length %v must be <= 255", hi)
			}
			return nil
		},
	},
	"notify": {
		keys: mergeKeys(availabilityKeys, commonKeys, map[string]haKind{
			"command_template": hTemplate, "command_topic": hPubTopic, "name": hStringOrNull, "retain": hBool,
		}),
		required: []string{"command_topic"},
	},
	"button": {
		keys: mergeKeys(availabilityKeys, commonKeys, map[string]haKind{
			"command_template": hTemplate, "command_topic": hPubTopic, "device_class": hStringOrNull,
			"name": hStringOrNull, "payload_press": hString, "retain": hBool,
		}),
		required: []string{"command_topic"},
		enums:    map[string][]string{"device_class": {"identify", "restart", "update"}},
	},
}

// haTopicRe is discovery.py's topic matcher (after the prefix).
var haTopicRe = regexp.MustCompile(`^(?P<component>\w+)/(?:(?P<node_id>[a-zA-Z0-9_-]+)/)?(?P<object_id>[a-zA-Z0-9_-]+)/config$`)

// validateDiscovery checks one discovery config against the schema: its
// topic, its payload's keys, their types and the rules across keys.
func validateDiscovery(prefix, topic string, p map[string]any) error {
	rest, ok := strings.CutPrefix(topic, prefix+"/")
	m := haTopicRe.FindStringSubmatch(rest)
	if !ok || m == nil {
		return fmt.Errorf("topic %q is not <%s>/<component>/[<node_id>/]<object_id>/config", topic, prefix)
	}
	comp := m[1]
	s, ok := haSchema[comp]
	if !ok {
		return fmt.Errorf("component %q: no schema here (sensor, binary_sensor, text, notify, button)", comp)
	}
	if _, ok := p["object_id"]; ok {
		return fmt.Errorf("object_id: deprecated in Home Assistant 2025.10, ignored since 2026.4: use default_entity_id")
	}
	for _, k := range s.required {
		if _, ok := p[k]; !ok {
			return fmt.Errorf("%s: required key %s missing", comp, k)
		}
	}
	if _, a := p["availability"]; a {
		if _, b := p["availability_topic"]; b {
			return fmt.Errorf("availability and availability_topic are exclusive")
		}
	}
	for k, v := range p {
		kind, ok := s.keys[k]
		if !ok {
			return fmt.Errorf("%s: unknown key %q (Home Assistant would drop it)", comp, k)
		}
		if err := checkKind(kind, v, comp); err != nil {
			return fmt.Errorf("%s.%s: %v", comp, k, err)
		}
		if allowed, ok := s.enums[k]; ok && v != nil && !slices.Contains(allowed, v.(string)) {
			return fmt.Errorf("%s.%s: %q not one of %v", comp, k, v, allowed)
		}
	}
	if s.check != nil {
		if err := s.check(p); err != nil {
			return fmt.Errorf("%s: %v", comp, err)
		}
	}
	return nil
}

func checkKind(kind haKind, v any, comp string) error {
	str, isStr := v.(string)
	switch kind {
	case hString:
		if !isStr {
			return fmt.Errorf("%v: not a string", v)
		}
	case hStringOrNull:
		if v != nil && !isStr {
			return fmt.Errorf("%v: not a string", v)
		}
	case hBool:
		if _, ok := v.(bool); !ok {
			return fmt.Errorf("%v: not a boolean", v)
		}
	case hPositiveInt:
		f, ok := v.(float64)
		if !ok || f < 0 || f != float64(int64(f)) {
			return fmt.Errorf("%v: not an integer >= 0", v)
		}
	case hQoS:
		if f, ok := v.(float64); !ok || (f != 0 && f != 1 && f != 2) {
			return fmt.Errorf("%v: not 0, 1 or 2", v)
		}
	case hSubTopic:
		return checkTopic(str, isStr, true)
	case hPubTopic:
		return checkTopic(str, isStr, false)
	case hTemplate:
		if !isStr || !strings.Contains(str, "{{") {
			return fmt.Errorf("%v: not a template", v)
		}
	case hIcon:
		if !isStr || !strings.Contains(str, ":") {
			return fmt.Errorf(`%v: icons are "prefix:name"`, v)
		}
	case hEntityCategory:
		if str != "config" && str != "diagnostic" {
			return fmt.Errorf("%v: config or diagnostic", v)
		}
	case hAvailabilityMode:
		if !slices.Contains([]string{"all", "any", "latest"}, str) {
			return fmt.Errorf("%v: all, any or latest", v)
		}
	case hRegex:
		if _, err := regexp.Compile(str); !isStr || err != nil {
			return fmt.Errorf("%v: not a regex", v)
		}
	case hList:
		if _, ok := v.([]any); !ok {
			return fmt.Errorf("%v: not a list", v)
		}
	case hDefaultEntityID:
		if !isStr || !validEntityID(str) {
			return fmt.Errorf("%q: not a valid entity ID", v)
		}
		if d, _, _ := strings.Cut(str, "."); d != comp {
			return fmt.Errorf("%q: the domain must be %s", v, comp)
		}
	case hAvailabilityList:
		list, ok := v.([]any)
		if !ok || len(list) == 0 {
			return fmt.Errorf("%v: not a list of topics", v)
		}
		for _, e := range list {
			m, ok := e.(map[string]any)
			if !ok {
				return fmt.Errorf("%v: not a mapping", e)
			}
			if _, ok := m["topic"]; !ok {
				return fmt.Errorf("%v: topic required", e)
			}
			for k, ev := range m {
				kinds := map[string]haKind{"topic": hSubTopic, "payload_available": hString, "payload_not_available": hString, "value_template": hTemplate}
				kd, ok := kinds[k]
				if !ok {
					return fmt.Errorf("availability: unknown key %q", k)
				}
				if err := checkKind(kd, ev, comp); err != nil {
					return fmt.Errorf("availability.%s: %v", k, err)
				}
			}
		}
	case hDevice:
		m, ok := v.(map[string]any)
		if !ok {
			return fmt.Errorf("not a mapping")
		}
		ids, _ := m["identifiers"].([]any)
		conns, _ := m["connections"].([]any)
		if len(ids) == 0 && len(conns) == 0 {
			return fmt.Errorf("device must have at least one identifying value in 'identifiers' and/or 'connections'")
		}
		for k, dv := range m {
			switch k {
			case "identifiers", "connections":
				for _, x := range dv.([]any) {
					if k == "identifiers" {
						if _, ok := x.(string); !ok {
							return fmt.Errorf("identifiers: %v not a string", x)
						}
					} else if pair, ok := x.([]any); !ok || len(pair) != 2 {
						return fmt.Errorf("connections: %v not a pair", x)
					}
				}
			case "manufacturer", "model", "model_id", "name", "hw_version", "serial_number", "sw_version", "via_device", "suggested_area":
				if _, ok := dv.(string); !ok {
					return fmt.Errorf("device.%s: not a string", k)
				}
			case "configuration_url":
				if err := checkURL(dv, true); err != nil {
					return fmt.Errorf("device.configuration_url: %v", err)
				}
			default:
				return fmt.Errorf("device: unknown key %q", k)
			}
		}
	case hOrigin:
		m, ok := v.(map[string]any)
		if !ok {
			return fmt.Errorf("not a mapping")
		}
		if _, ok := m["name"].(string); !ok {
			return fmt.Errorf("origin.name required")
		}
		for k, ov := range m {
			switch k {
			case "name", "sw_version":
				if _, ok := ov.(string); !ok {
					return fmt.Errorf("origin.%s: not a string", k)
				}
			case "support_url":
				if err := checkURL(ov, true); err != nil {
					return fmt.Errorf("origin.support_url: %v", err)
				}
			default:
				return fmt.Errorf("origin: unknown key %q", k)
			}
		}
	}
	return nil
}

// checkTopic is util.py's valid_subscribe_topic (sub) or
// valid_publish_topic.
func checkTopic(t string, isStr, sub bool) error {
	if !isStr || t == "" || len(t) > 65535 || !utf8.ValidString(t) {
		return fmt.Errorf("%q: not a topic", t)
	}
	for _, r := range t {
		if r <= 0x1f || (r >= 0x7f && r <= 0x9f) || (r >= 0xfdd0 && r <= 0xfdef) || r&0xfffe == 0xfffe {
			return fmt.Errorf("%q: control or non-character %U", t, r)
		}
	}
	levels := strings.Split(t, "/")
	for i, l := range levels {
		if strings.ContainsAny(l, "+#") {
			if !sub {
				return fmt.Errorf("%q: a publish topic has no wildcard", t)
			}
			if (l != "+" && l != "#") || (l == "#" && i != len(levels)-1) {
				return fmt.Errorf("%q: misplaced wildcard", t)
			}
		}
	}
	return nil
}

// checkURL is cv.configuration_url: http, https or homeassistant.
func checkURL(v any, _ bool) error {
	s, ok := v.(string)
	if !ok {
		return fmt.Errorf("%v: not a string", v)
	}
	u, err := url.Parse(s)
	if err != nil || !slices.Contains([]string{"http", "https", "homeassistant"}, u.Scheme) || (u.Scheme != "homeassistant" && u.Host == "") {
		return fmt.Errorf("%q: invalid url", s)
	}
	return nil
}

// validEntityID is homeassistant.core.valid_entity_id: <domain>.<object
// id>, each [0-9a-z_] not starting or ending with '_', and no "__"
// anywhere after the first character.
func validEntityID(s string) bool {
	d, o, ok := strings.Cut(s, ".")
	slug := regexp.MustCompile(`^[0-9a-z_]+$`)
	part := func(p string) bool {
		return slug.MatchString(p) && !strings.HasPrefix(p, "_") && !strings.HasSuffix(p, "_")
	}
	return ok && part(d) && part(o) && !strings.Contains(s[1:], "__")
}
