package link

import (
	"encoding/binary"
	"errors"
	"hash/fnv"
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
// plus what is needed to tell a repeat of message 00 from a sender restart.
// The zero value is a window that has seen nothing. It is a value type:
// copy it freely, and persist it with MarshalBinary.
//
// The rule for message 00 (the legacy receiver clears its window on every
// 00, so a repeated 00 is delivered twice). A restarted sender starts on a
// new socket, and its 00 is its first message there. So a 00 is:
//
//   - a repeat, acknowledged and not delivered, when the window has
//     already accepted a 00 with the same payload and either has accepted
//     no other id since, or the 00 comes after other messages on the same
//     socket (a sender without wait repeating it);
//   - a late first 00, delivered without clearing the window, when no 00
//     has been accepted yet and it comes after other messages on its
//     socket (a sender without wait whose 00 was overtaken);
//   - otherwise a restart: the window is cleared and the message is
//     delivered.
//
// A repeat is byte-identical to the original, and a sender waiting for the
// ACK of 00 (qos with wait, and every Tether sender, which sends nothing
// after 00 until 00 is acknowledged) sends no other id meanwhile. One case
// is taken for a repeat although it is not: a restarted sender whose new
// first message is identical to its previous life's, when that life sent
// nothing else. That message is not delivered again; nothing else is lost,
// because the window holds no other id. One case is taken for a restart
// although it is not: a legacy sender without wait that repeats its 00,
// first on a new socket, after later messages were acknowledged (an
// outage within its first messages). Then the messages it repeats are
// delivered again.
type Window struct {
	bits     [32]byte
	zero     bool   // a 00 has been accepted
	moved    bool   // an id other than 00 has been accepted since that 00
	zeroHash uint64 // FNV-1a of the payload of that 00
	any      bool   // any message has been accepted
}

// verdict classifies an incoming message.
type verdict uint8

const (
	fresh verdict = iota
	duplicate
	restart // a 00 that is not a repeat, after earlier messages
)

func hashPayload(p []byte) uint64 {
	h := fnv.New64a()
	h.Write(p)
	return h.Sum64()
}

func (w *Window) has(id uint8) bool { return w.bits[id>>3]&(1<<(id&7)) != 0 }

// check tells whether message id with payload p is new, without changing
// w. first reports whether it is the first message on its socket.
func (w *Window) check(id uint8, p []byte, first bool) verdict {
	if id != 0 {
		if w.has(id) {
			return duplicate
		}
		return fresh
	}
	if w.zero && w.zeroHash == hashPayload(p) && (!w.moved || !first) {
		return duplicate
	}
	if !w.zero && !first {
		return fresh // the first 00 ever, overtaken by later ids
	}
	if w.any {
		return restart
	}
	return fresh
}

// accept records message id as delivered, as the legacy receiver does,
// given check's verdict v: a restart clears the window first; then the
// id's bit is set and the byte half a window ahead is cleared, so that ids
// can be reused after they wrap.
func (w *Window) accept(id uint8, p []byte, v verdict) {
	if v == restart {
		*w = Window{}
	}
	if id == 0 {
		w.zero, w.zeroHash, w.moved = true, hashPayload(p), false
	} else {
		w.moved = true
	}
	w.any = true
	w.bits[id>>3] |= 1 << (id & 7)
	w.bits[(id>>3+16)%32] = 0
}

const windowSize = 32 + 1 + 8

// MarshalBinary encodes the window in 41 bytes.
func (w Window) MarshalBinary() ([]byte, error) {
	b := make([]byte, windowSize)
	copy(b, w.bits[:])
	var flags byte
	for i, f := range []bool{w.zero, w.moved, w.any} {
		if f {
			flags |= 1 << i
		}
	}
	b[32] = flags
	binary.BigEndian.PutUint64(b[33:], w.zeroHash)
	return b, nil
}

// UnmarshalBinary decodes a window encoded by MarshalBinary.
func (w *Window) UnmarshalBinary(b []byte) error {
	if len(b) != windowSize {
		return errors.New("link: bad window encoding")
	}
	copy(w.bits[:], b)
	w.zero, w.moved, w.any = b[32]&1 != 0, b[32]&2 != 0, b[32]&4 != 0
	w.zeroHash = binary.BigEndian.Uint64(b[33:])
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
