package link

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// Defaults of a zero Config.
const (
	DefaultTimeout     = 2 * time.Second
	DefaultMaxLine     = 4096
	DefaultRecvQueue   = 64
	DefaultMaxInFlight = 64
	// maxInFlightLimit keeps every id in flight inside half the receiver's
	// 256-bit window, which forgets ids half a window behind the newest.
	maxInFlightLimit = 120
)

// Config configures a Link. The zero value is a valid configuration: each
// zero field means the default written beside it. New copies the Config;
// changing it afterwards has no effect.
type Config struct {
	// ID names the link in logs and events: the node's ID.
	ID string

	// Timeout is T, which must match the peer's. The link declares an
	// outage after T without a byte from the peer, writes a keepalive when
	// it has written nothing for T/4, and repeats a qos message that has
	// not been acknowledged within T. Zero means DefaultTimeout (2 s).
	Timeout time.Duration

	// AnswerKeepalives makes the link answer a keepalive from the peer at
	// once, with its own, when it has written nothing for T/8 (its own
	// would be due within T/8 anyway). In step with the peer, one wakeup
	// of the read loop then serves both directions and the keepalive
	// timer does not fire; the TCP ACK of the peer's keepalive rides on
	// the answer. The server sets it. A node should not: its keepalives
	// then follow its own T/4 alone, which tells the server the node's T
	// (Stats.PeerTimeout); and two answering ends would not add up to a
	// saving.
	AnswerKeepalives bool

	// FirstTimeout bounds the wait for the first byte on a new socket.
	// Zero means Timeout. Legacy nodes wait 2T.
	FirstTimeout time.Duration

	// MaxLine is the longest line, id included and LF excluded, that the
	// link accepts from the peer or lets the application write, in bytes.
	// A longer incoming line is discarded (counted, logged, not ACKed).
	// Zero means DefaultMaxLine (4096).
	MaxLine int

	// RecvQueue is how many received messages may wait for ReadLine
	// acknowledged. As many more are queued with their ACK deferred until
	// ReadLine makes room: the peer's waiting writes stop, and a qos=false
	// message, which its sender never repeats, is not lost. A message that
	// finds all 2*RecvQueue places taken for T/2 is neither queued nor
	// ACKed: the peer repeats it later, so nothing acknowledged is ever
	// dropped. Zero means DefaultRecvQueue (64).
	RecvQueue int

	// Deliver, if set, takes every new message instead of the receive
	// queue (ReadLine then fails with ErrNoQueue). The message is ACKed
	// only when Deliver returns nil; an error leaves it for the peer to
	// repeat. Deliver runs on the link's read loop: it holds up this link
	// only, and its ctx is cancelled when the socket dies or the link
	// closes. It must not call Close.
	Deliver func(ctx context.Context, m Message) error

	// WritePause holds messages (not ACKs nor keepalives) on a new socket
	// until the peer's first bytes have arrived and WritePause more has
	// passed: old ESP8266 firmware lost data that arrived too early. Zero
	// means no pause; the server uses 200 ms, as the legacy server did.
	WritePause time.Duration

	// UpOnFirstLine makes the link come up only when the first complete
	// line arrives on a new socket (the node's rule), rather than as soon
	// as the socket is attached (the server's rule).
	UpOnFirstLine bool

	// MaxInFlight bounds how many ids the oldest unacknowledged message
	// may lag behind the next id to be sent; a write that would pass it
	// waits. It keeps in-flight ids inside half of the receiver's window,
	// where a repeat is still told from a new message. Zero means
	// DefaultMaxInFlight (64); values above 120 are lowered to 120.
	MaxInFlight int

	// Pace keeps the messages written to the peer behind the pace of its
	// application's reads, for original micropython-iot nodes, whose
	// queue of unread lines holds 20 (see Pace). The zero value does not
	// pace.
	Pace Pace

	// RepeatHorizon bounds how long after the ACK of the peer's message
	// 00 was written an identical 00, first on a new socket, with no
	// other evidence, is taken for a repeat of it rather than for the
	// first message of a new life (see Window, rules 3 and 4). Zero means
	// DefaultRepeatHorizon(Timeout): 5T+13 s, the longest a legacy node
	// takes to repeat a message after an outage. Negative means none:
	// every such 00 is a restart (for legacy nodes that reboot faster
	// than that; a lost ACK of 00 then makes a duplicate).
	RepeatHorizon time.Duration

	// NoTCPEvidence: take no evidence about message 00 from the TCP
	// socket (see Window, rules 1 and 2), for a peer whose TCP endpoint is
	// not the peer: behind a proxy that terminates TCP (a TCP load
	// balancer, stunnel, Docker's userland proxy), whose own stack
	// acknowledges bytes the peer may never get. A candidate repeat of 00
	// is then decided by the greeting and the horizon, and counted when
	// ambiguous, instead of taken for a restart for certain.
	NoTCPEvidence bool

	// OnWindow, if set, is called with the receive window when the
	// evidence about the peer's last 00 changed outside a delivery (our
	// ACK of it was written, or the peer's TCP acknowledged it). It runs
	// on the read loop, never concurrently with Deliver: a process that
	// stores the window with each message stores this one too.
	OnWindow func(Window)

	// Resume restores the sequence state saved by a previous process (see
	// Snapshot), so that the peer sees no restart and keeps exactly-once
	// delivery. The zero value starts afresh: the first message is 00.
	Resume Snapshot

	// Logger receives the link's log lines; nil means slog.Default().
	// Every up/down change is one Info line with node=<ID> and
	// state=up|down.
	Logger *slog.Logger

	// OnEvent, if set, is called with every event, in order, from a
	// goroutine of the link's own (never the read loop). It may block
	// that goroutine, delaying later events of this link only. It must
	// not call Close.
	OnEvent func(Event)

	// OnKeepalive, if set, is called after each keepalive the link
	// writes (a node's heartbeat LED, a watchdog feed). It runs on a timer
	// goroutine or on the read loop (a keepalive answering the peer's) and
	// must return quickly.
	OnKeepalive func()

	// OnAckRTT, if set, is called with the round-trip time of each qos
	// message acknowledged on its first transmission. It runs on the
	// read loop with the link's lock held: it must return quickly (a
	// metrics histogram) and must not call the Link's methods (Stats,
	// Write...), which would deadlock.
	OnAckRTT func(time.Duration)
}

