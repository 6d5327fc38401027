package link

import (
	"context"
	"fmt"
	"time"
)

// Message is a new message from the peer, as given to Config.Deliver.
type Message struct {
	ID      uint8
	Payload string // without LF
	// Restart is set on the first message of a restarted peer.
	Restart bool
	// Window is the receive window once this message is accepted. A
	// process that keeps exactly-once delivery across its own restarts
	// stores it together with the message (see Config.Resume).
	Window Window
}

// ReadLine returns the next message from the peer, without its LF. It
// blocks until one arrives, ctx is done, or the link is closed and every
// received line has been read (ErrClosed). Each message is returned once,
// even when the peer repeated it.
func (l *Link) ReadLine(ctx context.Context) (string, error) {
	if l.cfg.Deliver != nil {
		return "", ErrNoQueue
	}
	l.mu.Lock()
	if err := l.await(ctx, &l.rqChanged, func() bool { return l.rqHead < len(l.rq) }, "read"); err != nil {
		l.mu.Unlock()
		return "", err
	}
	s := l.rq[l.rqHead]
	l.rq[l.rqHead] = ""
	l.rqHead++
	l.rqRoom.Notify()
	if l.rqHead == len(l.rq) {
		l.rq, l.rqHead = l.rq[:0], 0
	}
	if l.promote() {
		l.unlockFlush(l.sess)
	} else {
		l.mu.Unlock()
	}
	return s, nil
}

// deferredAck is a queued message whose ACK waits for room in the first
// RecvQueue places of the receive queue. stale: its sender has restarted
// since, so the id now names another message and is not ACKed.
type deferredAck struct {
	id    uint8
	stale bool
}

// promote ACKs the deferred messages that ReadLine's progress has moved
// into the first RecvQueue places of the queue, and reports whether it
// queued an ACK on the current session. l.mu is held.
func (l *Link) promote() bool {
	queued := false
	for len(l.rqDefer) > 0 && len(l.rq)-l.rqHead-len(l.rqDefer) < l.cfg.RecvQueue {
		d := l.rqDefer[0]
		l.rqDefer = l.rqDefer[1:]
		if d.stale {
			continue
		}
		if s := l.sess; s != nil && !s.dead {
			s.ack(d.id)
			queued = true
		} else {
			// No socket to carry it: it goes out on the next one. A
			// legacy peer does not repeat a qos=false message, and holds
			// its next qos+wait write until the ACK comes.
			l.owed = append(l.owed, d.id)
		}
	}
	if len(l.rqDefer) == 0 {
		l.rqDefer = nil
	}
	return queued
}

// payOwed queues the ACKs owed since an earlier socket (see promote),
// once the first line has arrived on this one: not within a greeting,
// and not after the peer's new 00 has shown that it restarted (receive
// drops them then). l.mu is held.
func (s *session) payOwed() {
	if s.dead || len(s.l.owed) == 0 {
		return
	}
	s.l.log.Debug("deferred ACKs owed since an earlier socket", "node", s.l.cfg.ID, "acks", len(s.l.owed))
	for _, id := range s.l.owed {
		s.ack(id)
	}
	s.l.owed = nil
}

// deferred reports whether message id waits in the queue for its ACK.
// l.mu is held.
func (l *Link) deferred(id uint8) bool {
	for _, d := range l.rqDefer {
		if d.id == id && !d.stale {
			return true
		}
	}
	return false
}

// Buffered returns how many received lines wait for ReadLine.
func (l *Link) Buffered() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.rq) - l.rqHead
}

