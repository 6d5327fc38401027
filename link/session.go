package link

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/tether-iot/tether/internal/wire"
)

// session is one socket attached to a link. Its read loop runs on the
// goroutine that called Attach; its writes go through one flusher
// goroutine, started when there are bytes to write and gone when there are
// none; its timers (keepalive, repeats, write pause) are time.AfterFunc
// callbacks. All its fields but conn are guarded by the link's mu.
type session struct {
	l      *Link
	conn   net.Conn
	remote string
	done   chan struct{}   // closed when the session ends
	ctx    context.Context // for Deliver (only then): cancelled when it ends
	cancel context.CancelCauseFunc

	dead     bool
	err      error
	out      []byte // bytes waiting for the flusher
	spare    []byte
	flushing bool
	flushers sync.WaitGroup // the flusher goroutine or inline writer
	raw      rawWriter      // for writes that never block; raw.rc nil: always a goroutine

	paused bool     // write pause: messages held
	gotMsg bool     // a message has arrived on this socket (see Window)
	greet  Greeting // what the peer wrote first on this socket
	// awaitGreet: we greeted (a node), so a Tether server answers with its
	// own greeting in its first bytes.
	awaitGreet bool
	ret        *returnCheck // a returning peer's first message is judged (peer.go)
	lastAck    *outMsg      // the last line read was its ACK (pace.go)
	lastAckAt  time.Time
	ka         *time.Timer // keepalive: fires after T/4 without a write
	wroteAt    time.Time   // the last write's end
	// answered: the write under way answers the peer's keepalive, so the
	// peer leads the keepalives: ours waits T/16 more than T/4 after it,
	// and the peer's next one (due T/4 after its last) is answered first
	// instead of both timers firing (one wakeup per period, not two).
	answered bool
	pause    *time.Timer
	retx     *time.Timer // fires at the head of inflight's deadline
	retxOn   bool
	inflight []flight // qos transmissions in deadline order

	// Byte accounting, for the marks (evidence.go).
	tcp     syscall.RawConn // the TCP socket under conn; nil if none
	wroteN  uint64          // bytes of out written to conn
	taken   int             // bytes a writer has taken from out and not yet accounted
	marks   []mark
	probing atomic.Bool // an ACK of the peer's 00 awaits the peer's TCP ACK
	// ackedZero: the peer's TCP acknowledged our ACK of its 00 (of
	// generation ackedGen) on this socket.
	ackedZero bool
	ackedGen  uint64
	stopped   atomic.Bool // fail has run: reads and writes end at once
}

// aLongTimeAgo is a deadline in the past: it wakes a blocked read or write
// at once.
var aLongTimeAgo = time.Unix(1, 0)

// flight is one transmission of a qos message, to be repeated at deadline
// unless acknowledged first.
type flight struct {
	m        *outMsg
	sendNo   int
	deadline time.Time
}

// Attach runs the protocol on conn until the socket fails, ctx is done or
// the link is closed, and returns why (never nil): an outage reason such
// as ErrTimeout or ErrPeerClosed, ctx's error, or ErrClosed. conn is
// closed when Attach returns.
//
// It returns ErrBusy at once, closing nothing, if another socket is
// attached and live: the legacy server's rule for a duplicate ID. If the
// previous socket is still ending, Attach waits for it first.
//
// Bytes that conn has already delivered to the caller (after a node's ID
// line, say) can be given back by wrapping conn so that its Read returns
// them first.
//
// Writes take one of two paths, chosen once by whether conn implements
// syscall.Conn (as *net.TCPConn and *net.UnixConn do). With it (on Unix),
// bytes go straight to the socket through SyscallConn, without blocking,
// on the writer's own goroutine; only what the socket does not take at
// once is left to a flusher goroutine, which calls conn.Write. Without it
// (net.Pipe, *tls.Conn, most wrappers), every write is conn.Write on a
// flusher goroutine. So a wrapper that overrides Write but also exposes
// SyscallConn (by embedding a *net.TCPConn, say) is bypassed for most
// bytes: such a wrapper must not have a SyscallConn method.
func (l *Link) Attach(ctx context.Context, conn net.Conn) error {
	return l.AttachWith(ctx, conn)
}

