package legacy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/tether-iot/tether/internal/notify"
)

// ServerConn is the legacy Connection object of one node ID: it outlives
// outages, and keeps its id counter, its de-duplication window, its queue
// of received lines and its partial line across reconnects. Its methods
// are safe for concurrent use; blocking calls end with ctx.Err() or, once
// the server stopped, with an error wrapping the server's cause.
type ServerConn struct {
	s     *Server
	id    string
	wlock ctxLock // _wlock, held for every socket write

	mu          sync.Mutex
	sig         signal
	sock        net.Conn // nil while down
	closed      bool
	wrPause     bool // write pause after each (re)connect
	awaitClient bool // waiting for the first bytes on this socket
	istr        string
	lines       []string
	acksPend    map[int]bool
	win         window
	mids        midGen
	nconns      int
	timers      map[*time.Timer]bool
}

func newServerConn(s *Server, id string, sock net.Conn, initStr string) *ServerConn {
	return &ServerConn{
		s:           s,
		id:          id,
		wlock:       newCtxLock(),
		sig:         newSignal(),
		sock:        sock,
		wrPause:     true,
		awaitClient: true,
		istr:        initStr,
		acksPend:    make(map[int]bool),
		timers:      make(map[*time.Timer]bool),
	}
}

// ID returns the node's ID.
func (c *ServerConn) ID() string { return c.id }

// Up reports the legacy status(): true while a socket is attached.
func (c *ServerConn) Up() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sock != nil
}

// WaitStatus waits until Up equals up.
func (c *ServerConn) WaitStatus(ctx context.Context, up bool) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := await(ctx, c.s.ctx, &c.mu, &c.sig, func() bool { return (c.sock != nil) == up }); err != nil {
		return fmt.Errorf("legacy: server conn wait: %w", err)
	}
	return nil
}

// NConns returns the legacy nconns counter: how many sockets the reader
// has started on, the first included.
func (c *ServerConn) NConns() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nconns
}

// DropConn closes the current socket, as the legacy _close does on a
// failure: the connection is down until the node connects again.
func (c *ServerConn) DropConn() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closeLocked(c.sock, "dropped by the application")
}

// Write sends line as the legacy Connection.write(line, qos, wait): with
// qos and wait it first waits until no id awaits an ACK (qos=false ids
// included: a lost ACK of one blocks it for ever); it takes the next id
// and sends once the link is up and the write pause is over. With qos it
// repeats the identical line when the ACK has not come within T or an
// outage starts, until ACKed. line is not checked.
func (c *ServerConn) Write(ctx context.Context, line string, qos, wait bool) error {
	if err := c.write(ctx, line, qos, wait); err != nil {
		return fmt.Errorf("legacy: server write: %w", err)
	}
	return nil
}

func (c *ServerConn) write(ctx context.Context, line string, qos, wait bool) error {
	life := c.s.ctx
	c.mu.Lock()
	if qos && wait {
		if err := await(ctx, life, &c.mu, &c.sig, func() bool { return len(c.acksPend) == 0 }); err != nil {
			c.mu.Unlock()
			return err
		}
	}
	mid := c.mids.next()
	c.acksPend[mid] = true
	c.mu.Unlock()
	buf := []byte(frame(mid, line))
	if err := c.vwrite(ctx, buf); err != nil || !qos {
		return err
	}
	for {
		acked, err := c.waitAck(ctx, mid)
		if err != nil || acked {
			return err
		}
		if err := c.vwrite(ctx, buf); err != nil {
			return err
		}
		c.s.log.Debug("repeat", "id", c.id, "line", string(buf))
	}
}

// waitAck is _status_coro then _waitack: false when T passed or an outage
// started before the ACK.
func (c *ServerConn) waitAck(ctx context.Context, mid int) (bool, error) {
	life := c.s.ctx
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := await(ctx, life, &c.mu, &c.sig, func() bool { return c.sock != nil }); err != nil {
		return false, err
	}
	tctx, cancel := context.WithTimeout(ctx, c.s.tm.t)
	defer cancel()
	err := await(tctx, life, &c.mu, &c.sig, func() bool { return !c.acksPend[mid] || c.sock == nil })
	switch {
	case err == nil:
		return !c.acksPend[mid], nil
	case ctx.Err() != nil:
		return false, ctx.Err()
	case life.Err() != nil:
		return false, err
	}
	return false, nil
}

