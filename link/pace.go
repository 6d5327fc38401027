package link

import (
	"errors"
	"fmt"
	"io"
	"syscall"
	"time"
)

// Original nodes whose application reads slowly. The original
// micropython-iot client acknowledges a message before it queues it for
// its application, and its queue holds LegacyQueue lines: the next one is
// acknowledged and then dropped, and the client drops its link (it calls
// that an overflow). Writing with wait, one message per round trip, a
// sender with a backlog outruns an application that reads one line in a
// few hundred milliseconds. Nothing on the wire tells the sender how far
// behind the application is, so:
//
//   - Config.Pace keeps the sender behind an assumed reading pace;
//   - the overflow's signature (the peer closes its socket right after
//     acknowledging one of our messages, having acknowledged LegacyQueue
//     or more since it started) is reported as a probable loss of that
//     message (Stats.ProbableLosses, a ProbableLoss event).

// LegacyQueue is how many received lines the original micropython-iot
// client holds for its application.
const LegacyQueue = 20

// Pace limits how far the messages written to the peer run ahead of its
// application, for peers that acknowledge a message before their
// application reads it (the original client; a Tether client defers its
// ACKs instead: see Config.RecvQueue). Up to Ahead messages may be
// written at once; then one more each Every, the application's slowest
// reading pace. Repeats are not counted. The zero Pace does not pace.
type Pace struct {
	// Ahead is how many messages may be written beyond the application's
	// reads. For the original client, less than LegacyQueue (20), with a
	// margin: 10, say. Zero with Every set means 1.
	Ahead int
	// Every is the time the application takes to read a line, at worst.
	Every time.Duration
}

// On reports whether p paces.
func (p Pace) On() bool { return p.Every > 0 }

func (p Pace) check() error {
	switch {
	case p.Every < 0 || p.Ahead < 0:
		return fmt.Errorf("link: negative Pace %+v", p)
	case p.Ahead > 0 && p.Every == 0:
		return fmt.Errorf("link: Pace.Ahead %d without Every", p.Ahead)
	}
	return nil
}

// paced reports whether the pace lets a new message go at now; if not, it
// arms a timer that wakes the writers when it does. l.mu is held.
func (l *Link) paced(now time.Time) bool {
	p := l.cfg.Pace
	if !p.On() {
		return true
	}
	ahead := max(p.Ahead, 1)
	// The generic cell rate algorithm: a message may go once now is past
	// paceTAT less the burst's worth of Every.
	due := l.paceTAT.Add(-time.Duration(ahead-1) * p.Every)
	if !now.Before(due) {
		return true
	}
	if l.paceTimer == nil {
		l.paceTimer = time.AfterFunc(due.Sub(now), l.paceWake)
	} else {
		l.paceTimer.Reset(due.Sub(now))
	}
	return false
}

// paceWake wakes the writers waiting for the pace.
func (l *Link) paceWake() {
	l.mu.Lock()
	l.changed.Notify()
	l.mu.Unlock()
}

// paceTake counts a new message against the pace. l.mu is held.
func (l *Link) paceTake(now time.Time) {
	if p := l.cfg.Pace; p.On() {
		l.paceTAT = maxTime(l.paceTAT, now).Add(p.Every)
	}
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// lastLine notes the last line read on s: the ACK of one of our messages
// (ackOf), or anything else (nil). l.mu is held.
func (s *session) lastLine(ackOf *outMsg, now time.Time) {
	s.lastAck, s.lastAckAt = ackOf, now
}

// checkOverflow looks, as s ends with err, for the original client's
// overflow: it closes its socket right after acknowledging a message,
// once its queue is full. l.mu is held.
func (s *session) checkOverflow(err error) {
	l := s.l
	m := s.lastAck
	if m == nil || !peerEnded(err) || s.greet != GreetNone || l.ackedInLife < LegacyQueue ||
		time.Since(s.lastAckAt) > l.t/4 {
		return
	}
	l.stats.ProbableLosses++
	n := l.stats.ProbableLosses
	detail := fmt.Sprintf("id %02x: the node closed its link right after acknowledging it, with %d acknowledged since it started: an original client whose 20-line queue was full drops the message it acknowledged (pace the node: see Config.Pace)", m.id, l.ackedInLife)
	l.emit(Event{Kind: ProbableLoss, ID: l.cfg.ID, Time: time.Now(), Connects: l.connects, Remote: s.remote, Detail: detail})
	l.logBad(n, "probable loss: the node closed its link right after acknowledging a message, as an original client does when its queue of unread lines is full (the message is dropped)",
		"id", fmt.Sprintf("%02x", m.id), "acked_since_start", l.ackedInLife, "queue", LegacyQueue, "remote", s.remote)
}

// peerEnded reports whether err, a session's end, came from the peer
// closing or resetting its socket (our writes may see it first).
func peerEnded(err error) bool {
	return errors.Is(err, ErrPeerClosed) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.EPIPE) || errors.Is(err, io.ErrClosedPipe)
}
