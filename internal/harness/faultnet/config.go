package faultnet

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
)

// DefaultListen is the address a [Proxy] listens on when [Config.Listen] is
// empty: an ephemeral port on the IPv4 loopback.
const DefaultListen = "127.0.0.1:0"

// Config configures a [Proxy]. The zero value of every field but Target is a
// usable default. [Start] copies the Config; later changes have no effect.
type Config struct {
	// Listen is the address to listen on, "host:port" with host a loopback
	// IP literal (127.0.0.0/8 or ::1). Empty means [DefaultListen]. Any
	// other address is refused with an error.
	Listen string

	// Target is the server address to forward to, "host:port" with host a
	// loopback IP literal. Required.
	Target string

	// Source, if set, is the loopback address (an IP literal, no port)
	// the proxy's connections to Target come from: what the server sees
	// as the node's address. Empty lets the system choose (127.0.0.1).
	// Tests that make nodes connect from different hosts give each its
	// proxy and Source (127.0.0.2, 127.0.0.3, ...).
	Source string

	// Logger receives the proxy's logs. Nil discards them.
	Logger *slog.Logger

	// Record, if not nil, receives a JSONL transcript of all traffic in the
	// format of testdata/transcripts: one JSON object per Write call. Writes
	// are serialised, so one writer serves every connection. A write error
	// is logged and recording continues.
	Record io.Writer

	// Filter, if not nil, is called for every chunk (the bytes of one
	// socket read) that would be forwarded, and decides its fate. It runs on
	// the connection's reader goroutine for dir, in chunk order, so it must
	// not block for long; calls for different connections and directions
	// run concurrently. data is valid only during the call. conn is the
	// connection number, from 1 in accept order, as in the transcript.
	// Chunks dropped by a blackhole are not passed to Filter.
	Filter func(dir Dir, conn int, data []byte) Action

	// onWrite, if not nil, is called after every Write to a socket with
	// the number of bytes written. Tests use it to observe trickling.
	onWrite func(dir Dir, n int)
}

// Dir is the direction of a chunk.
type Dir int

const (
	// C2S is client (node) to server.
	C2S Dir = iota
	// S2C is server to client (node).
	S2C
)

// String returns "c2s" or "s2c", as in the transcripts.
func (d Dir) String() string {
	switch d {
	case C2S:
		return "c2s"
	case S2C:
		return "s2c"
	}
	return fmt.Sprintf("Dir(%d)", int(d))
}

// Action is what [Config.Filter] decides for a chunk.
type Action int

const (
	// Forward passes the chunk on.
	Forward Action = iota
	// Drop discards the chunk silently; the connection stays up.
	Drop
	// CutBefore closes both sides of the connection with FIN without
	// forwarding the chunk. Chunks read earlier are forwarded first.
	CutBefore
	// CutAfter forwards the chunk, then closes both sides with FIN.
	CutAfter
)

// String returns the action's name.
func (a Action) String() string {
	switch a {
	case Forward:
		return "forward"
	case Drop:
		return "drop"
	case CutBefore:
		return "cut-before"
	case CutAfter:
		return "cut-after"
	}
	return fmt.Sprintf("Action(%d)", int(a))
}

// ErrNotLoopback is returned by [Start] for an address outside the
// loopback network.
var ErrNotLoopback = errors.New("faultnet: address is not a loopback IP")

// withDefaults validates c and returns a copy with defaults filled in.
func (c Config) withDefaults() (Config, error) {
	if c.Listen == "" {
		c.Listen = DefaultListen
	}
	if c.Target == "" {
		return c, errors.New("faultnet: Config.Target is empty")
	}
	if err := checkLoopback(c.Listen); err != nil {
		return c, fmt.Errorf("faultnet: Config.Listen: %w", err)
	}
	if err := checkLoopback(c.Target); err != nil {
		return c, fmt.Errorf("faultnet: Config.Target: %w", err)
	}
	if c.Source != "" {
		if ip, err := netip.ParseAddr(c.Source); err != nil || !ip.IsLoopback() {
			return c, fmt.Errorf("faultnet: Config.Source %q: %w", c.Source, ErrNotLoopback)
		}
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c, nil
}

// checkLoopback reports an error unless addr is "ip:port" with a loopback ip.
func checkLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("parse %q: %w", addr, err)
	}
	ip, err := netip.ParseAddr(host)
	if err != nil || !ip.IsLoopback() {
		return fmt.Errorf("%q: %w", addr, ErrNotLoopback)
	}
	return nil
}