// vwrite is _vwrite: wait for the link (and, unless d is a keepalive, for
// the end of the write pause), then send; again until a send succeeds.
func (c *ServerConn) vwrite(ctx context.Context, d []byte) error {
	life := c.s.ctx
	ka := len(d) == 1 && d[0] == '\n'
	for {
		c.mu.Lock()
		err := await(ctx, life, &c.mu, &c.sig, func() bool { return c.sock != nil && (ka || !c.wrPause) })
		c.mu.Unlock()
		if err != nil {
			return err
		}
		if err := c.wlock.lock(ctx, life); err != nil {
			return err
		}
		ok := c.send(d)
		c.wlock.unlock()
		if ok {
			return nil
		}
	}
}

// send is _send, called with wlock held: false when down or on a failed
// or late (over T) write, which closes the socket.
func (c *ServerConn) send(d []byte) bool {
	c.mu.Lock()
	sock := c.sock
	c.mu.Unlock()
	if sock == nil {
		return false
	}
	sock.SetWriteDeadline(time.Now().Add(c.s.tm.t))
	if _, err := sock.Write(d); err != nil {
		c.mu.Lock()
		c.closeLocked(sock, "Write fail: closing connection: "+err.Error())
		c.mu.Unlock()
		return false
	}
	return true
}

// ReadLine is the legacy readline: the next queued line whose id is new to
// the window, as payload plus LF. The window is applied here, when the
// application reads, and an id 00 clears it first. A queued line whose id
// is not hex is consumed and reported with ErrBadID.
func (c *ServerConn) ReadLine(ctx context.Context) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for {
		for len(c.lines) > 0 {
			line := c.lines[0]
			c.lines = c.lines[1:]
			head, rest := splitRunes(line, 2)
			mid, ok := parseMid(head)
			if !ok {
				return "", fmt.Errorf("legacy: server read %q: %w", line, ErrBadID)
			}
			if mid == 0 { // the client has power cycled
				c.win.clear()
			}
			if c.win.isNew(mid) {
				return rest + "\n", nil
			}
		}
		if err := await(ctx, c.s.ctx, &c.mu, &c.sig, func() bool { return len(c.lines) > 0 }); err != nil {
			return "", fmt.Errorf("legacy: server read: %w", err)
		}
	}
}

// splitRunes splits s after its first n characters, as Python slicing of a
// str does.
func splitRunes(s string, n int) (string, string) {
	i := 0
	for k := 0; k < n && i < len(s); k++ {
		_, size := utf8.DecodeRuneInString(s[i:])
		i += size
	}
	return s[:i], s[i:]
}

func (c *ServerConn) reconnect(sock net.Conn) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		sock.Close()
		return
	}
	c.sock = sock
	c.wrPause = true
	c.awaitClient = true
	c.sig.broadcast()
}

// closeLocked is _close for the socket sock, if still attached.
func (c *ServerConn) closeLocked(sock net.Conn, reason string) {
	if sock == nil || c.sock != sock {
		return
	}
	sock.Close()
	c.sock = nil
	c.sig.broadcast()
	c.s.log.Debug("fail detected", "id", c.id, "reason", reason)
}

// shutdown closes the socket and stops the pause timers, for Server.Close.
func (c *ServerConn) shutdown() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	c.closeLocked(c.sock, "closed by application")
	for t := range c.timers {
		if t.Stop() {
			c.s.wg.Done()
		}
	}
	clear(c.timers)
}

// clientActiveLocked is _client_active: the write pause ends T/10 after the
// first bytes on a socket. Like the legacy task, the timer is not tied to
// that socket.
func (c *ServerConn) clientActiveLocked() {
	if c.closed {
		return
	}
	c.s.wg.Add(1)
	var t *time.Timer
	t = time.AfterFunc(c.s.tm.writePause, func() {
		defer c.s.wg.Done()
		c.mu.Lock()
		defer c.mu.Unlock()
		delete(c.timers, t)
		c.wrPause = false
		c.sig.broadcast()
	})
	c.timers[t] = true
}

