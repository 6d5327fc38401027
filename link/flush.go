package link

import (
	"errors"
	"net"
	"os"
	"time"
)

// Writing. A session's bytes accumulate in s.out under l.mu. Whoever
// queued them writes them right away on its own goroutine (the
// application's Write, the read loop's ACKs, a timer's keepalive), with a
// write that never blocks; whatever the socket does not take at once goes
// to a flusher goroutine, which blocks (up to T) and batches everything
// queued meanwhile. One writer at a time: s.flushing. So the common case
// costs no goroutine hand-off, and no reader ever blocks on a writer.

// unlockFlush releases l.mu and, if s has bytes and no writer, writes
// them. Every path that queues bytes ends with it.
func (l *Link) unlockFlush(s *session) { l.unlockWrite(s, true) }

// unlockBatch is unlockFlush for qos=false writes, whose callers do not
// wait for the peer: the bytes go to a flusher goroutine, so that a
// stream of them is batched into few writes.
func (l *Link) unlockBatch(s *session) { l.unlockWrite(s, false) }

func (l *Link) unlockWrite(s *session, inline bool) {
	if s == nil || s.raw.rc == nil || !inline {
		if s != nil {
			s.flushAsync()
		}
		l.mu.Unlock()
		return
	}
	if s.flushing || s.dead || len(s.out) == 0 {
		l.mu.Unlock()
		return
	}
	s.flushing = true
	s.flushers.Add(1)
	l.mu.Unlock()
	s.writeInline()
}

// flushAsync starts a flusher goroutine if s has bytes and no writer.
// l.mu is held.
func (s *session) flushAsync() {
	if s.flushing || s.dead || len(s.out) == 0 {
		return
	}
	s.flushing = true
	s.flushers.Add(1)
	go s.flush()
}

// writeInline writes s.out without blocking, for two rounds at most, then
// hands what is left to a flusher goroutine. The caller holds the writer's
// turn (s.flushing) but not l.mu.
func (s *session) writeInline() {
	l := s.l
	l.mu.Lock()
	for range 2 {
		if s.dead || len(s.out) == 0 {
			break
		}
		buf := s.out
		s.out, s.spare = s.spare[:0], nil
		s.taken = len(buf)
		l.mu.Unlock()
		n, err := s.raw.tryWrite(buf)
		l.mu.Lock()
		s.taken = 0
		s.accounted(n)
		if err != nil {
			s.fail(err)
			break
		}
		if n < len(buf) { // the socket is full: the rest goes first
			s.out = append(append(make([]byte, 0, len(buf)-n+len(s.out)), buf[n:]...), s.out...)
			break
		}
		s.wrote(buf)
	}
	if !s.dead && len(s.out) > 0 {
		l.mu.Unlock()
		go s.flush() // takes over the writer's turn
		return
	}
	s.doneWriting()
	l.mu.Unlock()
	s.flushers.Done()
}

// flush writes out the session's bytes, blocking up to T for each write and
// batching whatever accumulates meanwhile, and exits when there is nothing
// left. It runs with the writer's turn.
func (s *session) flush() {
	l := s.l
	defer s.flushers.Done()
	l.mu.Lock()
	defer l.mu.Unlock()
	for !s.dead && len(s.out) > 0 {
		buf := s.out
		s.out, s.spare = s.spare[:0], nil
		s.taken = len(buf)
		l.mu.Unlock()
		n := 0
		err := s.conn.SetWriteDeadline(time.Now().Add(l.t))
		if err == nil && s.stopped.Load() { // fail may have set its deadline before ours
			err = net.ErrClosed
		}
		if err == nil {
			n, err = s.conn.Write(buf)
		}
		if err == nil {
			// Clear it: an expired deadline would fail the next
			// non-blocking write too.
			err = s.conn.SetWriteDeadline(time.Time{})
		}
		l.mu.Lock()
		s.taken = 0
		s.accounted(n) // what conn took, even if the socket failed since
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				err = ErrWriteTimeout
			}
			s.fail(err)
			break
		}
		s.wrote(buf)
	}
	s.doneWriting()
}

// wrote records a complete write of buf. l.mu is held.
func (s *session) wrote(buf []byte) {
	if s.dead {
		return
	}
	if cap(buf) <= 64<<10 {
		s.spare = buf[:0]
	}
	d := s.l.t / 4
	if s.answered {
		d += s.l.t / 16
		s.answered = false
	}
	s.ka.Reset(d)
	s.wroteAt = time.Now()
	if len(buf) >= outLimit {
		s.l.changed.Notify() // writers may wait for room
	}
}

// doneWriting gives up the writer's turn. l.mu is held.
func (s *session) doneWriting() {
	s.flushing = false
	s.l.changed.Notify() // Drain waits for the flush
	if len(s.out) == 0 && cap(s.out) > 4096 {
		s.out, s.spare = nil, nil
	}
}
