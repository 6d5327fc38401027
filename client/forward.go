package client

import (
	"context"
	"time"

	"github.com/tether-iot/tether/link"
)

// The Client's link is its own: these methods forward to it. Attach and
// the link's Close are not among them, so that no other socket races the
// reconnect loop and Close is always the Client's.

// ID returns the node's ID (Config.ID).
func (c *Client) ID() string { return c.l.ID() }

// Write sends line to the server. With the default options (qos, wait)
// it returns once the server has acknowledged it, across outages, and the
// server delivers it exactly once; see link.Link.Write and its options.
func (c *Client) Write(ctx context.Context, line string, opts ...link.WriteOption) error {
	return c.l.Write(ctx, line, opts...)
}

// ReadLine returns the next line from the server, waiting for it across
// outages, until ctx ends or the Client is closed (see link.Link.ReadLine).
func (c *Client) ReadLine(ctx context.Context) (string, error) { return c.l.ReadLine(ctx) }

// Buffered returns how many received lines wait for ReadLine.
func (c *Client) Buffered() int { return c.l.Buffered() }

// Drain blocks until every message written so far has been written to the
// socket and every qos message acknowledged, ctx is done, or the Client
// is closed.
func (c *Client) Drain(ctx context.Context) error { return c.l.Drain(ctx) }

// Up reports whether the link is up: a socket is attached and live.
func (c *Client) Up() bool { return c.l.Up() }

// WaitUp waits until the link is up, ctx ends or the Client is closed.
func (c *Client) WaitUp(ctx context.Context) error { return c.l.WaitUp(ctx) }

// Done returns a channel closed when the Client is closed.
func (c *Client) Done() <-chan struct{} { return c.l.Done() }

// Connects returns how many connections have been made so far; the legacy
// reconnect counter is Connects()-1.
func (c *Client) Connects() int { return c.l.Connects() }

// Stats returns a copy of the link's counters and state.
func (c *Client) Stats() link.Stats { return c.l.Stats() }

// Timeout returns the link's T (Config.Timeout).
func (c *Client) Timeout() time.Duration { return c.l.Timeout() }

// Notify makes the Client send the link's events (Up, Down) to ch, like
// signal.Notify: it never blocks on ch, and an event that finds it full
// is dropped (Stats.EventsDropped counts them), so give ch room. See also
// Config.Events and Config.OnEvent.
func (c *Client) Notify(ch chan<- link.Event) { c.l.Notify(ch) }

// Stop undoes Notify: no more events are sent to ch once it returns.
func (c *Client) Stop(ch chan<- link.Event) { c.l.Stop(ch) }
