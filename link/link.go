package link

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tether-iot/tether/internal/notify"
)

// Link is one end of a resilient line link: the long-lived state of the
// conversation with one peer, which outlives any number of sockets. The
// server keeps one Link per node ID; a client is one Link.
//
// A Link carries no socket of its own: Attach runs the protocol on one,
// until it fails. Meanwhile ReadLine and Write work across outages: a qos
// message written during an outage is sent when the next socket comes up.
//
// All methods are safe for concurrent use.
type Link struct {
	cfg  Config
	log  *slog.Logger
	t    time.Duration
	done chan struct{} // closed by Close

	mu       sync.Mutex
	closed   bool
	sess     *session         // the attached socket, live or ending; nil if none
	sessGone notify.Broadcast // sess became nil
	up       bool
	since    time.Time
	connects int
	changed  notify.Broadcast // up/down, ACKs, room in the send buffer, close

	// Sending.
	next        uint8             // id of the next message
	serial      uint64            // messages given an id so far
	pending     map[uint8]*outMsg // qos messages awaiting their ACK
	order       []*outMsg         // pending, oldest first; acked ones trimmed from the head
	sendq       []*outMsg         // waiting for a live socket (or the write pause)
	zeroOut     *outMsg           // our message 00 until it is acknowledged
	paceTAT     time.Time         // Config.Pace: see paced
	paceTimer   *time.Timer       // wakes the writers held by the pace
	ackedInLife uint64            // messages the peer acknowledged since it started (pace.go)

	// Receiving.
	win       Window
	zeroGen   uint64      // counts the 00s accepted: the marks' generation
	winDirty  atomic.Bool // the evidence in win changed: for Config.OnWindow
	rq        []string    // received, not yet read; rq[rqHead:] are unread
	rqHead    int
	rqDefer   []deferredAck // the last len(rqDefer) lines of rq, not yet ACKed
	owed      []uint8       // deferred ACKs that fell due with no live socket
	rqChanged notify.Broadcast
	rqRoom    notify.Broadcast // ReadLine made room
	lastKA    time.Time        // last keepalive received, zero after other lines

	// Peers (peer.go).
	peerKey     string // the peer of the last socket attached with Peer
	lineages    map[string]*lineage
	changes     uint64 // peer changes so far
	lastIn      uint8  // the last id accepted
	hasLastIn   bool
	curAccepted uint64     // ids accepted since the current peer became current
	curAcked    []ackedMsg // messages it acknowledged (the last maxForeign)
	curAckedN   uint64
	curSince    uint64
	recentIn    []inMsg // the last messages it sent us

	// Events.
	evq       []Event
	evRunning bool
	evClosed  bool
	evWG      sync.WaitGroup
	subs      map[chan<- Event]struct{}

	stats Stats
}

// outMsg is one message given an id.
type outMsg struct {
	id      uint8
	serial  uint64
	line    []byte // id, payload, LF
	qos     bool
	acked   bool
	queued  bool // in Link.sendq
	sent    int  // transmissions so far
	reached bool // the peer's TCP stack acknowledged it (our 00 only)
	// renumbered: sent before under another id (restartSequence).
	renumbered bool
	assign     func(id uint8) error // the Assign option's, called again on a new id
	lastSent   time.Time
	done       chan struct{} // qos: closed on ACK
}

// New returns a Link with no socket. It fails only on an invalid Config.
func New(cfg Config) (*Link, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	return &Link{
		cfg:      cfg,
		log:      cfg.Logger,
		t:        cfg.Timeout,
		done:     make(chan struct{}),
		since:    time.Now(),
		next:     cfg.Resume.Next,
		win:      cfg.Resume.Window,
		pending:  make(map[uint8]*outMsg),
		lineages: make(map[string]*lineage),
	}, nil
}

// ID returns the link's ID (Config.ID).
func (l *Link) ID() string { return l.cfg.ID }

// Timeout returns the link's T.
func (l *Link) Timeout() time.Duration { return l.t }

// Up reports whether the link is up: a socket is attached and live.
func (l *Link) Up() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.up
}

