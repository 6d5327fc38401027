// Package client is the node role of the Tether link, for nodes that run
// Go: it connects to a Tether server or to the original micropython-iot
// server, and keeps the link up across outages with the legacy node's
// procedure (drop the network, wait 2T, reconnect, wait until stable),
// adding a random jitter to the wait and backing off exponentially while
// attempts fail (Config.MaxReconnectDelay), so that a fleet of nodes does
// not return all at once, nor hammer a server that stays down.
//
//	c, err := client.Dial(ctx, client.Config{ID: "7", Server: "gw.lan:8123"})
//	if err != nil { ... } // no network or no server at start-up
//	defer c.Close()
//	c.Write(ctx, "hello") // qos: delivered exactly once
//	line, err := c.ReadLine(ctx)
package client

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tether-iot/tether/link"
)

// Client is a node's end of the link. Its ReadLine, Write, Up, WaitUp,
// Connects, Stats and the others work across outages; the link itself
// stays the Client's (no other socket can be attached to it).
type Client struct {
	l      *link.Link
	cfg    Config
	log    *slog.Logger
	ctx    context.Context // cancelled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup
	beat   atomic.Uint32
	bo     backoff // used by Dial, then by run
	// greeted tells Attach what connect wrote with the ID (start, then
	// run, call them in turn).
	greeted link.AttachOption
}

// Dial connects to the server for the first time and returns a Client that
// keeps the link up until Close. At start-up, a Radio that cannot connect
// calls Config.BadNetwork and a server that cannot be reached calls
// Config.BadServer; by default these end Dial with an error. Dial returns
// once the node's ID has been sent; the link comes up when the server's
// first line arrives (WaitUp), and writes wait for it.
func Dial(ctx context.Context, cfg Config) (*Client, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	c := &Client{cfg: cfg, log: cfg.Logger,
		bo: backoff{base: cfg.ReconnectDelay, max: cfg.MaxReconnectDelay, randN: cfg.randN}}
	lc := link.Config{
		ID:            cfg.ID,
		Timeout:       cfg.Timeout,
		FirstTimeout:  2 * cfg.Timeout,
		UpOnFirstLine: true,
		MaxLine:       cfg.MaxLine,
		RecvQueue:     cfg.RecvQueue,
		Deliver:       cfg.Deliver,
		Resume:        cfg.Resume,
		Logger:        cfg.Logger,
		OnEvent:       cfg.OnEvent,
		OnKeepalive:   c.keepalive,
	}
	if c.l, err = link.New(lc); err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	if cfg.Events != nil {
		c.l.Notify(cfg.Events)
	}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	conn, err := c.start(ctx)
	if err != nil {
		c.cancel()
		c.l.Close()
		return nil, err
	}
	c.wg.Add(1)
	go c.run(conn)
	return c, nil
}

// Close closes the link and its socket and stops reconnecting; it waits
// for the client's goroutines. Lines already received can still be read.
func (c *Client) Close() error {
	c.l.Close() // first, so that the last Down event says "link closed"
	c.cancel()
	c.wg.Wait()
	return nil
}

// keepalive runs the heartbeat and watchdog hooks on each keepalive.
func (c *Client) keepalive() {
	if c.cfg.Heartbeat != nil {
		c.cfg.Heartbeat(c.beat.Add(1)%2 == 1)
	}
	c.feed()
}

func (c *Client) feed() {
	if c.cfg.Watchdog != nil {
		c.cfg.Watchdog()
	}
}

// start makes the first connection, calling the start-up hooks.
func (c *Client) start(ctx context.Context) (net.Conn, error) {
	ctx, stop := mergeCancel(ctx, c.ctx)
	defer stop()
	if r := c.cfg.Radio; r != nil && !r.Connected() {
		if err := c.radioUp(ctx); err != nil {
			hook := c.cfg.BadNetwork
			if hook == nil {
				return nil, fmt.Errorf("client: no network at start-up: %w", err)
			}
			if err := hook(ctx, err); err != nil {
				return nil, err
			}
		}
	}
	for first := true; ; first = false {
		conn, err := c.connect(ctx)
		if err == nil {
			return conn, nil
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("client: dial: %w", ctx.Err())
		}
		if first {
			hook := c.cfg.BadServer
			if hook == nil {
				return nil, fmt.Errorf("client: no server at start-up: %w", err)
			}
			if err := hook(ctx, err); err != nil {
				return nil, err
			}
		}
		d, n := c.bo.next()
		c.log.Warn("cannot reach the server; trying again", "node", c.cfg.ID, "server", c.cfg.Server,
			"attempt", n, "delay", d, "err", err)
		if err := c.wait(ctx, d); err != nil {
			return nil, fmt.Errorf("client: dial: %w", err)
		}
	}
}

