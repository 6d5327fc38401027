package client

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"time"

	"github.com/tether-iot/tether/internal/wire"
	"github.com/tether-iot/tether/link"
)

// Radio is a node's network interface, which the legacy node manages
// itself (its WiFi). On an outage the client disconnects it, waits, and
// connects it again. A nil Radio means the operating system manages the
// network: the client never touches it.
type Radio interface {
	// Connect brings the network up, returning when it is or ctx ends.
	Connect(ctx context.Context) error
	// Disconnect takes the network down.
	Disconnect() error
	// Connected reports whether the network is up.
	Connected() bool
}

// Config configures a Client. ID and Server are required; every other
// zero field means the default written beside it.
type Config struct {
	// ID is the node's ID, unique among the server's nodes.
	ID string
	// Server is the server's address, host:port; a missing port means
	// 8123.
	Server string
	// Timeout is T, which must match the server's. Zero means 2 s.
	Timeout time.Duration
	// MaxLine and RecvQueue: see link.Config.
	MaxLine   int
	RecvQueue int

	// Deliver, if set, takes every new message from the server instead of
	// the receive queue: the message is acknowledged only when Deliver
	// returns nil (see link.Config.Deliver). A relay that must not ACK a
	// line before the next hop has it (the serial bridge) uses it.
	Deliver func(ctx context.Context, m link.Message) error

	// Resume restores the link's sequence state saved by an earlier
	// process (see link.Config.Resume and link.Snapshot), so that the
	// server sees no restart. The zero value starts afresh.
	Resume link.Snapshot

	// Radio is the network interface to manage; nil lets the OS do it.
	Radio Radio
	// RadioTimeout bounds each attempt to connect the Radio. Zero means
	// 10 s.
	RadioTimeout time.Duration
	// ReconnectDelay is the least wait after an outage before connecting
	// again, so that the server surely notices the outage (a new socket
	// would be refused as a duplicate while the old one looks up), and
	// between any two attempts. Zero means 2T; negative is an error. The
	// first wait after an outage is random in [ReconnectDelay,
	// 1.5 ReconnectDelay], so that nodes cut off together (a server
	// restart) come back spread out; see MaxReconnectDelay for the waits
	// after failed attempts.
	ReconnectDelay time.Duration
	// MaxReconnectDelay caps the wait between attempts to connect. Each
	// consecutive failed attempt (the Radio cannot connect, the server
	// refuses or cannot be reached, or the socket dies before the link
	// has been up for 2T on it) doubles the range of the next wait: with
	// the defaults [2T, 3T], [3T, 6T], [6T, 12T], then [8T, 16T] until a
	// link stays up for 2T, which starts the waits afresh. Zero means
	// 8 ReconnectDelay (16T, 32 s with the default T): nodes return within
	// about half a minute of a server that comes back, and a server that
	// stays down gets about a sixth of the connection attempts it would
	// with no backoff. Set it to ReconnectDelay for the legacy node's
	// fixed wait (no jitter, no backoff). Less than ReconnectDelay is an
	// error.
	MaxReconnectDelay time.Duration
	// StableTime is the wait after the Radio has reconnected, to be sure
	// the network is stable. Zero means 3 s with a Radio, none without.
	// Negative means none.
	StableTime time.Duration
	// IDDelay is the wait between the TCP connection and sending the ID
	// (the legacy node waits 50 ms). Zero means none.
	IDDelay time.Duration
	// Dial opens the TCP connection; nil means a net.Dialer bounded by T.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// TLS, if set, makes the link TLS over each connection Dial opens
	// (handshake bounded by 2T), for a Tether gateway that has the node's
	// credentials: LoadTLS reads them from files. The certificate must
	// name ID (its Common Name): the gateway refuses a claim of another
	// ID. An empty ServerName means the host of Server.
	TLS *tls.Config

	// BadNetwork is called when the Radio cannot connect at start-up,
	// before the first success. Returning nil keeps trying; returning an
	// error makes Dial fail with it. Nil means Dial fails.
	BadNetwork func(ctx context.Context, err error) error
	// BadServer is called when the server cannot be reached at start-up.
	// Returning nil keeps trying (waiting between tries as after an
	// outage: see MaxReconnectDelay);
	// returning an error makes Dial fail with it. Nil means Dial fails.
	BadServer func(ctx context.Context, err error) error

	// Heartbeat, if set, is called with alternating values on each
	// keepalive the client writes (the legacy blinking LED). It must
	// return quickly.
	Heartbeat func(on bool)
	// Watchdog, if set, is fed while the link code runs: on each
	// keepalive, and every T/4 while reconnecting. It must return quickly.
	Watchdog func()

	// OnEvent, if set, is called with each event in order (see
	// link.Config.OnEvent). Events, if set, also receives them, never
	// blocking the link: an event that finds it full is dropped.
	OnEvent func(link.Event)
	Events  chan<- link.Event

	// Logger receives the client's log lines; nil means slog.Default().
	// Each wait before an attempt to connect is one line with the
	// attempt's number since the link was last stable and the delay.
	Logger *slog.Logger

	// randN, for tests only, returns a uniform random number in [0, n)
	// for the reconnect jitter; nil means math/rand/v2's Int64N.
	randN func(n int64) int64
}

func (c Config) withDefaults() (Config, error) {
	if err := wire.CheckNodeID(c.ID, 0); err != nil {
		return c, fmt.Errorf("client: %w", err)
	}
	if c.Server == "" {
		return c, errors.New("client: no Server address")
	}
	if _, _, err := net.SplitHostPort(c.Server); err != nil {
		c.Server = net.JoinHostPort(c.Server, "8123")
	}
	if c.Timeout == 0 {
		c.Timeout = link.DefaultTimeout
	}
	if c.Timeout < 0 {
		return c, fmt.Errorf("client: negative Timeout %v", c.Timeout)
	}
	if c.RadioTimeout == 0 {
		c.RadioTimeout = 10 * time.Second
	}
	if c.ReconnectDelay == 0 {
		c.ReconnectDelay = 2 * c.Timeout
	}
	if c.ReconnectDelay < 0 {
		return c, fmt.Errorf("client: negative ReconnectDelay %v", c.ReconnectDelay)
	}
	if c.MaxReconnectDelay == 0 {
		c.MaxReconnectDelay = 8 * c.ReconnectDelay
	}
	if c.MaxReconnectDelay < c.ReconnectDelay {
		return c, fmt.Errorf("client: MaxReconnectDelay %v is less than ReconnectDelay %v", c.MaxReconnectDelay, c.ReconnectDelay)
	}
	if c.randN == nil {
		c.randN = rand.Int64N
	}
	if c.StableTime == 0 && c.Radio != nil {
		c.StableTime = 3 * time.Second
	}
	c.StableTime = max(c.StableTime, 0)
	if c.TLS != nil {
		if id, ok := certID(c.TLS); ok && id != c.ID {
			return c, fmt.Errorf("client: the TLS certificate is for node %q, not %q: the gateway would refuse it", id, c.ID)
		}
		if c.TLS.ServerName == "" && !c.TLS.InsecureSkipVerify {
			host, _, _ := net.SplitHostPort(c.Server)
			c.TLS = c.TLS.Clone()
			c.TLS.ServerName = host
		}
	}
	if c.Dial == nil {
		// The link's keepalives detect dead peers: no TCP keepalive.
		d := &net.Dialer{Timeout: c.Timeout, KeepAlive: -1}
		c.Dial = d.DialContext
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c, nil
}
