package legacy

import (
	"bytes"
	"time"
	"unicode/utf8"

	"github.com/tether-iot/tether/internal/notify"
)

// reader is Client._reader with _readline: it reads lines, sets the status
// on every complete line, handles ACKs and messages, and fails the session
// when nothing arrives for T (2T until the first ACK or message).
func (p *proc) reader(s *session) {
	defer s.wg.Done()
	tm := p.n.tm
	p.mu.Lock()
	c := p.connects // count successful connects
	p.mu.Unlock()
	to := tm.firstRead // extended timeout on the first pass for a slow server
	var buf []byte
	rd := make([]byte, 4096)
	for {
		for {
			i := bytes.IndexByte(buf, '\n')
			if i < 0 {
				break
			}
			line := buf[:i+1]
			buf = buf[i+1:]
			p.setUp(s) // got at least one line after an outage
			if len(line) == 1 {
				continue // keepalive
			}
			to = tm.t
			if !p.handleLine(s, line, c) {
				return
			}
		}
		s.conn.SetReadDeadline(time.Now().Add(to))
		n, err := s.conn.Read(rd)
		buf = append(buf, rd[:n]...)
		if err != nil && n == 0 {
			p.fail(s, "reader fail: "+err.Error())
			return
		}
	}
}

func (p *proc) setUp(s *session) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.sess != s || p.up {
		return
	}
	select {
	case <-s.failed:
	default:
		p.up = true
		p.sig.broadcast()
	}
}

// handleLine processes one ACK or message line (with its LF). It reports
// false when the reader must stop: a non-hex id or a payload that is not
// UTF-8 kill the legacy reader task without an outage; a full line queue
// is an outage, after the ACK went out.
func (p *proc) handleLine(s *session, line []byte, c int) bool {
	mid, ok := parseMid(string(line[:2]))
	if !ok {
		p.n.log.Warn("reader task died: message id is not hex", "line", string(line))
		return false
	}
	if len(line) == 3 { // ACK: remove from the expected list
		p.mu.Lock()
		p.acks.discard(mid)
		p.sig.broadcast()
		p.mu.Unlock()
		return true
	}
	// The legacy reader starts a task that sends the ACK before it queues
	// the message; sending it here gives the same bytes in the same order.
	p.send(s.ctx, []byte(fmtMid(mid)+"\n"))
	p.mu.Lock()
	defer p.mu.Unlock()
	if mid == 0 { // the server has power cycled
		p.win.clear()
	}
	if p.win.isNew(mid) {
		payload := line[2:]
		if !utf8.Valid(payload) {
			p.n.log.Warn("reader task died: invalid UTF-8", "line", string(line))
			return false
		}
		if len(p.lineq) >= lineQueueSize {
			p.mu.Unlock()
			p.fail(s, "reader fail: overflow")
			p.mu.Lock()
			return false
		}
		p.lineq = append(p.lineq, string(payload))
		p.sig.broadcast()
	}
	if c == p.connects {
		p.connects++
	}
	return true
}

// keepalive is Client._keepalive: a keepalive when nothing was written for
// T/4.
func (p *proc) keepalive(s *session) {
	defer s.wg.Done()
	for {
		select {
		case <-s.failed:
			return
		case <-s.ctx.Done():
			return
		default:
		}
		p.mu.Lock()
		due := p.n.tm.ka - time.Since(p.lastWr)
		p.mu.Unlock()
		if due <= 0 {
			p.send(s.ctx, []byte("\n"))
		} else if !notify.Sleep(s.ctx, due) {
			return
		}
	}
}
