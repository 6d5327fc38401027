package gateway

import (
	"fmt"
	"maps"
	"net/url"
	"slices"
	"sort"
	"strings"
	"unicode/utf8"
)

// HADiscovery is what the gateway tells Home Assistant beyond the
// defaults (docs/GATEWAY.md, "Home Assistant"): sensors made of the JSON
// fields of the nodes' messages, buttons that send commands, the
// devices' names and areas. It is part of DiscoveryConfig (the keys sit
// beside discovery.enabled in the file).
type HADiscovery struct {
	// ConfigurationURL is the status page's address that Home Assistant
	// links to from every device ("Visit"). Empty means derived from
	// web.addr (the host name when the page listens on every address);
	// "none" leaves it out.
	ConfigurationURL string `yaml:"configuration_url"`
	// Fields makes sensors of JSON fields of every node's messages, by
	// field name (a top-level key of a message that is a JSON object).
	Fields map[string]FieldSensor `yaml:"fields"`
	// Commands gives every node a button per entry: its name, and the
	// message it sends the node (with qos, queued if the node is down).
	Commands map[string]string `yaml:"commands"`
	// AutoFields makes a sensor of every numeric top-level field of a
	// node's JSON messages when it is first seen (state_class
	// measurement, no unit), at most MaxAutoFields per node.
	AutoFields bool `yaml:"auto_fields"`
	// Nodes configures nodes by ID: their device's name and area, and
	// fields and commands of their own (beside, or overriding by name,
	// the ones of every node).
	Nodes map[string]NodeDiscovery `yaml:"nodes"`
}

// NodeDiscovery is what Home Assistant is told of one node.
type NodeDiscovery struct {
	// Name is the device's name; empty means "Tether node <id>".
	Name string `yaml:"name"`
	// Area is the device's suggested area ("Kitchen").
	Area     string                 `yaml:"area"`
	Fields   map[string]FieldSensor `yaml:"fields"`
	Commands map[string]string      `yaml:"commands"`
}

// FieldSensor is a sensor made of one JSON field of a node's messages:
// the gateway publishes the field's value, retained, on
// <prefix>/<id>/field/<field> whenever a message carries it, and Home
// Assistant reads it there. Every key is optional: "temp: {}" is a
// sensor named temp.
type FieldSensor struct {
	// Name is the entity's name; empty means the field's name.
	Name string `yaml:"name"`
	// DeviceClass is one of Home Assistant's sensor device classes
	// (temperature, humidity, ...).
	DeviceClass string `yaml:"device_class"`
	// Unit is the unit of measurement (°C, %, ...): with DeviceClass it
	// must be one that Home Assistant allows for the class.
	Unit string `yaml:"unit_of_measurement"`
	// StateClass is measurement, measurement_angle, total or
	// total_increasing, for Home Assistant's long-term statistics; empty
	// means measurement for a numeric sensor (a unit, or a numeric device
	// class other than the meters' energy, gas, water and volume), none
	// otherwise; "none" means none.
	StateClass string `yaml:"state_class"`
	// ValueTemplate, if set, is Home Assistant's template applied to the
	// field's value ("{{ value | float / 10 }}").
	ValueTemplate string `yaml:"value_template"`
	// Icon is an mdi icon (mdi:thermometer).
	Icon string `yaml:"icon"`
	// Precision is Home Assistant's suggested display precision.
	Precision *int `yaml:"suggested_display_precision"`
}

// clone copies d's maps, so that the caller's config and the gateway's
// share none.
func (d HADiscovery) clone() HADiscovery {
	d.Fields = maps.Clone(d.Fields)
	d.Commands = maps.Clone(d.Commands)
	if d.Nodes != nil {
		nodes := make(map[string]NodeDiscovery, len(d.Nodes))
		for id, n := range d.Nodes {
			n.Fields = maps.Clone(n.Fields)
			n.Commands = maps.Clone(n.Commands)
			nodes[id] = n
		}
		d.Nodes = nodes
	}
	return d
}