// AttachWith is Attach with options: what the peer wrote first on the
// socket (Greeted), what we wrote with our ID (the option Greeting
// returns).
func (l *Link) AttachWith(ctx context.Context, conn net.Conn, opts ...AttachOption) error {
	var o attachOpts
	for _, opt := range opts {
		opt(&o)
	}
	s, err := l.begin(ctx, conn, o)
	if err != nil {
		return err
	}
	stop := context.AfterFunc(ctx, func() {
		l.mu.Lock()
		s.fail(fmt.Errorf("link %s: %w", l.cfg.ID, context.Cause(ctx)))
		l.mu.Unlock()
	})
	l.mu.Lock()
	l.unlockFlush(s) // the first keepalive, and messages queued meanwhile
	err = s.readLoop()
	stop()
	l.mu.Lock()
	s.fail(err)
	err = s.err
	l.mu.Unlock()
	s.flushers.Wait()
	l.mu.Lock()
	s.settle(err) // every write accounted, the socket still open
	s.checkOverflow(err)
	l.mu.Unlock()
	s.conn.Close()
	l.mu.Lock()
	l.unlockWindow() // the evidence found as the socket ended
	l.mu.Lock()
	l.sess = nil
	l.sessGone.Notify()
	l.mu.Unlock()
	return err
}

// begin attaches conn as the link's session.
func (l *Link) begin(ctx context.Context, conn net.Conn, o attachOpts) (*session, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for l.sess != nil && !l.closed {
		if !l.sess.dead {
			return nil, ErrBusy
		}
		ch := l.sessGone.Wait()
		l.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			l.mu.Lock()
			return nil, fmt.Errorf("link %s: attach: %w", l.cfg.ID, ctx.Err())
		}
		l.mu.Lock()
	}
	if l.closed {
		return nil, ErrClosed
	}
	s := &session{l: l, conn: conn, paused: l.cfg.WritePause > 0, greet: o.greet, tcp: l.tcpOf(conn),
		awaitGreet: o.greeted && l.cfg.UpOnFirstLine}
	if a := conn.RemoteAddr(); a != nil {
		s.remote = a.String()
	}
	s.done = make(chan struct{})
	if l.cfg.Deliver != nil {
		s.ctx, s.cancel = context.WithCancelCause(context.Background())
	}
	l.sess = s
	l.connects++
	l.lastKA = time.Time{} // the silence of the outage is no keepalive interval
	l.stats.Remote = s.remote
	if !l.cfg.UpOnFirstLine {
		l.setUp(true, s.remote, nil)
	}
	s.ka = time.AfterFunc(l.t/4, s.keepalive)
	l.peerChange(s, o.peer) // before our greeting: a new peer gets a new sequence
	var early *outMsg
	if !l.cfg.UpOnFirstLine {
		// A keepalive at once lets a node come up without waiting T/4.
		// A node writes none: what it writes with its ID is its greeting.
		s.out = wire.AppendKeepalive(s.out)
		if o.greet != GreetNone {
			early = s.answerGreeting()
		}
	}
	// A deadline left by the caller (a node's ID write, say) would fail
	// the non-blocking writes once it expires: the link sets its own.
	conn.SetWriteDeadline(time.Time{})
	if sc, ok := conn.(syscall.Conn); ok {
		if rc, err := sc.SyscallConn(); err == nil && canTryWrite {
			s.raw.rc = rc
		}
	}
	l.requeue()
	if o.sentZero != nil {
		s.sentEarly(o.sentZero, true)
	}
	if early != nil {
		s.sentEarly(early, false)
	}
	s.kick()
	return s, nil
}

// fail ends the session with err, once. l.mu is held.
func (s *session) fail(err error) {
	if s.dead {
		return
	}
	s.dead, s.err = true, err
	close(s.done)
	if s.cancel != nil {
		s.cancel(err)
	}
	// Wake the reader and any writer without closing the socket: Attach
	// closes it once they are done, after it has read what TCP says about
	// the lines it wrote (evidence.go).
	s.stopped.Store(true)
	s.conn.SetDeadline(aLongTimeAgo)
	for _, t := range []*time.Timer{s.ka, s.pause, s.retx} {
		if t != nil {
			t.Stop()
		}
	}
	s.out, s.spare, s.inflight = nil, nil, nil
	s.l.setUp(false, "", err)
	s.l.changed.Notify()
}