// run is the client's supervisor: it serves each socket until it fails,
// then follows the outage procedure and connects again, until Close.
func (c *Client) run(conn net.Conn) {
	defer c.wg.Done()
	for {
		up, err := c.serve(conn)
		select {
		case <-c.ctx.Done():
			return
		case <-c.l.Done():
			return
		default: // an outage
		}
		if up >= 2*c.cfg.Timeout {
			c.bo.reset() // else the socket was one more failed attempt
		}
		for {
			d, n := c.bo.next()
			c.log.Info("reconnecting", "node", c.cfg.ID, "server", c.cfg.Server,
				"attempt", n, "delay", d, "err", err)
			if conn, err = c.reconnect(d); err == nil {
				break
			}
			if c.ctx.Err() != nil {
				return
			}
		}
	}
}

// serve runs the link on conn until the socket fails, and returns why and
// how long the link was up on it. A watcher notes when the link comes up;
// it ends then, or when the socket does.
func (c *Client) serve(conn net.Conn) (time.Duration, error) {
	ctx, cancel := context.WithCancel(c.ctx)
	var upAt time.Time
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		if c.l.WaitUp(ctx) == nil {
			if st := c.l.Stats(); st.Up {
				upAt = st.Since
			}
		}
	}()
	err := c.l.AttachWith(c.ctx, conn, c.greeted)
	cancel()
	<-watched
	if upAt.IsZero() {
		return 0, err
	}
	return time.Since(upAt), err
}

// reconnect is the legacy outage procedure: drop the network, wait d,
// bring the network back, wait StableTime, connect.
func (c *Client) reconnect(d time.Duration) (net.Conn, error) {
	ctx := c.ctx
	r := c.cfg.Radio
	if r != nil {
		if err := r.Disconnect(); err != nil {
			c.log.Warn("radio disconnect failed", "node", c.cfg.ID, "err", err)
		}
	}
	if err := c.wait(ctx, d); err != nil {
		return nil, err
	}
	if r != nil {
		if err := c.radioUp(ctx); err != nil {
			return nil, err
		}
		if err := c.wait(ctx, c.cfg.StableTime); err != nil {
			return nil, err
		}
	}
	return c.connect(ctx)
}

// radioUp connects the radio, each try bounded by RadioTimeout.
func (c *Client) radioUp(ctx context.Context) error {
	tctx, cancel := context.WithTimeout(ctx, c.cfg.RadioTimeout)
	defer cancel()
	if err := c.cfg.Radio.Connect(tctx); err != nil {
		return fmt.Errorf("radio: %w", err)
	}
	if !c.cfg.Radio.Connected() {
		return errors.New("radio: not connected after Connect")
	}
	return nil
}

// connect opens a socket to the server and sends the node's ID.
func (c *Client) connect(ctx context.Context) (net.Conn, error) {
	c.feed()
	conn, err := c.cfg.Dial(ctx, "tcp", c.cfg.Server)
	if err != nil {
		return nil, err
	}
	if conn, err = c.secure(ctx, conn); err != nil {
		return nil, err
	}
	if c.cfg.IDDelay > 0 {
		if err := c.wait(ctx, c.cfg.IDDelay); err != nil {
			conn.Close()
			return nil, err
		}
	}
	// The ID and the greeting go in one write, so that the server reads
	// them together: the greeting tells it whether a 00 on this socket
	// repeats one it has, or starts a new life (see link.Window).
	greet, opt := c.l.Greeting()
	err = conn.SetWriteDeadline(time.Now().Add(c.cfg.Timeout))
	if err == nil {
		_, err = conn.Write(append([]byte(c.cfg.ID+"\n"), greet...))
	}
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("send ID: %w", err)
	}
	c.greeted = opt
	return conn, nil
}

// wait waits d, feeding the watchdog every T/4, until ctx ends.
func (c *Client) wait(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	end := time.NewTimer(d)
	defer end.Stop()
	var tick <-chan time.Time
	if c.cfg.Watchdog != nil {
		t := time.NewTicker(c.cfg.Timeout / 4)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-end.C:
			return nil
		case <-tick:
			c.feed()
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// mergeCancel returns a context done when either a or b is.
func mergeCancel(a, b context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(a)
	stop := context.AfterFunc(b, cancel)
	return ctx, func() { stop(); cancel() }
}
