package link

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/fnv"
	"time"
)

// NextID returns the id that follows id: 00, 01, ..., ff, then 01 again.
// 00 is used once, by a sender's first message.
func NextID(id uint8) uint8 {
	if id == 0xff {
		return 1
	}
	return id + 1
}

// Window is a receiver's de-duplication state: the legacy 256-bit window
// plus what is needed to tell a repeat of message 00 from a sender
// restart. The zero value is a window that has seen nothing. It is a value
// type: copy it freely, and persist it with MarshalBinary.
//
// # Message 00
//
// A sender's first message is 00, and a repeat of it (its ACK was lost) is
// byte-identical. The legacy receiver cleared its window on every 00, so a
// repeated 00 was delivered twice; taking every identical 00 for a repeat
// loses the first message of every restart that sends the same first line
// (a deep-sleep node's "door closed" on every wake). A 00 is:
//
//   - a repeat (acknowledged, not delivered) when it comes after other
//     messages on its socket and the last 00 accepted had its payload (a
//     sender without wait repeating it);
//   - a late first 00 (delivered without clearing the window) when no 00
//     has been accepted yet and it comes after other messages on its
//     socket (a sender without wait whose 00 was overtaken);
//   - a restart (the window is cleared, the message delivered) when its
//     payload differs from the last 00 accepted, or other ids have been
//     accepted since that 00, or no 00 has been accepted yet;
//   - otherwise (the first message on its socket, identical to the last
//     00 accepted, nothing accepted since) a candidate repeat, decided by
//     the rules below, in order.
//
// Rule 1, the greeting: what a Tether sender wrote first on this socket,
// with its ID (a node) or in answer to the node's greeting (a server; see
// Greeting). A sender that says its 00 never reached this receiver
// (GreetFresh) sends a restart; one that repeats its 00 with its greeting
// (GreetRepeat) sends a repeat. The sender knows: it says repeat only when
// the receiver's TCP stack acknowledged its 00 on a socket that then did
// not end in a reset, and fresh only when it never wrote its 00 before (or
// it has been acknowledged).
//
// Rule 2, TCP evidence (a legacy node writes no greeting): if the sender's
// TCP stack acknowledged one of our ACK lines of that 00, the sender
// process either read the ACK or died; either way a new 00 is a new life:
// a restart. Unless that socket ended in a reset: a peer that closes a
// socket with bytes unread resets it, so a live sender whose own timeout
// fired with our ACK unread (its loop stalled) may repeat its 00. Still a
// restart (a duplicate then, rather than a loss), but an ambiguous one.
//
// Rule 3, the horizon (Config.RepeatHorizon): a legacy sender repeats a
// 00 within about 5T+13 s of the ACK it missed (it repeats after T,
// detects the outage within T, waits 2T, then up to 10 s for WiFi and 3 s
// for it to settle). Past the horizon since that 00's last ACK was written
// (or since it was accepted, if no ACK was), it is a restart; a negative
// horizon makes every candidate a restart. Counted as an ambiguous
// restart: a duplicate if the sender was in a longer outage.
//
// Rule 4: otherwise a repeat, counted as an ambiguous repeat: a loss if
// the sender really restarted within the horizon without its stack having
// acknowledged our ACK (it died with the ACK in flight).
//
// A Tether sender sends nothing after 00 until it is acknowledged and
// always repeats 00, so "nothing accepted since" holds for its repeats.
// Rules 3 and 4, and rule 2 after a reset, are warned about (Stats.AmbiguousRepeats and
// AmbiguousRestarts, AmbiguousRepeat and AmbiguousRestart events); rules 1
// and 2 are exact, except behind a proxy that terminates TCP (its stack,
// not the peer's, then acknowledges the bytes). One case outside the
// candidates is taken for a restart although it is not: a legacy sender
// without wait that repeats its 00, first on a new socket, after later
// messages were acknowledged (an outage within its first messages); the
// messages it repeats are then delivered again.
type Window struct {
	bits     [32]byte
	zero     bool   // a 00 has been accepted
	moved    bool   // an id other than 00 has been accepted since that 00
	zeroHash uint64 // FNV-1a of the payload of that 00
	any      bool   // any message has been accepted
	// Evidence about that 00, for rules 2 and 3.
	zeroAt    int64 // Unix ms of its last ACK written, or of its acceptance; 0: unknown
	zeroAcked bool  // the peer's TCP acknowledged an ACK line of it
	// zeroReset: that acknowledgement came on a socket that ended in a
	// reset, which a peer that closes it with bytes unread sends: the
	// peer's process may never have read our ACK.
	zeroReset bool
}

