// Package link is Tether's protocol engine: one end of a resilient,
// full-duplex, line-based link, wire-compatible with micropython-iot (see
// internal/wire/spec.md). The server (package server) keeps one Link per
// node and the Go client (package client) is one Link: both roles are thin
// layers over this package.
//
// # Entry points
//
//   - New makes a Link: the long-lived state of a conversation (id
//     sequence, de-duplication window, unacknowledged messages, received
//     lines), which outlives any number of sockets.
//   - Attach runs the protocol on one socket until it fails.
//   - Write and ReadLine are the application's calls; they work across
//     outages. Up, WaitUp, Notify and Config.OnEvent report the state.
//
// # Guarantees
//
// A qos message (the default) is delivered to the peer's application
// exactly once, whatever outages occur, as long as both Links live; with
// Wait (the default) qos messages are also delivered in order. A message
// is acknowledged only once it is queued for the application (or accepted
// by Config.Deliver), so nothing acknowledged is ever lost: when the
// application falls behind, ACKs wait until it reads (the sender's waiting
// writes stop), and a queue that stays full leaves the message for the
// sender to repeat. A qos=false message is sent
// once, and may be lost in an outage.
//
// # Restarts
//
// A sender's first message has id 00 and 00 is never used again in its
// life, so a receiver that sees a new 00 knows the sender restarted and
// clears its window. The legacy receivers also cleared it when 00 was
// merely repeated (its ACK lost) and delivered it twice. This package
// tells the two apart: see Window for the rule. A peer restart is reported
// as a PeerRestart event, distinct from an outage (Down, then Up).
//
// # Two devices on one ID
//
// A server passes each socket's source address (Peer). When it changes,
// the peer may be another device: the send sequence restarts with 00 (the
// receiver's window is cleared), a returning peer gets back the receive
// window it left minus what the other set, what the other acknowledged
// meanwhile is reported (ForeignAcks), and a returning peer that resumes
// its own sequence proves two devices (TwoDevices) and gets those messages
// again. See peer.go.
//
// # Not copied from the legacy peers
//
//   - No polling: every wait is on a channel, a timer or a socket.
//   - A repeat of 00 is not delivered twice.
//   - A qos=false message never blocks later writes.
//   - A new socket starts with an empty line buffer; a fragment left by a
//     dead socket is dropped, never glued to the next line.
//   - A message is acknowledged only when safely queued (see above).
//   - Every line has a maximum length (Config.MaxLine); bad lines are
//     counted (Stats), logged at a bounded rate, and skipped.
//   - At most MaxInFlight ids are unacknowledged, well inside the 256-bit
//     window, so a repeat is always told from a new message.
//   - Config.Resume, Assign and Reuse let a process keep exactly-once
//     delivery across its own restarts (the gateway stores them).
//
// # Goroutines
//
// A Link owns no goroutine while idle. Attach's caller runs the read
// loop; a flusher goroutine runs while there are bytes to write; timers
// drive keepalives and repeats; events are dispatched by a goroutine that
// exists only while events are pending. Close stops them all.
package link
