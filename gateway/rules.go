package gateway

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/tether-iot/tether/internal/wire"
	"github.com/tether-iot/tether/link"
)

// The ranges of the config's values (issue 10.7): one set of rules for
// the config file, the flags of tether serve (which fill a Config) and a
// Config built in code, checked by New at start.
const (
	// MinTimeout and MaxTimeout bound T. Below 50 ms a keepalive every
	// T/4 is a busy loop; above an hour a dead node is noticed too late
	// to matter.
	MinTimeout = 50 * time.Millisecond
	MaxTimeout = time.Hour
	// MinMaxLine and MaxMaxLine bound max_line: a line holds at least a
	// two-digit id and a few bytes, and at most 1 MiB (the links hold
	// lines in memory, and MicroPython nodes far less).
	MinMaxLine = 8
	MaxMaxLine = 1 << 20
)

// CheckTimeout reports whether d is a T that makes sense (zero is not:
// leave the value out for the default); the error says what is allowed.
func CheckTimeout(d time.Duration) error {
	if d < MinTimeout || d > MaxTimeout {
		return fmt.Errorf("%v: T must be between %v and %v (a Go duration: 2s, 500ms); leave it out for the default %v",
			d, MinTimeout, MaxTimeout, link.DefaultTimeout)
	}
	return nil
}

// checkMaxLine is the rule of max_line; 0 means the default.
func checkMaxLine(n int) error {
	if n != 0 && (n < MinMaxLine || n > MaxMaxLine) {
		return fmt.Errorf("%d: must be between %d and %d bytes (the id included); leave it out for the default %d",
			n, MinMaxLine, MaxMaxLine, link.DefaultMaxLine)
	}
	return nil
}

// checkBound is the rule of the queue's bounds that take -1 for none.
func checkBound(n int64, def int64) error {
	if n < -1 {
		return fmt.Errorf("%d: must be -1 (no bound), 0 (the default, %d) or a positive number", n, def)
	}
	return nil
}

// checkAddr is the rule of listen addresses: host:port or :port, port
// 0-65535 (0: any free port); none, if allowed, means no listener.
func checkAddr(addr string, noneOK bool) error {
	if noneOK && addr == "none" {
		return nil
	}
	_, port, err := net.SplitHostPort(addr)
	if err == nil {
		_, err = strconv.ParseUint(port, 10, 16)
	}
	if err != nil {
		none := ""
		if noneOK {
			none = ", or none"
		}
		return fmt.Errorf("%q is not a TCP address: write host:port or :port, e.g. 127.0.0.1:1883 or :8123 (port 0-65535)%s", addr, none)
	}
	return nil
}

// checkName is the rule of the gateway's name: visible characters (as a
// node ID), and no MQTT separator or wildcard.
func checkName(name string) error {
	if err := wire.CheckNodeID(name, 64); err != nil {
		return fmt.Errorf("%s: must be 1 to 64 visible characters: %v", strconv.QuoteToASCII(name), err)
	}
	return nil
}

// validateRanges checks the values of c (defaults filled in) against
// the rules above.
func (c Config) validateRanges() error {
	if c.Timeout != 0 {
		if err := CheckTimeout(time.Duration(c.Timeout)); err != nil {
			return bad("timeout", "%v", err)
		}
	}
	if err := checkMaxLine(c.MaxLine); err != nil {
		return bad("max_line", "%v", err)
	}
	if err := checkName(c.Name); err != nil {
		return bad("name", "%v", err)
	}
	for _, b := range []struct {
		key     string
		n, dflt int64
	}{
		{"queue.max_messages", int64(c.Queue.MaxMessages), DefaultQueueMessages},
		{"queue.max_total_bytes", c.Queue.MaxTotalBytes, DefaultQueueTotalBytes},
		{"queue.max_up_messages", int64(c.Queue.MaxUpMessages), DefaultUpMessages},
		{"queue.max_nodes", int64(c.Queue.MaxNodes), DefaultQueueNodes},
		{"nodes.max", int64(c.Nodes.Max), DefaultMaxNodes},
	} {
		if err := checkBound(b.n, b.dflt); err != nil {
			return bad(b.key, "%v", err)
		}
	}
	for _, a := range []struct {
		key, addr string
		noneOK    bool
	}{
		{"listen", c.Listen, false},
		{"mqtt.listen", c.MQTT.Listen, true},
		{"web.addr", c.Web.Addr, false},
	} {
		if err := checkAddr(a.addr, a.noneOK); err != nil {
			return bad(a.key, "%v", err)
		}
	}
	if err := checkForgetAfter(time.Duration(c.Nodes.ForgetAfter), time.Duration(c.Timeout)); err != nil {
		return bad("nodes.forget_after", "%v", err)
	}
	if err := checkPrefix(c.Discovery.Prefix); err != nil {
		return bad("discovery.prefix", "%v", err)
	}
	return nil
}

// checkPrefix is the rule of topic prefixes.
func checkPrefix(p string) error {
	if p == "" || strings.ContainsAny(p, "+#$") || strings.HasPrefix(p, "/") || strings.HasSuffix(p, "/") {
		return fmt.Errorf("%q: a topic prefix may not be empty, contain '+', '#' or '$', nor start or end with '/'", p)
	}
	return nil
}

// Validate checks c as New does (defaults filled in): an invalid value
// is a *ConfigError whose Key names it (queue.max_messages) and whose
// message says what is allowed.
func (c Config) Validate() error {
	_, err := c.withDefaults()
	var fe *fieldError
	if errors.As(err, &fe) {
		return &ConfigError{Key: fe.path, Msg: fe.Error()}
	}
	return err
}

// checkForgetAfter is the rule of nodes.forget_after: negative (never), 0
// (the default, 1h), or at least T.
func checkForgetAfter(d, t time.Duration) error {
	if t == 0 {
		t = link.DefaultTimeout
	}
	if d > 0 && d < t {
		return fmt.Errorf("%v: must be at least T (%v), 0 for the default %v, or negative for never", d, t, DefaultForgetAfter)
	}
	return nil
}
