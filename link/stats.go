package link

import "time"

// Stats are a link's counters and state, for status pages and metrics.
type Stats struct {
	ID       string
	Up       bool
	Since    time.Time // last up/down change (or creation)
	Connects int       // sockets attached; reconnects are Connects-1
	Remote   string    // address of the current or last socket

	Sent     uint64 // messages written (first transmissions)
	SentQoS  uint64 // of which qos messages
	Repeats  uint64 // qos transmissions after the first
	Acked    uint64 // qos messages acknowledged by the peer
	Pending  int    // qos messages awaiting their ACK
	Queued   int    // messages waiting to be sent or acknowledged
	Received uint64 // new messages delivered to the application
	Buffered int    // received messages not yet read

	Duplicates   uint64 // repeats from the peer, dropped (ACKed unless their ACK is deferred)
	Deferred     uint64 // messages queued with their ACK deferred until read (RecvQueue lines were unread)
	Refused      uint64 // messages not ACKed: queue full or Deliver failed
	PeerRestarts uint64 // new 00 from the peer (a restart, not an outage)
	// An identical 00, first on a new socket, that neither a greeting nor
	// TCP evidence could classify (see Window, rules 3 and 4): taken for
	// a repeat within Config.RepeatHorizon (a loss if the peer had
	// restarted), or for a restart past it (a duplicate if it had not).
	AmbiguousRepeats  uint64
	AmbiguousRestarts uint64

	// Peers (the server's Peer option: see peer.go). SeqRestarts counts
	// our send sequence restarted with 00 because the peer changed;
	// Renumbered the messages sent again then under a new id (a
	// duplicate if the new peer was the same device and had one);
	// ForeignAcked the messages another peer acknowledged while a
	// returning one was away (it may never have had them); TwoDevices
	// the returns that one device cannot have made; Redelivered the
	// messages sent again to the returning device then.
	SeqRestarts  uint64
	Renumbered   uint64
	ForeignAcked uint64
	TwoDevices   uint64
	Redelivered  uint64

	// ProbableLosses counts the original client's overflow signature: the
	// peer closed its socket right after acknowledging one of our
	// messages, with LegacyQueue or more acknowledged since it started
	// (see Pace).
	ProbableLosses uint64
	LastReceived   time.Time
	LastAckRTT     time.Duration // round trip of the last qos message ACKed at once

	// PeerKeepalive is the peer's keepalive interval, averaged. Peers send
	// one after T/4 of silence, so 4*PeerKeepalive estimates the peer's T.
	PeerKeepalive time.Duration

	// Bad input from the peer, by reason.
	TooLong   uint64 // lines longer than MaxLine
	Malformed uint64 // lines that are not keepalive, ACK or message
	NotUTF8   uint64 // messages whose payload is not UTF-8

	EventsDropped uint64 // events that found a Notify channel full
}

// PeerTimeout estimates the peer's T from its keepalive rhythm, or returns
// 0 before two keepalives in a row have been seen.
func (s Stats) PeerTimeout() time.Duration { return 4 * s.PeerKeepalive }

// Stats returns a copy of the link's counters and state.
func (l *Link) Stats() Stats {
	l.mu.Lock()
	defer l.mu.Unlock()
	st := l.stats
	st.ID = l.cfg.ID
	st.Up = l.up
	st.Since = l.since
	st.Connects = l.connects
	st.Pending = len(l.pending)
	st.Queued = len(l.pending)
	for _, m := range l.sendq {
		if !m.qos {
			st.Queued++
		}
	}
	st.Buffered = len(l.rq) - l.rqHead
	return st
}
