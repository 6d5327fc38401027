package gateway

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// ConfigError is a config file that was rejected: where and why.
type ConfigError struct {
	File string // "" for a Config checked by Validate
	Line int    // 1-based; 0 if unknown
	Key  string // the invalid key (queue.max_messages), if known
	Msg  string
}

// Error returns "file:line: reason".
func (e *ConfigError) Error() string {
	if e.File == "" {
		return e.Msg
	}
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
	}
	return fmt.Sprintf("%s: %s", e.File, e.Msg)
}

// LoadConfig reads a YAML config file (see docs/GATEWAY.md). Unknown
// keys, values of the wrong type and invalid settings are rejected with a
// *ConfigError naming the line.
func LoadConfig(path string) (Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("config: %w", err)
	}
	return ParseConfig(path, b)
}

// ParseConfig parses the YAML text of a config file; name is used in
// errors.
func ParseConfig(name string, text []byte) (Config, error) {
	var c Config
	var root yaml.Node
	if err := yaml.Unmarshal(text, &root); err != nil {
		return c, yamlError(name, err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(text))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) {
		return c, keyError(&root, yamlError(name, err))
	}
	// A zero T written in the file is refused as the flag's is (a zero
	// Config.Timeout means the default: leave the key out for that).
	if c.Timeout == 0 {
		if n := mapValue(docRoot(&root), "timeout"); n != nil {
			return c, &ConfigError{File: name, Line: n.Line, Key: "timeout", Msg: "timeout: " + CheckTimeout(0).Error()}
		}
	}
	if _, err := c.withDefaults(); err != nil {
		var fe *fieldError
		if errors.As(err, &fe) {
			return c, &ConfigError{File: name, Line: lineOf(&root, fe.path), Key: fe.path, Msg: fe.Error()}
		}
		return c, &ConfigError{File: name, Msg: err.Error()}
	}
	return c, nil
}

// yamlError turns the yaml package's "yaml: line 3: ..." into a
// ConfigError.
func yamlError(name string, err error) error {
	msg := err.Error()
	msg = strings.TrimPrefix(msg, "yaml: ")
	msg = strings.TrimPrefix(msg, "unmarshal errors:\n")
	msg = strings.TrimSpace(msg)
	if first, _, ok := strings.Cut(msg, "\n"); ok {
		msg = first // the first error is enough to fix
	}
	var line int
	if rest, ok := strings.CutPrefix(msg, "line "); ok {
		if n, after, ok := strings.Cut(rest, ": "); ok {
			if v, err := strconv.Atoi(n); err == nil {
				line, msg = v, after
			}
		}
	}
	msg = strings.Replace(msg, "not found in type gateway.", "unknown in ", 1)
	return &ConfigError{File: name, Line: line, Msg: msg}
}

// lineOf finds the line of a dotted path such as "mqtt.broker" or
// "routes[1].to" in a parsed document; 0 if it is not there.
func lineOf(root *yaml.Node, path string) int {
	n := root
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	line := 0
	for part := range strings.SplitSeq(path, ".") {
		key, idx := part, -1
		if i := strings.IndexByte(part, '['); i >= 0 && strings.HasSuffix(part, "]") {
			key = part[:i]
			idx, _ = strconv.Atoi(part[i+1 : len(part)-1])
		}
		next := mapValue(n, key)
		if next == nil {
			return line
		}
		n, line = next, next.Line
		if idx >= 0 {
			if n.Kind != yaml.SequenceNode || idx >= len(n.Content) {
				return line
			}
			n = n.Content[idx]
			line = n.Line
		}
	}
	return line
}

func mapValue(n *yaml.Node, key string) *yaml.Node {
	if n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}

// UnmarshalYAML reads a duration such as 2s or 500ms. Its range is
// checked with the rest of the config (a negative one, too, is a
// duration, only not an allowed one).
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %q is not a duration: write it as 2s or 500ms", n.Line, n.Value)
	}
	*d = Duration(v)
	return nil
}

// keyError prefixes the message of a ConfigError that has a line with
// the key found on that line, if it does not name it already.
func keyError(root *yaml.Node, err error) error {
	var ce *ConfigError
	if !errors.As(err, &ce) || ce.Line == 0 {
		return err
	}
	if key := keyAtLine(docRoot(root), ce.Line, ""); key != "" && !strings.HasPrefix(ce.Msg, key) {
		ce.Msg = key + ": " + ce.Msg
	}
	return ce
}

// keyAtLine returns the dotted path of the value on line (routes[1].to,
// mqtt.broker), or "".
func keyAtLine(n *yaml.Node, line int, path string) string {
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			p := k.Value
			if path != "" {
				p = path + "." + k.Value
			}
			if (k.Line == line && v.Kind == yaml.ScalarNode) || (v.Kind == yaml.ScalarNode && v.Line == line) {
				return p
			}
			if got := keyAtLine(v, line, p); got != "" {
				return got
			}
		}
	case yaml.SequenceNode:
		for i, v := range n.Content {
			p := fmt.Sprintf("%s[%d]", path, i)
			if v.Kind == yaml.ScalarNode && v.Line == line {
				return p
			}
			if got := keyAtLine(v, line, p); got != "" {
				return got
			}
		}
	}
	return ""
}

// docRoot returns the top mapping of a parsed document.
func docRoot(root *yaml.Node) *yaml.Node {
	if root.Kind == yaml.DocumentNode && len(root.Content) > 0 {
		return root.Content[0]
	}
	return root
}

// MarshalYAML writes the duration as 2s.
func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }

// String returns the duration as Go writes it.
func (d Duration) String() string { return time.Duration(d).String() }
