package link

import (
	"time"

	"github.com/tether-iot/tether/internal/rarelog"
)

// EventKind tells the events of a link apart.
type EventKind uint8

const (
	// Up: a socket is attached and the link carries messages again.
	Up EventKind = iota + 1
	// Down: an outage; the socket is gone and the link waits for another.
	Down
	// PeerRestart: the peer started afresh (it sent a new message 00), as
	// opposed to an outage, after which it resumes its sequence.
	PeerRestart
	// AmbiguousRepeat: an identical 00 first on a new socket, which no
	// greeting or TCP evidence classified, was taken for a repeat within
	// Config.RepeatHorizon (see Window): not delivered; lost if the peer
	// had in fact restarted. Detail says why.
	AmbiguousRepeat
	// AmbiguousRestart: the same, taken for a restart past the horizon:
	// delivered; a duplicate if the peer had in fact only repeated it.
	AmbiguousRestart
	// AddrChanged: the node connected from another address than its last
	// socket's (sent by the server: server.Sighting). Detail says how
	// ("moved from ...", "back from ...", "concurrent from ...").
	AddrChanged
	// ForeignAcks: a peer came back (see Peer) after others had
	// acknowledged messages meanwhile: it may never have had them.
	// Detail lists their ids and count.
	ForeignAcks
	// TwoDevices: a returning peer resumed its own sequence while another
	// had gone on with the ID's: two devices share the ID. Detail says
	// how; the messages the other acknowledged are sent again.
	TwoDevices
	// ProbableLoss: the peer closed its socket right after acknowledging
	// one of our messages, as the original client does when its queue of
	// unread lines is full: that message is probably lost (see Pace).
	// Detail names its id.
	ProbableLoss
)

// String returns "up", "down", "restart", "ambiguous-repeat",
// "ambiguous-restart", "address", "foreign-acks", "two-devices" or
// "probable-loss", as the log lines say.
func (k EventKind) String() string {
	switch k {
	case Up:
		return "up"
	case Down:
		return "down"
	case PeerRestart:
		return "restart"
	case AmbiguousRepeat:
		return "ambiguous-repeat"
	case AmbiguousRestart:
		return "ambiguous-restart"
	case AddrChanged:
		return "address"
	case ForeignAcks:
		return "foreign-acks"
	case TwoDevices:
		return "two-devices"
	case ProbableLoss:
		return "probable-loss"
	}
	return "unknown"
}

// Event is a change of a link's state.
type Event struct {
	Kind     EventKind
	ID       string    // the link's ID (the node's)
	Time     time.Time // when it happened
	Connects int       // sockets attached so far; reconnects are Connects-1
	Remote   string    // Up and the warnings: the peer's address
	Err      error     // Down: the reason
	Detail   string    // the warnings (AmbiguousRepeat ... TwoDevices): what happened
}

// emit queues ev for the dispatcher and the subscribers. l.mu is held.
func (l *Link) emit(ev Event) {
	if l.evClosed {
		return
	}
	for ch := range l.subs {
		select {
		case ch <- ev:
		default:
			l.stats.EventsDropped++
		}
	}
	l.evq = append(l.evq, ev)
	if !l.evRunning {
		l.evRunning = true
		l.evWG.Add(1)
		go l.dispatch()
	}
}

// dispatch logs and hands out queued events in order, then exits: an idle
// link has no dispatcher goroutine.
func (l *Link) dispatch() {
	defer l.evWG.Done()
	for {
		l.mu.Lock()
		if len(l.evq) == 0 {
			l.evRunning = false
			l.evq = nil
			l.mu.Unlock()
			return
		}
		ev := l.evq[0]
		l.evq = l.evq[1:]
		l.mu.Unlock()
		l.logEvent(ev)
		if l.cfg.OnEvent != nil {
			l.cfg.OnEvent(ev)
		}
	}
}

func (l *Link) logEvent(ev Event) {
	switch ev.Kind {
	case Up:
		l.log.Info("link up", "node", ev.ID, "state", "up", "remote", ev.Remote, "connects", ev.Connects, "reconnects", ev.Connects-1)
	case Down:
		l.log.Info("link down", "node", ev.ID, "state", "down", "reason", errString(ev.Err), "reconnects", ev.Connects-1)
	case PeerRestart:
		l.log.Info("peer restarted", "node", ev.ID, "state", "up", "event", "restart", "reconnects", ev.Connects-1)
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// Notify makes the link send its events to ch, like signal.Notify: the
// link never blocks on ch, and an event that finds it full is dropped
// (Stats.EventsDropped counts them), so give ch room.
func (l *Link) Notify(ch chan<- Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.subs == nil {
		l.subs = make(map[chan<- Event]struct{})
	}
	l.subs[ch] = struct{}{}
}

// Stop undoes Notify: no more events are sent to ch once it returns.
func (l *Link) Stop(ch chan<- Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.subs, ch)
}

// logBad logs bad input from the peer at a decreasing rate (see rarelog).
func (l *Link) logBad(count uint64, msg string, args ...any) {
	rarelog.Warn(l.log, count, msg, append([]any{"node", l.cfg.ID}, args...)...)
}