// MaxAutoFields bounds the sensors discovery.auto_fields makes per node:
// a node (or anyone who can claim its ID) cannot flood Home Assistant
// with entities.
const MaxAutoFields = 16

// sensorDeviceClasses are Home Assistant's sensor device classes
// (homeassistant/components/sensor/const.py, SensorDeviceClass): a
// discovery config with another is refused by Home Assistant as a whole.
var sensorDeviceClasses = []string{
	"date", "enum", "timestamp", // not numeric
	"apparent_power", "aqi", "area", "atmospheric_pressure", "battery", "blood_glucose_concentration",
	"carbon_monoxide", "carbon_dioxide", "conductivity", "current", "data_rate", "data_size",
	"distance", "duration", "energy", "energy_distance", "energy_storage", "frequency", "gas",
	"humidity", "illuminance", "irradiance", "moisture", "monetary", "nitrogen_dioxide",
	"nitrogen_monoxide", "nitrous_oxide", "ozone", "ph", "pm1", "pm10", "pm25", "power_factor",
	"power", "precipitation", "precipitation_intensity", "pressure", "reactive_power",
	"signal_strength", "sound_pressure", "speed", "sulphur_dioxide", "temperature",
	"temperature_delta", "volatile_organic_compounds", "volatile_organic_compounds_parts",
	"voltage", "volume", "volume_storage", "volume_flow_rate", "water", "weight",
	"wind_direction", "wind_speed",
}

// nonNumericClasses take no unit and no state class.
var nonNumericClasses = []string{"date", "enum", "timestamp"}

// meterClasses are totals, not measurements: no default state class.
var meterClasses = []string{"energy", "gas", "water", "volume"}

// sensorStateClasses are Home Assistant's (SensorStateClass).
var sensorStateClasses = []string{"measurement", "measurement_angle", "total", "total_increasing"}

// classUnits are the units Home Assistant allows for the device classes
// whose units are few and stable (DEVICE_CLASS_UNITS): a sensor with
// another unit is flagged by Home Assistant as invalid. "" is no unit.
var classUnits = map[string][]string{
	"temperature":       {"°C", "°F", "K"},
	"temperature_delta": {"°C", "°F", "K"},
	"humidity":          {"%"},
	"battery":           {"%"},
	"moisture":          {"%"},
	"power_factor":      {"%", ""},
	"illuminance":       {"lx"},
	"carbon_dioxide":    {"ppm"},
	"carbon_monoxide":   {"ppm"},
	"pm1":               {"µg/m³"},
	"pm10":              {"µg/m³"},
	"pm25":              {"µg/m³"},
	"voltage":           {"V", "mV", "µV", "kV", "MV"},
	"current":           {"A", "mA"},
	"signal_strength":   {"dB", "dBm"},
	"aqi":               {""},
	"ph":                {""},
}

// validateDiscovery checks the discovery keys.
func (c Config) validateDiscovery() error {
	d := c.Discovery
	extra := len(d.Fields) > 0 || len(d.Commands) > 0 || d.AutoFields || len(d.Nodes) > 0 || d.ConfigurationURL != ""
	if extra && !c.Discovery.Enabled {
		return bad("discovery", "fields, commands, auto_fields, nodes and configuration_url are for Home Assistant: they need discovery.enabled (or --discovery)")
	}
	if u := d.ConfigurationURL; u != "" && u != "none" {
		p, err := url.Parse(u)
		if err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
			return bad("discovery.configuration_url", "%q: write the status page's address, http://host:8080/ (or none)", u)
		}
	}
	if err := checkFields("discovery.fields", d.Fields); err != nil {
		return err
	}
	if err := checkCommands("discovery.commands", d.Commands, c.MaxLine); err != nil {
		return err
	}
	for _, id := range sortedKeys(d.Nodes) {
		n := d.Nodes[id]
		p := "discovery.nodes." + id
		if err := checkID(id); err != nil {
			return bad(p, "%v", err)
		}
		if err := checkLabel(n.Name); err != nil {
			return bad(p+".name", "%v", err)
		}
		if err := checkLabel(n.Area); err != nil {
			return bad(p+".area", "%v", err)
		}
		if err := checkFields(p+".fields", n.Fields); err != nil {
			return err
		}
		if err := checkCommands(p+".commands", n.Commands, c.MaxLine); err != nil {
			return err
		}
	}
	return nil
}

