package legacy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"
)

// NodeConfig configures a legacy node. The zero value of every field but
// Addr means the legacy default.
type NodeConfig struct {
	// ID is the node's ID, sent verbatim and followed by LF, as the legacy
	// client does: it is not checked.
	ID string
	// Addr is the server's host:port. Required.
	Addr string
	// Timeout is T, which must match the server's. Zero means 2 s; it
	// must otherwise be at least 10 ms. Keepalives go out when nothing was
	// written for T/4; silence for T (2T before the first message or ACK
	// of a connection) is an outage; a qos message is repeated when its
	// ACK has not come within T.
	Timeout time.Duration
	// Dial opens a connection to Addr. Nil means a TCP net.Dialer. Only
	// ECONNREFUSED, ECONNRESET and ECONNABORTED count as a failed first
	// connection; other dial errors are retried silently, as in the legacy
	// code.
	Dial func(ctx context.Context, addr string) (net.Conn, error)
	// StartDelay is the pause of a new node process before its first
	// connect (legacy: 1 s plus the WiFi join). Zero means T/2; negative
	// means none.
	StartDelay time.Duration
	// WiFiDelay is the pause after the 2T outage pause and before the next
	// connect (legacy: reconnecting WiFi, polled every 500 ms, then 3 s
	// for stability). Zero means 1.75T; negative means none.
	WiFiDelay time.Duration
	// BadServer is the legacy bad_server hook, called when the first
	// connection of a node process fails. Nil means the legacy default:
	// the process stops with ErrBadServer. A hook that returns nil lets
	// the node go on as after an outage; an error stops the process with
	// that cause.
	BadServer func(ctx context.Context) error
	// Logger receives the legacy verbose messages at debug level. Nil
	// discards them.
	Logger *slog.Logger
}

// Node models the legacy micropython-iot client (a node) over TCP: one
// connection to the server at a time, reconnecting after outages. All
// methods are safe for concurrent use. Calls that block take a context; when
// it ends the call returns ctx.Err(), leaving the protocol state as a
// cancelled asyncio task would (an id whose ACK never came stays pending).
// When the node stops (Close, the StartNode ctx, ErrBadServer) or is
// restarted, blocked calls return an error wrapping the cause
// (net.ErrClosed, ErrRestarted, ...).
type Node struct {
	cfg        NodeConfig
	tm         timing
	startDelay time.Duration
	wifiDelay  time.Duration
	log        *slog.Logger

	ctx    context.Context // ends on Close or when StartNode's ctx ends
	cancel context.CancelCauseFunc

	lifeMu sync.Mutex // serialises Restart and Close
	mu     sync.Mutex // guards p
	p      *proc
}

// StartNode validates cfg and starts a node process, which connects in the
// background like the legacy Client constructor: use WaitUp to wait for the
// link. The node runs until Close, or until ctx ends (then Close must still
// be called to wait for its goroutines).
func StartNode(ctx context.Context, cfg NodeConfig) (*Node, error) {
	if cfg.Addr == "" {
		return nil, errors.New("legacy: NodeConfig.Addr is required")
	}
	tm, err := newTiming(cfg.Timeout)
	if err != nil {
		return nil, err
	}
	if cfg.Dial == nil {
		var d net.Dialer
		cfg.Dial = func(ctx context.Context, addr string) (net.Conn, error) {
			return d.DialContext(ctx, "tcp", addr)
		}
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	n := &Node{
		cfg:        cfg,
		tm:         tm,
		startDelay: orDefault(cfg.StartDelay, tm.t/2),
		wifiDelay:  orDefault(cfg.WiFiDelay, tm.t*7/4),
		log:        log.With("node", cfg.ID),
	}
	n.ctx, n.cancel = context.WithCancelCause(ctx)
	n.p = newProc(n)
	n.p.start()
	return n, nil
}

func (n *Node) proc() *proc {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.p
}

// Write sends line as the legacy Client.write(line, qos, wait) does: with
// qos and wait it first waits until no id awaits an ACK; it takes the next
// id (the counter advances and the id awaits an ACK even for qos=false),
// appends LF unless line ends with one, and sends when the link is up. With
// qos it then waits for the ACK, repeating the identical line every T until
// it comes. line is not checked: an embedded LF or an empty line goes on the
// wire as it is.
func (n *Node) Write(ctx context.Context, line string, qos, wait bool) error {
	if err := n.proc().write(ctx, line, qos, wait); err != nil {
		return fmt.Errorf("legacy: node write: %w", err)
	}
	return nil
}

// ReadLine returns the next message from the server, with its trailing LF.
func (n *Node) ReadLine(ctx context.Context) (string, error) {
	s, err := n.proc().readLine(ctx)
	if err != nil {
		return "", fmt.Errorf("legacy: node read: %w", err)
	}
	return s, nil
}

// Queued returns how many received lines wait for ReadLine: the legacy
// _lineq, which holds 20 (one more is the overflow outage, after the
// line's ACK went out: the line is lost).
func (n *Node) Queued() int { return n.proc().queued() }

// WaitQueued waits until at most max received lines wait for ReadLine:
// for tests whose server must not overflow the node's queue (the legacy
// protocol does not protect it).
func (n *Node) WaitQueued(ctx context.Context, max int) error {
	if err := n.proc().waitQueued(ctx, max); err != nil {
		return fmt.Errorf("legacy: node wait: %w", err)
	}
	return nil
}

// Up reports the legacy status(): true from the first complete line
// received on a connection until the next outage.
func (n *Node) Up() bool { return n.proc().isUp() }

// WaitUp waits until Up is true.
func (n *Node) WaitUp(ctx context.Context) error { return n.WaitStatus(ctx, true) }

// WaitStatus waits until Up equals up.
func (n *Node) WaitStatus(ctx context.Context, up bool) error {
	if err := n.proc().waitStatus(ctx, up); err != nil {
		return fmt.Errorf("legacy: node wait: %w", err)
	}
	return nil
}

// Connects returns the legacy connects counter: the number of connections
// on which at least one message (not an ACK or keepalive) was received,
// since the process started.
func (n *Node) Connects() int { return n.proc().connectCount() }

// DropConn closes the current TCP connection, as the legacy close() method
// does: the node sees an outage and reconnects after the usual pauses.
func (n *Node) DropConn() { n.proc().dropConn() }

// Err returns the cause that stopped the current node process
// (ErrBadServer, net.ErrClosed, ...), or nil while it runs.
func (n *Node) Err() error {
	p := n.proc()
	if p.ctx.Err() == nil {
		return nil
	}
	return context.Cause(p.ctx)
}

// Restart simulates a reboot of the node: the connection is closed without
// notice, the process state is lost (id counter back to 00, empty window,
// no pending ACKs, queued lines dropped), and a new process starts and
// connects after StartDelay. Calls of the old process return ErrRestarted.
func (n *Node) Restart() error {
	n.lifeMu.Lock()
	defer n.lifeMu.Unlock()
	if n.ctx.Err() != nil {
		return fmt.Errorf("legacy: node restart: %w", context.Cause(n.ctx))
	}
	old := n.proc()
	old.cancel(ErrRestarted)
	old.wg.Wait()
	p := newProc(n)
	n.mu.Lock()
	n.p = p
	n.mu.Unlock()
	p.start()
	n.log.Debug("node restarted")
	return nil
}

// Close stops the node, closing its connection, and waits for its
// goroutines. It is idempotent.
func (n *Node) Close() error {
	n.lifeMu.Lock()
	defer n.lifeMu.Unlock()
	n.cancel(net.ErrClosed)
	n.proc().wg.Wait()
	return nil
}
