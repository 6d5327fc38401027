package link

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/tether-iot/tether/internal/wire"
)

// Two devices on one ID. A peer that claims a node's ID from another
// address may be the node (it moved) or another device (a board flashed
// with the wrong ID, a cloned SD card, an impostor). Another device breaks
// the real node's stream twice over, silently: it takes the messages sent
// meanwhile (they never reach the node), so that later ids land on stale
// bits of the node's window and are dropped as repeats; and its own
// messages set bits of our window that the node's next messages then hit.
// The server tells the link which peer each socket comes from (Peer: its
// source address), and the link keeps a lineage per peer:
//
//   - When the peer changes, our send sequence restarts with 00, which
//     clears the receiver's window: whoever the new peer is, no stale bit
//     drops our next messages. Messages awaiting their ACK are sent again
//     after the 00, with new ids (Stats.Renumbered: a duplicate if the
//     new peer is the same device and had received one).
//   - Our receive window is saved with the peer left. When a peer comes
//     back, the window becomes the intersection of the one saved when it
//     left and the current one: an id set by another peer meanwhile is
//     new again (a duplicate at worst, never a loss).
//   - The messages acknowledged by other peers since the returning one
//     left are reported (ids, count: Stats.ForeignAcked, a ForeignAcks
//     event): they may never have reached it.
//   - If the returning peer's first message continues its own sequence
//     and not the other peers' (which accepted messages meanwhile), one
//     device cannot have sent both: two devices (Stats.TwoDevices, a
//     TwoDevices event), and the reported messages are sent again to it.

// maxLineages bounds the peers remembered; maxForeign the messages
// remembered per peer for a report.
const (
	maxLineages = 4
	maxForeign  = 256
)

// recentIn is how many of the last messages accepted are remembered, to
// tell a returning peer's repeat of one of them.
const recentIn = 8

// inMsg is a message accepted: its id and the hash of its payload.
type inMsg struct {
	id   uint8
	hash uint64
}

// lineage is what the link keeps of a peer while another is current.
type lineage struct {
	win      Window // the receive window when it was left
	last     uint8  // the last id accepted from it
	hasLast  bool
	recent   []inMsg    // the last messages accepted from it
	accepted uint64     // ids accepted while it was current
	acked    []ackedMsg // messages it acknowledged (the last maxForeign)
	ackedN   uint64     // how many
	since    uint64     // the change that made it current
	left     uint64     // the change that left it
}

// ackedMsg is a message a peer acknowledged.
type ackedMsg struct {
	id      uint8
	payload string
}

// returnCheck is what the first message on a returning peer's socket is
// judged against.
type returnCheck struct {
	key          string
	lastOwn      uint8 // the last id accepted from this peer before it left
	hasOwn       bool
	lastOther    uint8 // the last id accepted from the others since
	hasOther     bool
	otherRecent  []inMsg // the last messages accepted from the others
	otherAccepts uint64
	foreign      []ackedMsg // messages the others acknowledged meanwhile
}

// Peer tells AttachWith which peer the socket comes from: the server
// passes the node's source address. See the comment above for what the
// link does when it changes.
func Peer(key string) AttachOption { return func(o *attachOpts) { o.peer = key } }

