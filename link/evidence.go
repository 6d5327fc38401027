package link

import (
	"errors"
	"fmt"
	"syscall"
	"time"

	"github.com/tether-iot/tether/internal/wire"
)

// Evidence about message 00 (see Window). A session follows two kinds of
// line until it knows whether the peer's TCP stack acknowledged them:
//
//   - our ACK of the peer's 00: once the peer's stack has it, the peer
//     process read it or died, so the peer's next identical 00 is a new
//     life (Window rule 2); and the time the ACK was written starts the
//     horizon (rule 3);
//   - our own 00, unacknowledged: if the peer's stack has it, the peer
//     got it, so on the next socket we say we repeat it (GreetRepeat).
//
// Offsets come from the kernel (tcpProgress), below any TLS layer. A line
// is located first in the session's own bytes (wroteN counts what conn
// took), then, once conn has taken it, by the socket's written offset.

type markKind uint8

const (
	markAckZero markKind = iota // our ACK of the peer's 00
	markOwnZero                 // our own message 00
)

// mark follows one line written on a session.
type mark struct {
	kind markKind
	pos  uint64  // the session's bytes up to the line's end
	end  uint64  // the socket's written offset once conn took it; 0: not yet
	gen  uint64  // markAckZero: the 00 it acknowledges (Link.zeroGen)
	msg  *outMsg // markOwnZero
}

// maxMarks bounds the marks of a session (a peer repeating its 00 over
// and over on one socket): the oldest are dropped.
const maxMarks = 8

// addMark follows the line just queued at the end of s.out. l.mu is held.
func (s *session) addMark(m mark) {
	m.pos = s.wroteN + uint64(s.taken) + uint64(len(s.out))
	if len(s.marks) >= maxMarks {
		s.marks = append(s.marks[:0], s.marks[1:]...)
	}
	s.marks = append(s.marks, m)
}

// accounted records that conn took n more of the session's bytes, and
// locates the marked lines it took. l.mu is held.
func (s *session) accounted(n int) {
	s.wroteN += uint64(n)
	if len(s.marks) == 0 {
		return
	}
	l := s.l
	var written uint64
	measured, ok := false, false
	kept := s.marks[:0]
	for _, m := range s.marks {
		if m.end != 0 || m.pos > s.wroteN {
			kept = append(kept, m)
			continue
		}
		if m.kind == markAckZero && m.gen == l.zeroGen && l.win.zero {
			l.win.zeroAt = time.Now().UnixMilli() // rule 3 counts from here
			l.winDirty.Store(true)
		}
		if !measured && s.tcp != nil {
			written, _, ok = tcpProgress(s.tcp)
			measured = true
		}
		if !ok {
			continue // no evidence to be had on this socket
		}
		m.end = written
		if m.kind == markAckZero {
			s.probing.Store(true)
		}
		kept = append(kept, m)
	}
	s.marks = kept
}

// probe looks for the peer's TCP ACK of our ACKs of its 00, at a read
// wakeup. l.mu is held.
func (s *session) probe() {
	if s.dead {
		return
	}
	s.resolve(false, nil)
}

// settle resolves the marks as the session ends, once every write has
// been accounted and before the socket is closed; err is why it ends.
// l.mu is held.
func (s *session) settle(err error) {
	s.resolve(true, err)
	l := s.l
	if s.ackedZero && s.ackedGen == l.zeroGen && l.win.zeroAcked && errors.Is(err, syscall.ECONNRESET) {
		l.win.zeroReset = true // rule 2 after a reset: ambiguous
		l.winDirty.Store(true)
	}
	s.marks = nil
	s.probing.Store(false)
}

