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
	l.mu.Unlock()
	return s, nil
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
func (l *Link) receive(s *session, id uint8, p []byte) {
	l.mu.Lock()
	l.lastKA = time.Time{}
	first := !s.gotMsg
	s.gotMsg = true
	v := l.win.check(id, p, first)
	if v == duplicate {
		l.stats.Duplicates++
		s.ack(id)
		l.mu.Unlock()
		return
	}
	if l.cfg.Deliver == nil {
		if !l.waitRoom(s) {
			l.stats.Refused++
			n := l.stats.Refused
			l.mu.Unlock()
			l.logBad(n, "receive queue full: message not acknowledged, the peer will repeat it", "id", fmt.Sprintf("%02x", id), "queue", l.cfg.RecvQueue)
			return
		}
		l.rq = append(l.rq, string(p))
		l.rqChanged.Notify()
		l.commit(s, id, p, v)
		l.mu.Unlock()
		return
	}
	w := l.win
	w.accept(id, p, v)
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
	l.commit(s, id, p, v)
}

// waitRoom waits, up to T/2, for room in the receive queue, and reports
// whether there is room. Meanwhile the socket is not read, so TCP flow
// control slows the sender down: a burst that the application reads a
// little late loses nothing, not even qos=false messages; only a stalled
// application makes messages wait for a repeat. l.mu is held.
func (l *Link) waitRoom(s *session) bool {
	if len(l.rq)-l.rqHead < l.cfg.RecvQueue {
		return true
	}
	s.flushAsync() // earlier ACKs go out while we wait
	t := time.NewTimer(l.t / 2)
	defer t.Stop()
	for len(l.rq)-l.rqHead >= l.cfg.RecvQueue {
		ch := l.rqRoom.Wait()
		l.mu.Unlock()
		select {
		case <-ch:
		case <-t.C:
			l.mu.Lock()
			return len(l.rq)-l.rqHead < l.cfg.RecvQueue
		case <-s.done:
			l.mu.Lock()
			return false
		}
		l.mu.Lock()
	}
	return true
}

// commit accepts a delivered message and ACKs it. l.mu is held.
func (l *Link) commit(s *session, id uint8, p []byte, v verdict) {
	l.win.accept(id, p, v)
	l.stats.Received++
	l.stats.LastReceived = time.Now()
	s.ack(id)
	if v == restart {
		l.stats.PeerRestarts++
		l.emit(Event{Kind: PeerRestart, ID: l.cfg.ID, Time: l.stats.LastReceived, Connects: l.connects})
	}
}