// readLoop reads and handles lines until the socket fails.
func (s *session) readLoop() error {
	l := s.l
	lr := wire.NewLineReader(&deadlineReader{s: s, first: true}, l.cfg.MaxLine, nil)
	first := true
	for {
		line, err := lr.ReadLine()
		if errors.Is(err, wire.ErrLineTooLong) {
			l.mu.Lock()
			l.stats.TooLong++
			n := l.stats.TooLong
			l.mu.Unlock()
			l.logBad(n, "line too long: discarded up to its end", "max", l.cfg.MaxLine, "remote", s.remote)
			continue
		}
		if err != nil {
			return readError(err)
		}
		wasFirst := first
		if first {
			first = false
			if l.cfg.UpOnFirstLine {
				l.mu.Lock()
				if !s.dead {
					l.setUp(true, s.remote, nil)
					s.kick()
				}
				l.unlockFlush(s)
			}
		}
		s.handle(line)
		if wasFirst {
			l.mu.Lock()
			s.payOwed() // the batch's flush below writes them
			l.mu.Unlock()
		}
		if !lr.HasLine() { // the batch is done: its ACKs go out at once
			l.mu.Lock()
			l.unlockFlush(s)
			if l.winDirty.Load() {
				l.mu.Lock()
				l.unlockWindow()
			}
		}
	}
}

// handle acts on one line.
func (s *session) handle(line []byte) {
	l := s.l
	f, err := wire.Parse(line)
	now := time.Now()
	if err != nil {
		l.mu.Lock()
		var n uint64
		if errors.Is(err, wire.ErrNotUTF8) {
			l.stats.NotUTF8++
			n = l.stats.NotUTF8
		} else {
			l.stats.Malformed++
			n = l.stats.Malformed
		}
		l.lastKA = time.Time{}
		l.mu.Unlock()
		l.logBad(n, "bad line ignored", "err", err, "line", truncate(line, 40), "remote", s.remote)
		return
	}
	switch f.Kind {
	case wire.Keepalive:
		l.mu.Lock()
		s.lastLine(nil, now)
		if !l.lastKA.IsZero() {
			l.stats.PeerKeepalive = ewma(l.stats.PeerKeepalive, now.Sub(l.lastKA))
		}
		l.lastKA = now
		echo := s.echoKeepalive(now)
		l.mu.Unlock()
		if echo && l.cfg.OnKeepalive != nil {
			l.cfg.OnKeepalive()
		}
	case wire.Ack:
		l.mu.Lock()
		l.lastKA = time.Time{}
		s.lastLine(l.acked(f.ID, now), now)
		l.mu.Unlock()
	case wire.Msg:
		l.mu.Lock()
		s.lastLine(nil, now)
		l.mu.Unlock()
		l.receive(s, f.ID, f.Payload)
	}
}

// ewma averages keepalive intervals, weighting the newest by 1/8.
func ewma(avg, d time.Duration) time.Duration {
	if avg == 0 {
		return d
	}
	return avg + (d-avg)/8
}

func truncate(b []byte, n int) string {
	if len(b) > n {
		return fmt.Sprintf("%q...", b[:n])
	}
	return fmt.Sprintf("%q", b)
}

// readError maps a socket read error to an outage reason.
func readError(err error) error {
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded):
		return ErrTimeout
	case errors.Is(err, io.EOF):
		return ErrPeerClosed
	}
	return err
}

// deadlineReader reads from the session's socket with a fresh deadline for
// every read: an outage is T without a single byte.
type deadlineReader struct {
	s     *session
	first bool
}

func (r *deadlineReader) Read(p []byte) (int, error) {
	l := r.s.l
	d := l.t
	if r.first {
		d = l.cfg.FirstTimeout
	}
	if err := r.s.conn.SetReadDeadline(time.Now().Add(d)); err != nil {
		return 0, err
	}
	if r.s.stopped.Load() { // fail may have set its deadline before ours
		return 0, net.ErrClosed
	}
	n, err := r.s.conn.Read(p)
	if n > 0 && r.first {
		r.first = false
		l.mu.Lock()
		if r.s.awaitGreet {
			r.s.greet = parseAnswer(p[:n])
		}
		r.s.firstBytes()
		l.mu.Unlock()
	}
	if n > 0 && r.s.probing.Load() {
		l.mu.Lock()
		r.s.probe()
		l.mu.Unlock()
	}
	return n, err
}

// firstBytes starts the write pause's countdown. l.mu is held.
func (s *session) firstBytes() {
	if s.dead || !s.paused {
		return
	}
	s.pause = time.AfterFunc(s.l.cfg.WritePause, func() {
		s.l.mu.Lock()
		s.pause = nil // fired: let the timer go
		if !s.dead {
			s.paused = false
			s.kick()
		}
		s.l.unlockFlush(s)
	})
}