// peerChange updates the lineages for a socket from peer key. l.mu is
// held; s is the new session, before requeue.
func (l *Link) peerChange(s *session, key string) {
	if key == "" || key == l.peerKey {
		return
	}
	if l.peerKey == "" {
		l.peerKey = key
		return
	}
	old := l.peerKey
	l.changes++
	l.owed = nil // deferred ACKs of the old peer's messages: not this one's ids
	l.lineages[old] = &lineage{win: l.win, last: l.lastIn, hasLast: l.hasLastIn, recent: l.recentIn, accepted: l.curAccepted,
		acked: l.curAcked, ackedN: l.curAckedN, since: l.curSince, left: l.changes}
	l.curAccepted, l.curAcked, l.curAckedN, l.curSince, l.recentIn = 0, nil, 0, l.changes, nil
	l.peerKey = key
	if back := l.lineages[key]; back != nil {
		delete(l.lineages, key)
		l.comeBack(s, key, back)
	}
	for len(l.lineages) > maxLineages { // forget the one left longest ago
		oldest := ""
		for k, ln := range l.lineages {
			if oldest == "" || ln.left < l.lineages[oldest].left {
				oldest = k
			}
		}
		delete(l.lineages, oldest)
	}
	l.log.Info("peer changed: the send sequence restarts with 00, so that the peer's window holds no stale id",
		"node", l.cfg.ID, "from", old, "to", key)
	l.restartSequence()
}

// comeBack handles the return of peer key, left as back: the report of
// what the others acknowledged, the window's intersection, and the check
// of its first message. l.mu is held.
func (l *Link) comeBack(s *session, key string, back *lineage) {
	rc := &returnCheck{key: key, lastOwn: back.last, hasOwn: back.hasLast}
	var n uint64
	keys := slices.Sorted(maps.Keys(l.lineages))
	for _, k := range keys {
		ln := l.lineages[k]
		if ln.since < back.left {
			continue // current before this peer left
		}
		n += ln.ackedN
		rc.foreign = append(rc.foreign, ln.acked...)
		rc.otherAccepts += ln.accepted
		if ln.hasLast && ln.accepted > 0 {
			rc.lastOther, rc.hasOther = ln.last, true
			rc.otherRecent = append(rc.otherRecent, ln.recent...)
		}
		ln.acked, ln.ackedN = nil, 0 // reported once
	}
	if n > 0 {
		l.stats.ForeignAcked += n
		ids := make([]string, 0, min(len(rc.foreign), 32))
		for _, m := range rc.foreign[:min(len(rc.foreign), 32)] {
			ids = append(ids, fmt.Sprintf("%02x", m.id))
		}
		list := strings.Join(ids, " ")
		if len(rc.foreign) > 32 {
			list += " ..."
		}
		detail := fmt.Sprintf("%d messages acknowledged from %s while the node was away from %s (ids %s): if that was another device, they never reached the node", n, strings.Join(keys, ", "), key, list)
		l.log.Warn("messages acknowledged by another address while the node was away: it may never have had them",
			"node", l.cfg.ID, "count", n, "ids", list, "others", strings.Join(keys, ","), "peer", key)
		l.emit(Event{Kind: ForeignAcks, ID: l.cfg.ID, Time: time.Now(), Connects: l.connects, Remote: s.remote, Detail: detail})
	}
	// An id that only the others set is new again to this peer.
	w := back.win
	for i := range w.bits {
		w.bits[i] &= l.win.bits[i]
	}
	w.any = w.any || l.win.any
	l.win = w
	l.lastIn, l.hasLastIn, l.recentIn = back.last, back.hasLast, back.recent
	s.ret = rc
}

// noteIn remembers message id with payload p as accepted. l.mu is held.
func (l *Link) noteIn(id uint8, p []byte) {
	l.lastIn, l.hasLastIn = id, true
	if l.peerKey == "" {
		return
	}
	l.curAccepted++
	if len(l.recentIn) >= recentIn {
		l.recentIn = append(l.recentIn[:0], l.recentIn[1:]...)
	}
	l.recentIn = append(l.recentIn, inMsg{id: id, hash: hashPayload(p)})
}