// resolve checks the measured marks against the socket's acknowledged
// offset. Our own 00 is resolved only at the end: it counts as received
// if the peer's stack acknowledged it and the socket did not end in a
// reset (a peer that closes a socket with unread bytes resets it: they
// may never have been read). l.mu is held.
func (s *session) resolve(end bool, err error) {
	if s.tcp == nil || len(s.marks) == 0 {
		return
	}
	_, acked, ok := tcpProgress(s.tcp)
	if !ok {
		return
	}
	l := s.l
	probing := false
	kept := s.marks[:0]
	for _, m := range s.marks {
		switch {
		case m.end == 0:
		case m.kind == markAckZero && acked >= m.end:
			if m.gen == l.zeroGen && l.win.zero && !l.win.zeroAcked {
				l.win.zeroAcked = true
				l.winDirty.Store(true)
				s.ackedZero, s.ackedGen = true, m.gen
			}
			continue
		case m.kind == markAckZero:
			probing = true
		case end && acked >= m.end && !errors.Is(err, syscall.ECONNRESET):
			m.msg.reached = true
			continue
		}
		kept = append(kept, m)
	}
	s.marks = kept
	s.probing.Store(probing)
}

// sentEarly records that m, our unacknowledged 00, went with our greeting
// (GreetRepeat): written with the node's ID before the socket was attached
// (written), or queued with the server's answer (marked already). It is
// one more transmission, on this socket, to be repeated after T. l.mu is
// held.
func (s *session) sentEarly(m *outMsg, written bool) {
	l := s.l
	if m != l.zeroOut || m.acked {
		return
	}
	for i, q := range l.sendq {
		if q == m {
			l.sendq = append(l.sendq[:i], l.sendq[i+1:]...)
			m.queued = false
			break
		}
	}
	now := time.Now()
	m.sent++
	m.lastSent = now
	l.stats.Repeats++
	s.inflight = append(s.inflight, flight{m: m, sendNo: m.sent, deadline: now.Add(l.t)})
	if !s.retxOn {
		s.armRetx(now)
	}
	if written && s.tcp != nil {
		if end, _, ok := tcpProgress(s.tcp); ok {
			s.marks = append(s.marks, mark{kind: markOwnZero, msg: m, end: end})
		}
	}
}

// zeroState tells what our greeting says about our message 00 (see
// Greeting), and returns it if it awaits its ACK. l.mu is held.
func (l *Link) zeroState() (Greeting, *outMsg) {
	m := l.zeroOut
	switch {
	case m == nil || m.sent == 0:
		return GreetFresh, nil
	case m.reached:
		return GreetRepeat, m
	}
	return GreetNone, m
}

// answerGreeting completes the server's first keepalive, just queued, into
// its own greeting, for a peer that greeted (a Tether client): a second
// keepalive (fresh), then our 00 (repeat); nothing more when we cannot
// tell. A legacy server never writes two lines at once as it attaches a
// socket (its next keepalive comes T/4 later, a message after the write
// pause), so the client tells the answer from them. It returns our 00 if
// it went with the answer. l.mu is held.
func (s *session) answerGreeting() *outMsg {
	g, m := s.l.zeroState()
	if g == GreetNone {
		return nil
	}
	s.out = wire.AppendKeepalive(s.out)
	if g == GreetFresh {
		return nil
	}
	s.out = append(s.out, m.line...)
	s.addMark(mark{kind: markOwnZero, msg: m})
	return m
}

// parseAnswer tells a Tether server's greeting from the first bytes a
// node reads on a socket: two keepalives (fresh), then possibly a complete
// message 00 (repeat). One keepalive alone is a legacy server's (or an
// older Tether server's) first line: GreetNone.
func parseAnswer(b []byte) Greeting {
	if len(b) < 2 || b[0] != '\n' || b[1] != '\n' {
		return GreetNone
	}
	if ParseGreeting(b[2:]) == GreetRepeat {
		return GreetRepeat
	}
	return GreetFresh
}

// unlockWindow releases l.mu and, if the evidence about the peer's 00
// changed since the last call, gives the window to Config.OnWindow. Only
// the goroutine of Attach calls it (the read loop, or Attach as it
// returns), so that it never runs concurrently with Deliver.
func (l *Link) unlockWindow() {
	if !l.winDirty.Swap(false) || l.cfg.OnWindow == nil {
		l.mu.Unlock()
		return
	}
	w := l.win
	l.mu.Unlock()
	l.cfg.OnWindow(w)
}

// AttachOption changes how Attach runs a socket.
type AttachOption func(*attachOpts)

