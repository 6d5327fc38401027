package bridge

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tether-iot/tether/internal/wire"
	"github.com/tether-iot/tether/link"
)

// Port is an open serial port: a go.bug.st/serial port (see OpenSerial),
// a pseudo-terminal in tests, anything that reads and writes bytes. Close
// must make a blocked Read return.
type Port interface {
	io.ReadWriteCloser
}

// ModemLines is implemented by ports whose DTR and RTS lines can be set,
// as go.bug.st/serial's: see ResetLine.
type ModemLines interface {
	SetDTR(on bool) error
	SetRTS(on bool) error
}

// errPortClosed ends a portIO that was closed by its owner.
var errPortClosed = errors.New("serial port closed")

// portIO owns one open port: a reader goroutine splits what arrives into
// lines, and a writer goroutine writes, so that a write stuck in a port
// that does not drain (a board that stopped reading its USB serial) holds
// up no caller longer than its deadline.
type portIO struct {
	port  Port
	lines chan []byte   // received lines without LF, in order
	done  chan struct{} // closed when the port fails or is closed
	err   error         // why; set before done is closed
	once  sync.Once
	wq    chan wreq
	wg    sync.WaitGroup

	tooLong atomic.Uint64 // lines longer than the limit, discarded
}

type wreq struct {
	b    []byte
	done chan error
}

// startPort starts the goroutines of port; stop them with close. Lines
// longer than limit bytes are discarded up to their LF (counted).
func startPort(port Port, limit int, log *slog.Logger) *portIO {
	p := &portIO{
		port:  port,
		lines: make(chan []byte),
		done:  make(chan struct{}),
		wq:    make(chan wreq),
	}
	p.wg.Add(2)
	go p.reader(limit, log)
	go p.writer()
	return p
}

// fail ends the port with err, once: it is closed and the goroutines stop.
func (p *portIO) fail(err error) {
	p.once.Do(func() {
		p.err = err
		close(p.done)
		p.port.Close()
	})
}

// close closes the port and waits for its goroutines.
func (p *portIO) close() {
	p.fail(errPortClosed)
	p.wg.Wait()
}

func (p *portIO) reader(limit int, log *slog.Logger) {
	defer p.wg.Done()
	lr := wire.NewLineReader(p.port, limit, nil)
	for {
		line, err := lr.ReadLine()
		if errors.Is(err, wire.ErrLineTooLong) {
			n := p.tooLong.Add(1)
			logRare(log, n, "serial: line too long, discarded up to its end", "max", limit)
			continue
		}
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			p.fail(fmt.Errorf("serial port: read: %w", err))
			return
		}
		select {
		case p.lines <- append([]byte(nil), line...):
		case <-p.done:
			return
		}
	}
}

func (p *portIO) writer() {
	defer p.wg.Done()
	for {
		select {
		case r := <-p.wq:
			_, err := p.port.Write(r.b)
			if err != nil {
				err = fmt.Errorf("serial port: write: %w", err)
			}
			r.done <- err
			if err != nil {
				p.fail(err)
				return
			}
		case <-p.done:
			return
		}
	}
}

// write writes b, waiting until deadline at most (zero: no deadline). On
// the deadline it returns os.ErrDeadlineExceeded; b may still be written
// later.
func (p *portIO) write(b []byte, deadline time.Time) error {
	var tc <-chan time.Time
	if !deadline.IsZero() {
		t := time.NewTimer(time.Until(deadline))
		defer t.Stop()
		tc = t.C
	}
	r := wreq{b: b, done: make(chan error, 1)}
	select {
	case p.wq <- r:
	case <-tc:
		return os.ErrDeadlineExceeded
	case <-p.done:
		return p.err
	}
	select {
	case err := <-r.done:
		return err
	case <-tc:
		return os.ErrDeadlineExceeded
	case <-p.done:
		return p.err
	}
}

// frameConn is one session of the link engine on a serial port: a
// net.Conn whose bytes are link lines, carried in frames. Reads return the
// lines of valid frames (with LF); writes frame each line. Closing it ends
// the session, not the port.
type frameConn struct {
	p     *portIO
	flag  func() byte       // the flag of each frame written
	onRx  func(flag byte)   // called with the flag of each valid frame
	bad   func(line []byte) // called with each line that is no valid frame
	local net.Addr

	mu       sync.Mutex
	rdl, wdl time.Time
	pending  []byte // a line read but not yet returned in full
	partial  []byte // a written line still missing its LF
	closed   chan struct{}
	once     sync.Once
}