// keepalive is _keepalive: a keepalive, then T/4, whatever else is sent.
func (c *ServerConn) keepalive() {
	defer c.s.wg.Done()
	for {
		if c.vwrite(c.s.ctx, []byte("\n")) != nil || !notify.Sleep(c.s.ctx, c.s.tm.ka) {
			return
		}
	}
}

// reader is _read: wait for a socket, read it until it fails or is silent
// for T, and again. The partial line (istr) is kept across sockets.
func (c *ServerConn) reader() {
	defer c.s.wg.Done()
	buf := make([]byte, 4096)
	for {
		c.mu.Lock()
		if await(c.s.ctx, c.s.ctx, &c.mu, &c.sig, func() bool { return c.sock != nil }) != nil {
			c.mu.Unlock()
			return
		}
		sock := c.sock
		c.nconns++
		c.mu.Unlock()
		for {
			sock.SetReadDeadline(time.Now().Add(c.s.tm.t))
			n, err := sock.Read(buf)
			if !c.received(sock, buf[:n], err) {
				return
			}
			c.mu.Lock()
			gone := c.sock != sock
			c.mu.Unlock()
			if gone {
				break
			}
		}
	}
}

// received handles the result of one read. It reports false when the
// reader task dies.
func (c *ServerConn) received(sock net.Conn, d []byte, err error) bool {
	c.mu.Lock()
	if c.sock != sock {
		c.mu.Unlock()
		return true
	}
	eof := err != nil && len(d) == 0 && errors.Is(err, io.EOF)
	if len(d) > 0 || eof {
		if c.awaitClient { // first item after (re)start
			c.awaitClient = false
			c.clientActiveLocked()
		}
	}
	switch {
	case eof:
		c.closeLocked(sock, "_read reset by peer")
		c.mu.Unlock()
		return true
	case len(d) == 0 && errors.Is(err, os.ErrDeadlineExceeded):
		c.closeLocked(sock, "_read timeout")
		c.mu.Unlock()
		return true
	case len(d) == 0:
		c.closeLocked(sock, "_read reset by peer 104")
		c.mu.Unlock()
		return true
	}
	d = bytes.TrimLeft(d, "\n") // discard leading keepalives
	if len(d) == 0 {
		c.mu.Unlock()
		return true
	}
	if !utf8.Valid(d) {
		c.mu.Unlock()
		c.s.log.Warn("reader task died: invalid UTF-8", "id", c.id)
		return false
	}
	c.istr += string(d)
	l := strings.Split(c.istr, "\n")
	c.istr = l[len(l)-1] // "" unless partial line
	acks, ok := c.processLocked(l[:len(l)-1])
	c.mu.Unlock()
	for _, mid := range acks {
		if err := c.wlock.lock(c.s.ctx, c.s.ctx); err != nil {
			return false
		}
		c.send([]byte(fmtMid(mid) + "\n"))
		c.wlock.unlock()
	}
	if !ok {
		c.s.log.Warn("reader task died: message id is not hex", "id", c.id)
	}
	return ok
}

// processLocked is _process_str: drop keepalives, apply ACKs, queue the
// message lines and return the ids to ACK. ok is false when a non-hex id
// raised ValueError: then the ACKs of the lines before it are still due.
func (c *ServerConn) processLocked(l []string) (acks []int, ok bool) {
	var lines []string
	ackSet := make(map[int]bool)
	for _, x := range l {
		if x == "" {
			continue
		}
		if utf8.RuneCountInString(x) != 2 {
			lines = append(lines, x)
			continue
		}
		mid, ok := parseMid(x)
		if !ok {
			return nil, false // raised in the set comprehension: nothing applied
		}
		ackSet[mid] = true
	}
	for mid := range ackSet {
		delete(c.acksPend, mid)
	}
	if len(ackSet) > 0 || len(lines) > 0 {
		c.sig.broadcast()
	}
	c.lines = append(c.lines, lines...)
	for _, line := range lines {
		head, _ := splitRunes(line, 2)
		mid, ok := parseMid(head)
		if !ok {
			return acks, false
		}
		acks = append(acks, mid)
	}
	return acks, true
}
