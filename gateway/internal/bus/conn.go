package bus

import (
	"errors"
	"net"
	"sync"
	"time"
)

// The embedded broker's client connections never block their writer.
//
// mochi writes to a client's socket from the client's write loop while
// it holds the client's lock, and every publish to that client (the
// gateway's own, through the inline client, included) takes the same
// lock to number the packet. A client that stops reading fills its
// socket, its write loop blocks in Write, and every publisher then
// waits on that one socket: all node traffic stops, and so does the
// broker's Close. clientConn takes mochi's writes into a bounded buffer
// at once, and a goroutine of its own writes that buffer to the socket
// with a deadline. A client that lets more than maxPending bytes wait,
// or takes nothing for the write timeout, is disconnected (counted,
// logged): mochi then drops what it would have sent it, as for any
// disconnected client (QoS 1 messages stay in a persistent session,
// bounded by the broker's inflight limit).

// errSlowClient is the error of a client dropped for not reading.
var errSlowClient = errors.New("bus: MQTT client does not read what the broker sends it: disconnected")

// writeChunk is the most one socket write is given at once: the write
// timeout then asks the client to take writeChunk bytes per timeout.
const writeChunk = 32 << 10

// closeFlush bounds how long a closed connection still tries to send
// what is pending (a CONNACK that refuses a client, a DISCONNECT).
const closeFlush = 500 * time.Millisecond

// slowFunc is told once of a client dropped for not reading: why
// ("pending" or "timeout") and how many bytes were waiting.
type slowFunc func(c *clientConn, why string, pending int)

type clientConn struct {
	net.Conn
	maxPending int
	timeout    time.Duration
	onSlow     slowFunc

	wake chan struct{} // buffer 1: data or close for the flusher
	done chan struct{} // closed when the flusher has ended

	mu       sync.Mutex
	buf      []byte // pending, not yet handed to the socket
	spare    []byte // the flusher's last buffer, for reuse
	closing  bool   // Close was called: the write deadline is set
	failed   error  // the connection is dead: writes fail
	id, user string // the MQTT client, once known (for logs)
}

func newClientConn(c net.Conn, maxPending int, timeout time.Duration, onSlow slowFunc) *clientConn {
	cc := &clientConn{
		Conn:       c,
		maxPending: maxPending,
		timeout:    timeout,
		onSlow:     onSlow,
		wake:       make(chan struct{}, 1),
		done:       make(chan struct{}),
	}
	go cc.flush()
	return cc
}

// Write takes b into the pending buffer and returns at once; it fails if
// the connection is closed, or if b would take the pending bytes over
// the bound, which disconnects the client.
func (c *clientConn) Write(b []byte) (int, error) {
	c.mu.Lock()
	if c.failed != nil {
		err := c.failed
		c.mu.Unlock()
		return 0, err
	}
	if c.closing {
		c.mu.Unlock()
		return 0, net.ErrClosed
	}
	if len(c.buf)+len(b) > c.maxPending {
		pending := len(c.buf)
		c.failed = errSlowClient
		c.buf = nil
		c.mu.Unlock()
		c.Conn.Close()
		c.signal()
		c.onSlow(c, "pending", pending)
		return 0, errSlowClient
	}
	c.buf = append(c.buf, b...)
	c.mu.Unlock()
	c.signal()
	return len(b), nil
}

func (c *clientConn) signal() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// flush writes the pending bytes to the socket until the connection
// fails or is closed (then flushed, within closeFlush).
func (c *clientConn) flush() {
	defer close(c.done)
	defer c.Conn.Close()
	for {
		c.mu.Lock()
		for len(c.buf) == 0 && !c.closing && c.failed == nil {
			c.mu.Unlock()
			<-c.wake
			c.mu.Lock()
		}
		if c.failed != nil || len(c.buf) == 0 {
			c.mu.Unlock()
			return // failed, or closed with nothing left to send
		}
		out := c.buf
		c.buf = c.spare[:0]
		c.mu.Unlock()
		for len(out) > 0 {
			n := min(len(out), writeChunk)
			c.mu.Lock()
			if !c.closing {
				// Under c.mu: Close's deadline is never overwritten.
				c.Conn.SetWriteDeadline(time.Now().Add(c.timeout))
			}
			c.mu.Unlock()
			w, err := c.Conn.Write(out[:n])
			out = out[w:]
			if err != nil {
				c.fail(err, len(out))
				return
			}
		}
		c.mu.Lock()
		if cap(out) <= 2*c.maxPending {
			c.spare = out[:0]
		}
		c.mu.Unlock()
	}
}

// fail records the flusher's write error: a timeout outside Close is a
// client that does not read.
func (c *clientConn) fail(err error, left int) {
	var ne net.Error
	c.mu.Lock()
	if c.failed != nil {
		c.mu.Unlock()
		return
	}
	slow := !c.closing && errors.As(err, &ne) && ne.Timeout()
	c.failed = err
	if slow {
		c.failed = errSlowClient
	}
	pending := left + len(c.buf)
	c.buf = nil
	c.mu.Unlock()
	if slow {
		c.onSlow(c, "timeout", pending)
	}
}

// Close stops taking writes and returns at once; what is pending is
// still sent, within closeFlush, then the socket is closed. A read in
// progress returns.
func (c *clientConn) Close() error {
	c.mu.Lock()
	if c.closing {
		c.mu.Unlock()
		return nil
	}
	c.closing = true
	c.Conn.SetWriteDeadline(time.Now().Add(closeFlush))
	c.mu.Unlock()
	c.Conn.SetReadDeadline(time.Now())
	c.signal()
	return nil
}

// wait waits for the flusher: the socket is closed when it returns.
func (c *clientConn) wait() { <-c.done }

// SetDeadline sets the read deadline only (mochi's keepalive): the
// flusher owns the write deadline.
func (c *clientConn) SetDeadline(t time.Time) error { return c.SetReadDeadline(t) }

// SetWriteDeadline does nothing: see SetDeadline.
func (c *clientConn) SetWriteDeadline(time.Time) error { return nil }

// SetReadDeadline sets the read deadline, unless the connection is
// closing (its reader must end).
func (c *clientConn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	closing := c.closing
	c.mu.Unlock()
	if closing {
		return nil
	}
	return c.Conn.SetReadDeadline(t)
}

// who returns the MQTT client ID and user name, once known.
func (c *clientConn) who() (id, user string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.id, c.user
}

func (c *clientConn) setWho(id, user string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.id, c.user = id, user
}