// judgeReturn looks at the first message of a returning peer: one that
// continues its own sequence, and neither follows the last the others
// sent nor repeats one of their last ones (same id, same payload), is
// another device's (see the comment above). l.mu is held.
func (l *Link) judgeReturn(s *session, id uint8, p []byte) {
	rc := s.ret
	s.ret = nil
	if id == 0 || !rc.hasOwn || !rc.hasOther || rc.otherAccepts == 0 {
		return // a restart, or nothing to compare: one device could have done it
	}
	if !continues(rc.lastOwn, id) || id == NextID(rc.lastOther) {
		return
	}
	h := hashPayload(p)
	for _, m := range rc.otherRecent {
		if m.id == id && m.hash == h {
			return // a repeat of the others' message: the same device, maybe
		}
	}
	l.stats.TwoDevices++
	detail := fmt.Sprintf("%s resumed its own sequence (id %02x after %02x) while another address had gone on to %02x: two devices share this ID",
		rc.key, id, rc.lastOwn, rc.lastOther)
	l.log.Warn("two devices share the node ID: the returning one resumed its own sequence",
		"node", l.cfg.ID, "peer", rc.key, "id", fmt.Sprintf("%02x", id), "own_last", fmt.Sprintf("%02x", rc.lastOwn),
		"other_last", fmt.Sprintf("%02x", rc.lastOther), "redelivered", len(rc.foreign))
	l.emit(Event{Kind: TwoDevices, ID: l.cfg.ID, Time: time.Now(), Connects: l.connects, Remote: s.remote, Detail: detail})
	// It never had what the other device acknowledged: send it again.
	for _, m := range rc.foreign {
		l.redeliver(m.payload)
	}
}

// continues reports whether id follows last in one sender's sequence: the
// next id, or one of the 64 before it (a repeat).
func continues(last, id uint8) bool {
	if id == NextID(last) {
		return true
	}
	for i, x := 0, last; i < 64; i++ {
		if x == id {
			return true
		}
		if x <= 1 {
			x = 0xff
		} else {
			x--
		}
	}
	return false
}

// redeliver queues payload as a new qos message, after those pending.
// l.mu is held.
func (l *Link) redeliver(payload string) {
	id := l.next
	l.next = NextID(id)
	m := &outMsg{id: id, serial: l.serial, line: wire.AppendMsg(nil, id, payload), qos: true, queued: true,
		done: make(chan struct{})}
	l.serial++
	l.pending[id] = m
	l.order = append(l.order, m)
	if id == 0 {
		l.zeroOut = m
	}
	l.sendq = append(l.sendq, m)
	l.stats.Redelivered++
}

// restartSequence gives every message not yet acknowledged a new id from
// 00, in order; the next message written follows them (00 if there is
// none). l.mu is held.
func (l *Link) restartSequence() {
	var ms []*outMsg
	for _, m := range l.order {
		if !m.acked {
			ms = append(ms, m)
		}
	}
	for _, m := range l.sendq {
		if !m.qos && !m.acked {
			ms = append(ms, m)
		}
	}
	slices.SortFunc(ms, func(a, b *outMsg) int {
		switch {
		case a.serial < b.serial:
			return -1
		case a.serial > b.serial:
			return 1
		}
		return 0
	})
	clear(l.pending)
	l.order = l.order[:0]
	l.zeroOut = nil
	id := uint8(0)
	for _, m := range ms {
		if m.sent > 0 {
			l.stats.Renumbered++
			m.renumbered = true
		}
		payload := string(m.line[2 : len(m.line)-1])
		m.id, m.line, m.sent, m.reached = id, wire.AppendMsg(nil, id, payload), 0, false
		if id == 0 && !m.qos {
			m.qos, m.done = true, make(chan struct{}) // 00 is always repeated until ACKed
		}
		if m.qos {
			l.pending[id] = m
			l.order = append(l.order, m)
		}
		if id == 0 {
			l.zeroOut = m
		}
		if m.assign != nil {
			if err := m.assign(id); err != nil {
				l.log.Error("the new id of a message could not be recorded", "node", l.cfg.ID, "id", fmt.Sprintf("%02x", id), "err", err)
			}
		}
		id = NextID(id)
	}
	l.next = id
	l.stats.SeqRestarts++
}
