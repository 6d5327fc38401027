package legacy

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
)

// Directions of a transcript data event.
const (
	C2S = "c2s" // node to server
	S2C = "s2c" // server to node
)

// Event is one line of a transcript recorded by the fault-injecting proxy
// between the legacy peers (testdata/transcripts/README.md). Ev is "open",
// "close" or "eof" for a connection event and empty for data.
type Event struct {
	T       float64 `json:"t"`       // seconds since the proxy started
	Ev      string  `json:"ev"`      // "open", "close", "eof", or "" for data
	Conn    int     `json:"conn"`    // connection number, from 1
	Dir     string  `json:"dir"`     // C2S or S2C, for data and "eof"
	Data    string  `json:"data"`    // the bytes of one socket read
	Dropped bool    `json:"dropped"` // the proxy discarded Data (a fault)
	RST     bool    `json:"rst"`     // "close" with a RST rather than a FIN
}

// IsData reports whether e carries bytes.
func (e Event) IsData() bool { return e.Ev == "" }

// LoadTranscript reads a JSONL transcript. It fails on unknown fields and on
// events that are not one of the documented kinds.
func LoadTranscript(path string) ([]Event, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("legacy: load transcript: %w", err)
	}
	var evs []Event
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 1<<24)
	for n := 1; sc.Scan(); n++ {
		if len(bytes.TrimSpace(sc.Bytes())) == 0 {
			continue
		}
		var e Event
		dec := json.NewDecoder(bytes.NewReader(sc.Bytes()))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&e); err != nil {
			return nil, fmt.Errorf("legacy: load transcript %s:%d: %w", path, n, err)
		}
		if err := e.check(); err != nil {
			return nil, fmt.Errorf("legacy: load transcript %s:%d: %w", path, n, err)
		}
		evs = append(evs, e)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("legacy: load transcript %s: %w", path, err)
	}
	return evs, nil
}

func (e Event) check() error {
	if e.Conn < 1 {
		return errors.New("conn must be at least 1")
	}
	switch e.Ev {
	case "":
		if e.Dir != C2S && e.Dir != S2C {
			return fmt.Errorf("data event with dir %q", e.Dir)
		}
	case "eof":
		if e.Dir != C2S && e.Dir != S2C {
			return fmt.Errorf("eof event with dir %q", e.Dir)
		}
	case "open", "close":
	default:
		return fmt.Errorf("unknown event %q", e.Ev)
	}
	return nil
}

// Conns returns the connection numbers of evs in order of first appearance.
func Conns(evs []Event) []int {
	var out []int
	seen := make(map[int]bool)
	for _, e := range evs {
		if !seen[e.Conn] {
			seen[e.Conn] = true
			out = append(out, e.Conn)
		}
	}
	return out
}

// Chunks returns the data events of connection connNum in direction dir
// that reached the other side (not Dropped), in order.
func Chunks(evs []Event, connNum int, dir string) []Event {
	var out []Event
	for _, e := range evs {
		if e.IsData() && e.Conn == connNum && e.Dir == dir && !e.Dropped {
			out = append(out, e)
		}
	}
	return out
}

// Lines re-assembles the chunks of Chunks(evs, connNum, dir) into lines
// without their LF; partial is what followed the last LF (a line cut by the
// end of the connection).
func Lines(evs []Event, connNum int, dir string) (lines []string, partial string) {
	var b strings.Builder
	for _, e := range Chunks(evs, connNum, dir) {
		b.WriteString(e.Data)
	}
	l := strings.Split(b.String(), "\n")
	return l[:len(l)-1], l[len(l)-1]
}

// LineKind is the kind of a line after the handshake.
type LineKind int

// The line kinds of internal/wire/spec.md ("Lines").
const (
	Keepalive LineKind = iota + 1 // an empty line
	Ack                           // exactly two lowercase hex digits
	Message                       // two lowercase hex digits and a payload
)

func (k LineKind) String() string {
	switch k {
	case Keepalive:
		return "keepalive"
	case Ack:
		return "ack"
	case Message:
		return "message"
	}
	return fmt.Sprintf("LineKind(%d)", int(k))
}

// Line is a parsed line.
type Line struct {
	Kind    LineKind
	ID      int    // for Ack and Message
	Payload string // for Message
}

// ParseLine parses one line, without its LF, in the strict form of
// internal/wire/spec.md: empty, or an id of two lowercase hex digits, alone or
// followed by a payload. It is stricter than the legacy readers, which
// take whatever Python's int(s, 16) accepts.
func ParseLine(s string) (Line, error) {
	if s == "" {
		return Line{Kind: Keepalive}, nil
	}
	if strings.Contains(s, "\n") {
		return Line{}, fmt.Errorf("legacy: line %q holds a LF", s)
	}
	if len(s) < 2 || !isLowerHex(s[0]) || !isLowerHex(s[1]) {
		return Line{}, fmt.Errorf("legacy: line %q does not start with two lowercase hex digits", s)
	}
	id, _ := parseMid(s[:2])
	if len(s) == 2 {
		return Line{Kind: Ack, ID: id}, nil
	}
	return Line{Kind: Message, ID: id, Payload: s[2:]}, nil
}

func isLowerHex(c byte) bool { return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' }