func newFrameConn(p *portIO, flag func() byte, onRx func(byte), bad func([]byte), name string) *frameConn {
	return &frameConn{p: p, flag: flag, onRx: onRx, bad: bad, closed: make(chan struct{}), local: serialAddr(name)}
}

func (c *frameConn) Read(b []byte) (int, error) {
	c.mu.Lock()
	if len(c.pending) > 0 {
		n := copy(b, c.pending)
		c.pending = c.pending[n:]
		c.mu.Unlock()
		return n, nil
	}
	dl := c.rdl
	c.mu.Unlock()
	var tc <-chan time.Time
	if !dl.IsZero() {
		t := time.NewTimer(time.Until(dl))
		defer t.Stop()
		tc = t.C
	}
	for {
		select {
		case raw := <-c.p.lines:
			flag, line, err := ParseFrame(raw)
			if err != nil {
				c.bad(raw)
				continue
			}
			if c.onRx != nil {
				c.onRx(flag)
			}
			out := append(line, '\n')
			n := copy(b, out)
			if n < len(out) {
				c.mu.Lock()
				c.pending = append(c.pending[:0], out[n:]...)
				c.mu.Unlock()
			}
			return n, nil
		case <-tc:
			return 0, os.ErrDeadlineExceeded
		case <-c.closed:
			return 0, net.ErrClosed
		case <-c.p.done:
			return 0, c.p.err
		}
	}
}

// Write frames each complete line of b and writes the frames at once.
func (c *frameConn) Write(b []byte) (int, error) {
	select {
	case <-c.closed:
		return 0, net.ErrClosed
	default:
	}
	c.mu.Lock()
	dl := c.wdl
	var out []byte
	rest := b
	for len(rest) > 0 {
		i := indexByte(rest, '\n')
		if i < 0 {
			c.partial = append(c.partial, rest...)
			break
		}
		line := rest[:i]
		if len(c.partial) > 0 {
			line = append(c.partial, line...)
			c.partial = nil
		}
		out = AppendFrame(out, c.flag(), line)
		rest = rest[i+1:]
	}
	c.mu.Unlock()
	if len(out) == 0 {
		return len(b), nil
	}
	if err := c.p.write(out, dl); err != nil {
		return 0, err
	}
	return len(b), nil
}

// nudge writes a keepalive frame at once, if the port takes it without
// waiting: the board learns a new flag now rather than with the next
// frame.
func (c *frameConn) nudge() {
	select {
	case <-c.closed:
		return
	default:
	}
	r := wreq{b: AppendFrame(nil, c.flag(), nil), done: make(chan error, 1)}
	select {
	case c.p.wq <- r:
	default: // a write is under way; its frames, or the next, carry the flag
	}
}

func (c *frameConn) Close() error {
	c.once.Do(func() { close(c.closed) })
	return nil
}

func (c *frameConn) LocalAddr() net.Addr  { return c.local }
func (c *frameConn) RemoteAddr() net.Addr { return c.local }

func (c *frameConn) SetDeadline(t time.Time) error {
	c.SetReadDeadline(t)
	return c.SetWriteDeadline(t)
}

func (c *frameConn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	c.rdl = t
	c.mu.Unlock()
	return nil
}

func (c *frameConn) SetWriteDeadline(t time.Time) error {
	c.mu.Lock()
	c.wdl = t
	c.mu.Unlock()
	return nil
}

// serialAddr names a serial port as a net.Addr.
type serialAddr string

func (a serialAddr) Network() string { return "serial" }
func (a serialAddr) String() string  { return string(a) }

// logRare logs at a decreasing rate: the first few occurrences, then each
// power of two.
func logRare(log *slog.Logger, count uint64, msg string, args ...any) {
	if count <= 8 || count&(count-1) == 0 {
		log.Warn(msg, append([]any{"count", count}, args...)...)
	}
}

// attachLoop runs l-style sessions on p until ctx ends or the port fails:
// attach is called with a fresh conn each time the previous session ends.
func attachLoop(ctx context.Context, p *portIO, mk func() *frameConn, attach func(context.Context, net.Conn) error) error {
	for {
		c := mk()
		err := attach(ctx, c)
		select {
		case <-p.done:
			return p.err
		default:
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if errors.Is(err, link.ErrClosed) {
			return err
		}
		// Otherwise an outage of the serial link: the next session starts
		// at once (a session that hears nothing ends after T).
	}
}