// receive handles one message on session s, queuing its ACK if it is
// delivered (the read loop writes the ACKs of a batch of lines at once).
// Only the read loop of the current session calls it, so the window cannot
// change between the check and the commit.
//
// The receive queue holds RecvQueue acknowledged lines, then as many again
// whose ACK is deferred until ReadLine has made room for them: the peer's
// writes that wait for an ACK stop, as with TCP flow control, while its
// ACKs and keepalives are still read, and a message the peer will not
// repeat (qos=false) is not lost. Only when those places are full too does
// the read loop stop reading, for up to T/2, and then leave the message
// for the peer to repeat.
func (l *Link) receive(s *session, id uint8, p []byte) {
	l.mu.Lock()
	l.lastKA = time.Time{}
	first := !s.gotMsg
	s.gotMsg = true
	now := time.Now()
	if first && s.ret != nil {
		l.judgeReturn(s, id, p)
		s.kick() // what it redelivers
	}
	v, why := l.win.check(id, p, first, s.greet, now, l.cfg.RepeatHorizon)
	if why != byRule {
		l.judged(s, id, why, v, now)
	}
	if v == duplicate {
		l.stats.Duplicates++
		if !l.deferred(id) { // a deferred one is ACKed when its turn comes
			s.ack(id)
		}
		l.mu.Unlock()
		return
	}
	if l.cfg.Deliver == nil {
		if !l.waitRoom(s) {
			l.stats.Refused++
			n := l.stats.Refused
			l.mu.Unlock()
			l.logBad(n, "receive queue full: message not acknowledged, the peer will repeat it", "id", fmt.Sprintf("%02x", id), "queue", 2*l.cfg.RecvQueue)
			return
		}
		if v == restart {
			for i := range l.rqDefer { // the old life's ids name nothing now
				l.rqDefer[i].stale = true
			}
			l.owed = nil
		}
		l.rq = append(l.rq, string(p))
		l.rqChanged.Notify()
		if len(l.rqDefer) > 0 || len(l.rq)-l.rqHead > l.cfg.RecvQueue {
			l.rqDefer = append(l.rqDefer, deferredAck{id: id})
			l.stats.Deferred++
			l.accept(id, p, v, now)
		} else {
			l.commit(s, id, p, v, now)
		}
		l.mu.Unlock()
		return
	}
	w := l.win
	w.accept(id, p, v, now)
	s.flushAsync() // earlier ACKs go out while Deliver works
	l.mu.Unlock()
	err := l.cfg.Deliver(s.ctx, Message{ID: id, Payload: string(p), Restart: v == restart, Window: w})
	l.mu.Lock()
	defer l.mu.Unlock()
	if err != nil {
		l.stats.Refused++
		l.logBad(l.stats.Refused, "delivery failed: message not acknowledged, the peer will repeat it", "id", fmt.Sprintf("%02x", id), "err", err)
		return
	}
	l.commit(s, id, p, v, now)
}

// waitRoom waits, up to T/2, for room in the receive queue (RecvQueue
// acknowledged lines plus RecvQueue deferred ones), and reports whether
// there is room. Meanwhile the socket is not read, so TCP flow control
// slows the sender down: a burst that the application reads a little late
// loses nothing, not even qos=false messages; only a stalled application
// makes messages wait for a repeat. l.mu is held.
func (l *Link) waitRoom(s *session) bool {
	full := func() bool { return len(l.rq)-l.rqHead >= 2*l.cfg.RecvQueue }
	if !full() {
		return true
	}
	s.flushAsync() // earlier ACKs go out while we wait
	t := time.NewTimer(l.t / 2)
	defer t.Stop()
	for full() {
		ch := l.rqRoom.Wait()
		l.mu.Unlock()
		select {
		case <-ch:
		case <-t.C:
			l.mu.Lock()
			return !full()
		case <-s.done:
			l.mu.Lock()
			return false
		}
		l.mu.Lock()
	}
	return true
}

// commit accepts a delivered message and ACKs it. l.mu is held.
func (l *Link) commit(s *session, id uint8, p []byte, v verdict, now time.Time) {
	l.accept(id, p, v, now)
	s.ack(id)
}

// accept records a delivered message in the window and the counters.
// l.mu is held.
func (l *Link) accept(id uint8, p []byte, v verdict, now time.Time) {
	l.win.accept(id, p, v, now)
	l.noteIn(id, p)
	if v == restart {
		l.ackedInLife = 0 // a new process: an empty queue
	}
	if id == 0 {
		l.zeroGen++ // the marks of the last 00 are stale
	}
	l.stats.Received++
	l.stats.LastReceived = now
	if v == restart {
		l.stats.PeerRestarts++
		l.emit(Event{Kind: PeerRestart, ID: l.cfg.ID, Time: l.stats.LastReceived, Connects: l.connects})
	}
}
