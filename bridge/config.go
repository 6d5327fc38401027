package bridge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/tether-iot/tether/internal/wire"
	"github.com/tether-iot/tether/link"
)

// Defaults of a zero Config.
const (
	DefaultMaxQueue = 10000
)

// Config configures a Bridge. ID, Server, Open and StateDir are required;
// every other zero field means the default written beside it.
type Config struct {
	// ID is the node ID the board gets at the server.
	ID string
	// Server is the server's address, host:port; a missing port means 8123.
	Server string
	// Timeout is T of the link to the server, which must match the
	// server's. Zero means 2 s.
	Timeout time.Duration
	// SerialTimeout is T of the link to the board, which must match the
	// board library's. Zero means Timeout. Plain mode has no such link.
	SerialTimeout time.Duration
	// MaxLine is the longest line (id included) on either link. Zero
	// means link.DefaultMaxLine.
	MaxLine int

	// Open opens the serial port (see OpenSerial). The bridge opens it
	// again, with a growing pause, when it fails (a USB board unplugged).
	Open func(ctx context.Context) (Port, error)
	// PortName names the port in logs.
	PortName string

	// StateDir is the directory of the durable state (one file,
	// StateFile): the lines taken from either side and not yet delivered,
	// and the sequence state of both links. A bridge restarted on the
	// same directory loses nothing and repeats nothing.
	StateDir string

	// Plain selects plain mode: the board runs no library; each line it
	// prints is a message, taken at most once (a line corrupted on the
	// wire or printed while the bridge is down is lost), and each line
	// from the server is printed to it.
	Plain bool

	// MaxQueue bounds the lines from the board waiting for the server
	// (and as many from the server waiting for the board). When full, the
	// board's lines are not ACKed (it repeats them later; in plain mode
	// they are dropped, counted and logged). Zero means DefaultMaxQueue.
	MaxQueue int

	// Reset, if set, resets the board (a command, a GPIO or DTR line):
	// it is called when the board has not answered for ResetAfter, then
	// again after twice as long, up to 8 ResetAfter, until it answers.
	Reset func(ctx context.Context) error
	// ResetAfter: zero means 5 SerialTimeout.
	ResetAfter time.Duration

	// ReconnectDelay, MaxReconnectDelay and Dial are the client's (see
	// client.Config).
	ReconnectDelay    time.Duration
	MaxReconnectDelay time.Duration
	Dial              func(ctx context.Context, network, addr string) (net.Conn, error)

	// Logger receives the bridge's log lines; nil means slog.Default().
	// Lines of the serial link say hop=serial, of the server link
	// hop=server.
	Logger *slog.Logger
	// OnEvent, if set, is called with each change of state, in order, on
	// a goroutine of the bridge's. It must not block for long.
	OnEvent func(Event)
}

func (c Config) withDefaults() (Config, error) {
	if err := wire.CheckNodeID(c.ID, 0); err != nil {
		return c, fmt.Errorf("bridge: %w", err)
	}
	switch {
	case c.Server == "":
		return c, errors.New("bridge: no Server address")
	case c.Open == nil:
		return c, errors.New("bridge: no Open function for the serial port")
	case c.StateDir == "":
		return c, errors.New("bridge: no StateDir")
	case c.Timeout < 0 || c.SerialTimeout < 0 || c.ResetAfter < 0:
		return c, errors.New("bridge: negative duration")
	case c.MaxQueue < 0:
		return c, errors.New("bridge: negative MaxQueue")
	}
	if c.Timeout == 0 {
		c.Timeout = link.DefaultTimeout
	}
	if c.SerialTimeout == 0 {
		c.SerialTimeout = c.Timeout
	}
	if c.MaxLine == 0 {
		c.MaxLine = link.DefaultMaxLine
	}
	if c.MaxQueue == 0 {
		c.MaxQueue = DefaultMaxQueue
	}
	if c.ResetAfter == 0 {
		c.ResetAfter = 5 * c.SerialTimeout
	}
	if c.PortName == "" {
		c.PortName = "serial"
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c, nil
}

// EventKind tells the events of a bridge apart.
type EventKind uint8

// Events of a bridge.
const (
	BoardUp      EventKind = iota + 1 // the board answers on the serial link
	BoardDown                         // the board stopped answering (or the port failed)
	BoardRestart                      // the board started afresh (its boot message)
	BoardReset                        // the bridge reset the board (Config.Reset)
	ServerUp                          // the link to the server is up
	ServerDown                        // the link to the server is down
)

func (k EventKind) String() string {
	switch k {
	case BoardUp:
		return "board up"
	case BoardDown:
		return "board down"
	case BoardRestart:
		return "board restart"
	case BoardReset:
		return "board reset"
	case ServerUp:
		return "server up"
	case ServerDown:
		return "server down"
	}
	return "unknown"
}

// Event is a change of a bridge's state.
type Event struct {
	Kind EventKind
	Time time.Time
	Err  error // BoardDown, ServerDown: the reason; BoardReset: the reset's error
}