type attachOpts struct {
	peer     string   // the peer the socket comes from (Peer)
	greet    Greeting // what the peer wrote with its ID
	greeted  bool     // we wrote a greeting with our ID (a node)
	sentZero *outMsg  // our 00, written with our ID (GreetRepeat)
}

// Greeted tells Attach what the peer wrote right after its ID line on
// this socket (see ParseGreeting): the server's side of Window rule 1.
func Greeted(g Greeting) AttachOption { return func(o *attachOpts) { o.greet = g } }

// Greeting returns the bytes a node writes right after its ID line on a
// new socket, in the same write (see Window, rule 1), and the option that
// tells Attach what they were:
//
//   - a keepalive (GreetFresh) when this life's 00 has never been
//     written, or has been acknowledged;
//   - the 00 itself (GreetRepeat) when it awaits its ACK and the server's
//     TCP stack acknowledged it on a socket that did not end in a reset;
//     Attach then counts it as sent, and repeats it after T as usual (a
//     legacy server drops it);
//   - nothing (GreetNone) when it was written but that is not known: the
//     server then decides on its own evidence, as for a legacy node.
//
// A Tether server answers a greeting with its own, about its own 00, in
// its first write on the socket: two keepalives (fresh), then its 00
// (repeat), or the usual single keepalive when it cannot tell. A node
// that greeted reads it from its first bytes (a legacy server never
// writes two lines at once as a socket is attached).
func (l *Link) Greeting() ([]byte, AttachOption) {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch g, m := l.zeroState(); g {
	case GreetFresh:
		return []byte{'\n'}, func(o *attachOpts) { o.greeted = true }
	case GreetRepeat:
		return append([]byte(nil), m.line...), func(o *attachOpts) { o.greeted, o.sentZero = true, m }
	}
	return nil, func(*attachOpts) {}
}

// judged reports how a candidate repeat of 00 was classified (see
// Window): the ambiguous ones are counted, logged and sent as events.
// l.mu is held.
func (l *Link) judged(s *session, id uint8, why reason, v verdict, now time.Time) {
	evidence := map[reason]string{
		byGreeting:      "greeting " + s.greet.String(),
		byEvidence:      "the node's TCP acknowledged our ACK of it",
		byHorizon:       "no TCP acknowledgement of our ACK, older than the horizon",
		byNoHorizon:     "the horizon is zero",
		byUnknown:       "its age is unknown (a window saved by an older version)",
		byResetEvidence: "the node's TCP acknowledged our ACK of it, but that socket ended in a reset (the node may have closed it with the ACK unread)",
		byAge:           "no TCP acknowledgement of our ACK, within the horizon",
	}[why]
	age := l.win.age(now)
	if !why.ambiguous() {
		l.log.Debug("identical 00 on a new socket", "node", l.cfg.ID, "verdict", verdictName(v), "evidence", evidence, "age", age)
		return
	}
	var n uint64
	kind, msg := AmbiguousRestart, "identical 00 on a new socket taken for a restart: delivered again (a duplicate if the node only repeated it after a long outage)"
	if v == duplicate {
		kind, msg = AmbiguousRepeat, "identical 00 on a new socket taken for a repeat: not delivered (lost if the node restarted without reading our ACK)"
		l.stats.AmbiguousRepeats++
		n = l.stats.AmbiguousRepeats
	} else {
		l.stats.AmbiguousRestarts++
		n = l.stats.AmbiguousRestarts
	}
	detail := fmt.Sprintf("id %02x, %s, age %v, horizon %v", id, evidence, age, max(l.cfg.RepeatHorizon, 0))
	l.emit(Event{Kind: kind, ID: l.cfg.ID, Time: now, Connects: l.connects, Remote: s.remote, Detail: detail})
	l.logBad(n, msg, "id", fmt.Sprintf("%02x", id), "age", age, "evidence", evidence, "horizon", max(l.cfg.RepeatHorizon, 0), "remote", s.remote)
}

func verdictName(v verdict) string {
	switch v {
	case duplicate:
		return "repeat"
	case restart:
		return "restart"
	}
	return "new"
}
