package link

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/tether-iot/tether/internal/wire"
)

// outLimit bounds the bytes queued on a socket that is not draining
// (a peer that stopped reading): writes wait rather than grow memory.
const outLimit = 256 << 10

// Write sends one line to the peer. A final LF is optional; a line with a
// LF elsewhere, an empty line, or one longer than Config.MaxLine is an
// error (ErrNewline, ErrEmpty, ErrTooLong), as is text that is not UTF-8.
//
// By default (QoS(true), Wait(true)) Write waits until every earlier qos
// message has been acknowledged, sends the line, and returns once the peer
// has acknowledged it, repeating it across outages as needed: the peer
// receives it exactly once, in order. With Wait(false) it is sent at once.
// With QoS(false) Write waits for the link to be up, hands the line to the
// socket and returns; an outage may lose it.
//
// If ctx ends before the line has been given its id, nothing is sent and
// Write returns ctx's error. If it ends later, Write also returns ctx's
// error, but the line stays queued and is still delivered exactly once.
// Write returns ErrClosed once the link is closed.
//
// The first message a link sends (id 00) is always repeated until
// acknowledged, and no later message is sent before that: the peer can
// then always tell a repeat of 00 from a restart (see Window).
func (l *Link) Write(ctx context.Context, line string, opts ...WriteOption) error {
	o := writeOptsOf(opts)
	p, err := wire.CheckPayload(line, l.cfg.MaxLine)
	if err != nil {
		return fmt.Errorf("link %s: write: %w", l.cfg.ID, payloadError(err))
	}
	l.mu.Lock()
	if !l.ready(o) {
		err = l.await(ctx, &l.changed, func() bool { return l.ready(o) }, "write")
	}
	var m *outMsg
	if err == nil {
		m, err = l.assign(p, o)
	}
	if o.qos {
		l.unlockFlush(l.sess) // the caller waits for the ACK: no hand-off
	} else {
		l.unlockBatch(l.sess)
	}
	switch {
	case err == nil:
	case errors.Is(err, ErrClosed) || ctx.Err() != nil:
		return err
	default:
		return fmt.Errorf("link %s: write: %w", l.cfg.ID, err)
	}
	if !o.qos {
		return nil
	}
	return l.waitAck(ctx, m)
}

// waitAck waits for the ACK of m. An ACK that came before the link was
// closed (Shutdown drains, then closes) is a success whichever of the two
// the select sees first.
func (l *Link) waitAck(ctx context.Context, m *outMsg) error {
	select {
	case <-m.done:
		return nil
	case <-l.done:
		select {
		case <-m.done:
			return nil
		default:
			return ErrClosed
		}
	case <-ctx.Done():
		return fmt.Errorf("link %s: write %02x: %w (it stays queued)", l.cfg.ID, m.id, ctx.Err())
	}
}

// writeOptsOf returns the defaults with opts applied. Apart from Write,
// so that the options, whose address goes to functions the compiler
// cannot see, are on the heap only when there are options.
func writeOptsOf(opts []WriteOption) writeOpts {
	if len(opts) == 0 {
		return writeOpts{qos: true, wait: true}
	}
	return applyWriteOpts(opts)
}

func applyWriteOpts(opts []WriteOption) writeOpts {
	o := writeOpts{qos: true, wait: true}
	for _, opt := range opts {
		opt(&o)
	}
	return o
}

// ready reports whether a write with options o may take an id now.
// l.mu is held.
func (l *Link) ready(o writeOpts) bool {
	switch {
	case l.closed:
		return false
	case l.zeroOut != nil:
		return false // nothing follows 00 until it is acknowledged
	case l.span() >= uint64(l.cfg.MaxInFlight):
		return false
	case l.sess != nil && len(l.sess.out) >= outLimit:
		return false
	case o.qos && o.wait && len(l.pending) > 0:
		return false
	case !o.qos && !l.up:
		return false
	}
	return !l.cfg.Pace.On() || l.paced(time.Now())
}

// assign gives the payload its id and queues it. l.mu is held.
func (l *Link) assign(p string, o writeOpts) (*outMsg, error) {
	id := l.next
	if o.reuse {
		id = o.reuseID
		if l.pending[id] != nil {
			return nil, ErrIDInUse
		}
	}
	if o.assign != nil {
		if err := o.assign(id); err != nil {
			return nil, err
		}
	}
	if !o.reuse {
		l.next = NextID(id)
	}
	m := &outMsg{
		id:     id,
		serial: l.serial,
		line:   wire.AppendMsg(make([]byte, 0, len(p)+3), id, p),
		qos:    o.qos || id == 0,
		queued: true,
		assign: o.assign,
	}
	l.serial++
	if l.cfg.Pace.On() {
		l.paceTake(time.Now()) // no clock read per message when not pacing
	}
	if m.qos {
		m.done = make(chan struct{})
		l.pending[id] = m
		l.order = append(l.order, m)
		if id == 0 {
			l.zeroOut = m
		}
	}
	l.sendq = append(l.sendq, m)
	if l.sess != nil {
		l.sess.kick()
	}
	return m, nil
}

// acked handles the ACK of id and returns the message it acknowledged, if
// any. l.mu is held.
func (l *Link) acked(id uint8, now time.Time) *outMsg {
	m := l.pending[id]
	if m == nil || m.sent == 0 {
		return nil // the ACK of a qos=false message, or a stale one
	}
	l.ackedInLife++
	delete(l.pending, id)
	m.acked = true
	close(m.done)
	if m == l.zeroOut {
		l.zeroOut = nil
		if l.sess != nil {
			l.sess.kick() // the messages renumbered after it (peer.go)
		}
	}
	if l.peerKey != "" {
		if len(l.curAcked) >= maxForeign {
			l.curAcked = l.curAcked[1:]
		}
		l.curAcked = append(l.curAcked, ackedMsg{id: id, payload: string(m.line[2 : len(m.line)-1])})
		l.curAckedN++
	}
	l.stats.Acked++
	if m.sent == 1 { // Karn: a repeat's ACK may answer either copy
		rtt := now.Sub(m.lastSent)
		l.stats.LastAckRTT = rtt
		if l.cfg.OnAckRTT != nil {
			l.cfg.OnAckRTT(rtt)
		}
	}
	l.changed.Notify()
	return m
}

// Drain blocks until every message written so far has been written to the
// socket and every qos message acknowledged, ctx is done, or the link is closed.
func (l *Link) Drain(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.await(ctx, &l.changed, func() bool {
		flushed := l.sess == nil || l.sess.dead || (len(l.sess.out) == 0 && !l.sess.flushing)
		return len(l.pending) == 0 && len(l.sendq) == 0 && flushed
	}, "drain")
}