// DefaultRepeatHorizon is the longest a legacy node takes to repeat a
// message whose ACK it missed, for a T of t: it repeats after T, detects
// the outage within T, waits 2T, then up to 10 s for WiFi and 3 s for it
// to settle, and sends after the server's first line: 5T + 13 s.
func DefaultRepeatHorizon(t time.Duration) time.Duration { return 5*t + 13*time.Second }

func (c Config) withDefaults() (Config, error) {
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.Timeout < 0 {
		return c, fmt.Errorf("link: negative Timeout %v", c.Timeout)
	}
	if c.FirstTimeout == 0 {
		c.FirstTimeout = c.Timeout
	}
	if c.MaxLine == 0 {
		c.MaxLine = DefaultMaxLine
	}
	if c.MaxLine < 3 {
		return c, fmt.Errorf("link: MaxLine %d is too small for any message", c.MaxLine)
	}
	if c.RecvQueue == 0 {
		c.RecvQueue = DefaultRecvQueue
	}
	if c.MaxInFlight == 0 {
		c.MaxInFlight = DefaultMaxInFlight
	}
	if err := c.Pace.check(); err != nil {
		return c, err
	}
	if c.RepeatHorizon == 0 {
		c.RepeatHorizon = DefaultRepeatHorizon(c.Timeout)
	}
	c.MaxInFlight = min(c.MaxInFlight, maxInFlightLimit)
	switch {
	case c.RecvQueue < 0:
		return c, errors.New("link: negative RecvQueue")
	case c.MaxInFlight < 0:
		return c, errors.New("link: negative MaxInFlight")
	case c.WritePause < 0 || c.FirstTimeout < 0:
		return c, errors.New("link: negative duration")
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c, nil
}