// ack queues the ACK of id. l.mu is held.
func (s *session) ack(id uint8) {
	if s.dead {
		return
	}
	s.out = wire.AppendAck(s.out, id)
	if id == 0 && s.l.win.zero {
		s.addMark(mark{kind: markAckZero, gen: s.l.zeroGen})
	}
}

// kick moves the link's send queue onto the socket when it may carry
// messages. l.mu is held.
func (s *session) kick() {
	l := s.l
	if s.dead || s.paused || !l.up || len(l.sendq) == 0 {
		return
	}
	now := time.Now()
	held := 0
	for i, m := range l.sendq {
		if z := l.zeroOut; z != nil && m != z && !m.acked {
			// Nothing follows 00 until it is acknowledged: after a
			// sequence restart (peer.go) the messages renumbered after
			// it wait.
			held = copy(l.sendq, l.sendq[i:])
			break
		}
		l.sendq[i] = nil
		m.queued = false
		if m.acked {
			continue
		}
		s.out = append(s.out, m.line...)
		if m == l.zeroOut {
			s.addMark(mark{kind: markOwnZero, msg: m})
		}
		m.sent++
		m.lastSent = now
		if m.sent == 1 && !m.renumbered {
			l.stats.Sent++
			if m.qos {
				l.stats.SentQoS++
			}
		} else {
			l.stats.Repeats++
		}
		if m.qos {
			s.inflight = append(s.inflight, flight{m: m, sendNo: m.sent, deadline: now.Add(l.t)})
		}
	}
	clear(l.sendq[held:])
	l.sendq = l.sendq[:held]
	l.changed.Notify() // Drain waits for the send queue to empty
	if !s.retxOn && len(s.inflight) > 0 {
		s.armRetx(now)
	}
}

// armRetx sets the repeat timer for the head of inflight. l.mu is held.
func (s *session) armRetx(now time.Time) {
	d := s.inflight[0].deadline.Sub(now)
	if s.retx == nil {
		s.retx = time.AfterFunc(d, s.repeat)
	} else {
		s.retx.Reset(d)
	}
	s.retxOn = true
}

// repeat queues again every qos message whose ACK is overdue.
func (s *session) repeat() {
	l := s.l
	l.mu.Lock()
	defer l.unlockFlush(s)
	s.retxOn = false
	if s.dead {
		return
	}
	now := time.Now()
	for len(s.inflight) > 0 {
		f := s.inflight[0]
		if !f.m.acked && f.m.sent == f.sendNo {
			if f.deadline.After(now) {
				break
			}
			if !f.m.queued {
				f.m.queued = true
				l.sendq = append(l.sendq, f.m)
			}
		}
		s.inflight[0] = flight{}
		s.inflight = s.inflight[1:]
	}
	if len(s.inflight) == 0 {
		s.inflight = nil
	}
	s.kick()
	if !s.retxOn && len(s.inflight) > 0 {
		s.armRetx(now)
	}
}

// echoKeepalive answers the peer's keepalive with one of ours if
// Config.AnswerKeepalives is set and this side has written nothing for
// T/8: ours would be due within T/8 anyway. The T/8 floor stops two
// answering ends from answering each other. The read batch's flush writes
// it. l.mu is held.
func (s *session) echoKeepalive(now time.Time) bool {
	if !s.l.cfg.AnswerKeepalives || s.dead || s.flushing || len(s.out) > 0 || now.Sub(s.wroteAt) < s.l.t/8 {
		return false
	}
	s.out = wire.AppendKeepalive(s.out)
	s.answered = true
	return true
}

// keepalive writes a keepalive: the link has written nothing for T/4,
// unless a write (an answer to the peer's keepalive, say) is under way or
// came in while the timer fired; that write re-arms the timer.
func (s *session) keepalive() {
	l := s.l
	l.mu.Lock()
	if s.dead || s.flushing || len(s.out) > 0 || time.Since(s.wroteAt) < l.t/8 {
		l.mu.Unlock()
		return
	}
	s.out = wire.AppendKeepalive(s.out) // the write resets s.ka
	l.unlockFlush(s)
	if l.cfg.OnKeepalive != nil {
		l.cfg.OnKeepalive()
	}
}