// verdict classifies an incoming message.
type verdict uint8

const (
	fresh verdict = iota
	duplicate
	restart // a 00 that is not a repeat, after earlier messages
)

// Greeting is what a Tether client writes right after its ID line, in the
// same write, to tell the server about its message 00 (see Window, rule
// 1). A legacy node writes nothing there: GreetNone.
type Greeting uint8

const (
	// GreetNone: no greeting (a legacy node, or a Tether client that
	// cannot tell whether its 00 reached the server).
	GreetNone Greeting = iota
	// GreetFresh, a keepalive after the ID: the client's 00, if it has
	// one on this socket, has never been written before in this life.
	GreetFresh
	// GreetRepeat, the client's 00 after the ID: it repeats a 00 that the
	// server's TCP stack has acknowledged.
	GreetRepeat
)

// String returns "none", "fresh" or "repeat".
func (g Greeting) String() string {
	switch g {
	case GreetFresh:
		return "fresh"
	case GreetRepeat:
		return "repeat"
	}
	return "none"
}

// ParseGreeting tells the greeting from the bytes a server read past a
// node's ID line in the same read (the start of the node's stream): a
// keepalive first is GreetFresh, a complete message 00 first is
// GreetRepeat, anything else GreetNone.
func ParseGreeting(pre []byte) Greeting {
	switch {
	case len(pre) > 0 && pre[0] == '\n':
		return GreetFresh
	case len(pre) > 3 && pre[0] == '0' && pre[1] == '0' && pre[2] != '\n' && bytes.IndexByte(pre, '\n') > 2:
		return GreetRepeat
	}
	return GreetNone
}

// reason says which rule classified a candidate repeat of 00 (see Window).
type reason uint8

const (
	byRule          reason = iota // not a candidate
	byGreeting                    // rule 1
	byEvidence                    // rule 2
	byHorizon                     // rule 3: ambiguous restart
	byNoHorizon                   // rule 3 with a zero horizon: ambiguous restart
	byUnknown                     // rule 3, the age unknown (an old encoding): ambiguous restart
	byResetEvidence               // rule 2 on a socket that ended in a reset: ambiguous restart
	byAge                         // rule 4: ambiguous repeat
)

func (r reason) ambiguous() bool { return r >= byHorizon }

func hashPayload(p []byte) uint64 {
	h := fnv.New64a()
	h.Write(p)
	return h.Sum64()
}

func (w *Window) has(id uint8) bool { return w.bits[id>>3]&(1<<(id&7)) != 0 }

// candidate reports whether a 00 with payload p, first on its socket if
// first, is a candidate repeat (see Window).
func (w *Window) candidate(p []byte, first bool) bool {
	return first && w.zero && !w.moved && w.zeroHash == hashPayload(p)
}

// check tells whether message id with payload p is new, without changing
// w. first reports whether it is the first message on its socket, g what
// the sender said with its ID there; now and horizon serve rule 3.
func (w *Window) check(id uint8, p []byte, first bool, g Greeting, now time.Time, horizon time.Duration) (verdict, reason) {
	if id != 0 {
		if w.has(id) {
			return duplicate, byRule
		}
		return fresh, byRule
	}
	if w.candidate(p, first) {
		switch {
		case g == GreetFresh:
			return restart, byGreeting
		case g == GreetRepeat:
			return duplicate, byGreeting
		case w.zeroAcked && w.zeroReset:
			return restart, byResetEvidence
		case w.zeroAcked:
			return restart, byEvidence
		case horizon <= 0:
			return restart, byNoHorizon
		case w.zeroAt == 0:
			return restart, byUnknown
		case now.Sub(time.UnixMilli(w.zeroAt)) > horizon:
			return restart, byHorizon
		}
		return duplicate, byAge
	}
	if w.zero && !first && w.zeroHash == hashPayload(p) {
		return duplicate, byRule // a sender without wait repeating it
	}
	if !w.zero && !first {
		return fresh, byRule // the first 00 ever, overtaken by later ids
	}
	if w.any {
		return restart, byRule
	}
	return fresh, byRule
}