// Connects returns how many sockets have been attached so far; the
// legacy reconnect counter is Connects()-1.
func (l *Link) Connects() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.connects
}

// Done returns a channel closed when the link is closed.
func (l *Link) Done() <-chan struct{} { return l.done }

// WaitUp blocks until the link is up, ctx is done (its error is
// returned) or the link is closed (ErrClosed).
func (l *Link) WaitUp(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.await(ctx, &l.changed, func() bool { return l.up }, "wait for up")
}

// await blocks until cond holds, ctx is done (a wrapped ctx error) or the
// link is closed (ErrClosed), waking each time b is notified. l.mu is held
// on entry and on return; cond is evaluated with it held.
func (l *Link) await(ctx context.Context, b *notify.Broadcast, cond func() bool, op string) error {
	for !cond() {
		if l.closed {
			return ErrClosed
		}
		ch := b.Wait()
		l.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			l.mu.Lock()
			return fmt.Errorf("link %s: %s: %w", l.cfg.ID, op, ctx.Err())
		}
		l.mu.Lock()
	}
	return nil
}

// Snapshot returns the link's sequence state, for Config.Resume.
func (l *Link) Snapshot() Snapshot {
	l.mu.Lock()
	defer l.mu.Unlock()
	return Snapshot{Next: l.next, Window: l.win}
}

// Disconnect ends the socket attached now, if any, as an outage does (a
// Down event whose Err wraps err; Attach returns it), and reports whether
// there was one. The link stays: what is queued waits for the next
// socket. A server uses it to drop a peer it no longer admits.
func (l *Link) Disconnect(err error) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.sess
	if s == nil || s.dead {
		return false
	}
	s.fail(fmt.Errorf("link %s: disconnected: %w", l.cfg.ID, err))
	return true
}

// Close closes the link: the socket, if any, is closed (a Down event),
// blocked calls return ErrClosed, and lines already received can still be
// read. Close waits for the link's goroutines: the event goroutine and
// the attached session's (its flushers, and the Attach call, up to its
// return), so it must not be called from OnEvent or Deliver, and a
// Deliver that ignores its ctx holds it up. It always returns nil.
func (l *Link) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		l.evWG.Wait()
		l.waitSession()
		return nil
	}
	l.closed = true
	close(l.done)
	if l.paceTimer != nil {
		l.paceTimer.Stop()
	}
	if l.sess != nil {
		l.sess.fail(ErrClosed)
	}
	l.evClosed = true
	l.changed.Notify()
	l.rqChanged.Notify()
	l.sessGone.Notify()
	l.mu.Unlock()
	l.evWG.Wait()
	l.waitSession()
	return nil
}

// waitSession waits until no session is attached: Attach has waited for
// its flushers and is returning.
func (l *Link) waitSession() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for l.sess != nil {
		ch := l.sessGone.Wait()
		l.mu.Unlock()
		<-ch
		l.mu.Lock()
	}
}

// setUp records an up/down change. l.mu is held.
func (l *Link) setUp(up bool, remote string, err error) {
	if l.up == up {
		return
	}
	l.up = up
	l.since = time.Now()
	l.changed.Notify()
	ev := Event{Kind: Down, ID: l.cfg.ID, Time: l.since, Connects: l.connects, Err: err}
	if up {
		ev.Kind, ev.Remote = Up, remote
	}
	l.emit(ev)
}

// requeue puts every pending qos message that is not queued back in the
// send queue, all in the order they were first written. l.mu is held.
func (l *Link) requeue() {
	for _, m := range l.order {
		if !m.acked && !m.queued {
			m.queued = true
			l.sendq = append(l.sendq, m)
		}
	}
	sort.Slice(l.sendq, func(i, j int) bool { return l.sendq[i].serial < l.sendq[j].serial })
}

// span is how many ids the oldest pending message lags the next one.
func (l *Link) span() uint64 {
	for len(l.order) > 0 && l.order[0].acked {
		l.order[0] = nil
		l.order = l.order[1:]
	}
	if len(l.order) == 0 {
		l.order = nil
		return 0
	}
	return l.serial - l.order[0].serial
}