func checkFields(path string, fields map[string]FieldSensor) error {
	for _, name := range sortedKeys(fields) {
		f := fields[name]
		p := path + "." + name
		if err := checkLabel(name); err != nil || name == "" {
			return bad(p, "a field name is 1 to 64 bytes of visible characters")
		}
		if err := checkLabel(f.Name); err != nil {
			return bad(p+".name", "%v", err)
		}
		if f.DeviceClass != "" && !slices.Contains(sensorDeviceClasses, f.DeviceClass) {
			return bad(p+".device_class", "%q is not a Home Assistant sensor device class (temperature, humidity, power, ...: docs/GATEWAY.md)", f.DeviceClass)
		}
		if slices.Contains(nonNumericClasses, f.DeviceClass) {
			if f.DeviceClass == "enum" {
				return bad(p+".device_class", "enum sensors need a list of options: not supported here; leave device_class out")
			}
			if f.Unit != "" || (f.StateClass != "" && f.StateClass != "none") {
				return bad(p, "device class %s takes no unit_of_measurement and no state_class", f.DeviceClass)
			}
		}
		if units, ok := classUnits[f.DeviceClass]; ok && !slices.Contains(units, f.Unit) {
			return bad(p+".unit_of_measurement", "%q is not a unit Home Assistant allows for %s: use one of %s", f.Unit, f.DeviceClass, quoteList(units))
		}
		if s := f.StateClass; s != "" && s != "none" && !slices.Contains(sensorStateClasses, s) {
			return bad(p+".state_class", "%q: write measurement, measurement_angle, total, total_increasing or none", s)
		}
		if f.Precision != nil && *f.Precision < 0 {
			return bad(p+".suggested_display_precision", "%d: must be 0 or more", *f.Precision)
		}
		if f.Icon != "" && !strings.HasPrefix(f.Icon, "mdi:") {
			return bad(p+".icon", "%q: write an mdi icon, mdi:thermometer", f.Icon)
		}
		for _, s := range []string{f.Unit, f.ValueTemplate} {
			if !utf8.ValidString(s) || strings.ContainsAny(s, "\n\r") {
				return bad(p, "unit_of_measurement and value_template are one line of UTF-8")
			}
		}
	}
	return nil
}

func checkCommands(path string, cmds map[string]string, maxLine int) error {
	if maxLine == 0 {
		maxLine = 4096
	}
	for _, name := range sortedKeys(cmds) {
		p := path + "." + name
		if err := checkLabel(name); err != nil || name == "" {
			return bad(p, "a command's name is 1 to 64 bytes of visible characters")
		}
		msg := cmds[name]
		switch {
		case msg == "":
			return bad(p, "the message the button sends is empty")
		case strings.ContainsAny(msg, "\n\r"), !utf8.ValidString(msg):
			return bad(p, "the message the button sends must be one line of UTF-8")
		case len(msg)+2 > maxLine:
			return bad(p, "the message the button sends is longer than max_line allows (%d bytes)", maxLine-2)
		}
	}
	return nil
}

// checkLabel is the rule of names shown in Home Assistant: empty, or 1
// to 64 bytes of visible characters (as node IDs).
func checkLabel(s string) error {
	if s == "" {
		return nil
	}
	return checkID(s)
}

func quoteList(xs []string) string {
	q := make([]string, len(xs))
	for i, x := range xs {
		q[i] = fmt.Sprintf("%q", x)
	}
	return strings.Join(q, ", ")
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