// age returns how long ago that 00's last ACK was written (or it was
// accepted), or -1 if unknown.
func (w *Window) age(now time.Time) time.Duration {
	if w.zeroAt == 0 {
		return -1
	}
	return now.Sub(time.UnixMilli(w.zeroAt)).Round(time.Millisecond)
}

// accept records message id as delivered at now, as the legacy receiver
// does, given check's verdict v: a restart clears the window first; then
// the id's bit is set and the byte half a window ahead is cleared, so that
// ids can be reused after they wrap.
func (w *Window) accept(id uint8, p []byte, v verdict, now time.Time) {
	if v == restart {
		*w = Window{}
	}
	if id == 0 {
		w.zero, w.zeroHash, w.moved = true, hashPayload(p), false
		w.zeroAt, w.zeroAcked, w.zeroReset = now.UnixMilli(), false, false
	} else {
		w.moved = true
	}
	w.any = true
	w.bits[id>>3] |= 1 << (id & 7)
	w.bits[(id>>3+16)%32] = 0
}

// The encodings: the first, 41 bytes (bits, flags, hash), and version 2,
// 50 bytes (2, bits, flags, hash, zeroAt).
const (
	windowSizeV1 = 32 + 1 + 8
	windowSizeV2 = 1 + windowSizeV1 + 8
	windowV2     = 2
)

// MarshalBinary encodes the window (version 2, 50 bytes).
func (w Window) MarshalBinary() ([]byte, error) {
	b := make([]byte, windowSizeV2)
	b[0] = windowV2
	copy(b[1:], w.bits[:])
	var flags byte
	for i, f := range []bool{w.zero, w.moved, w.any, w.zeroAcked, w.zeroReset} {
		if f {
			flags |= 1 << i
		}
	}
	b[33] = flags
	binary.BigEndian.PutUint64(b[34:], w.zeroHash)
	binary.BigEndian.PutUint64(b[42:], uint64(w.zeroAt))
	return b, nil
}

// UnmarshalBinary decodes a window encoded by MarshalBinary, or by the
// first encoding (41 bytes, without the evidence about 00: its age is
// unknown, so an identical 00 first on a new socket is a restart).
func (w *Window) UnmarshalBinary(b []byte) error {
	var flags byte
	switch {
	case len(b) == windowSizeV1:
		*w = Window{}
		copy(w.bits[:], b)
		flags = b[32]
		w.zeroHash = binary.BigEndian.Uint64(b[33:])
	case len(b) == windowSizeV2 && b[0] == windowV2:
		*w = Window{}
		copy(w.bits[:], b[1:])
		flags = b[33]
		w.zeroHash = binary.BigEndian.Uint64(b[34:])
		w.zeroAt = int64(binary.BigEndian.Uint64(b[42:]))
	default:
		return errors.New("link: bad window encoding")
	}
	w.zero, w.moved, w.any, w.zeroAcked, w.zeroReset = flags&1 != 0, flags&2 != 0, flags&4 != 0, flags&8 != 0, flags&16 != 0
	return nil
}

// Snapshot is the sequence state of a link that a process must keep to
// resume it after a restart without the peer noticing: the id of the next
// message it sends, and its receive window. Messages still awaiting an
// ACK are the application's to keep (see Reuse).
type Snapshot struct {
	// Next is the id of the next message to send; 0 means nothing has
	// been sent yet, so the next message is 00.
	Next uint8
	// Window is the receive window.
	Window Window
}
