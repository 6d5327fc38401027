// Package legacy holds faithful Go models of the legacy micropython-iot
// peers (the uasyncio V3 edition by Peter Hinch): the node ([Node], a port
// of iot/client.py) and the server ([Server], a port of iot/server.py and
// the gmid/isnew helpers of iot/__init__.py). Conformance tests use them to
// check that the new server serves a legacy node byte for byte and that the
// new client works against the legacy server.
//
// The models copy the legacy behaviour on purpose, weaknesses included
// (see internal/wire/spec.md, "The legacy peers"): a repeat of message 00
// clears the receiver's window and is delivered twice; the server keeps a partial line across reconnects
// and drops the bytes that followed the ID in the same read on a reconnect;
// a qos=false write stays pending until ACKed and blocks later qos+wait
// writes; the node ACKs a message before it queues it, and a full queue of
// 20 lines is an outage; a non-hex id silently kills the reader; the server
// accepts one connection per T/10 and reads the ID inside its accept loop.
//
// Timing follows a configurable T (the legacy default is 2 s) and keeps the
// legacy ratios: keepalives every T/4, outage after T of silence (2T for the
// node's first read), qos repeats after T, the node's T/40 (50 ms) pause
// before its ID, the server's T/10 (200 ms) write pause after the node's
// first bytes, the node's 2T pause after an outage. The legacy 50 ms poll
// loops are replaced by channels; only what goes on the wire, and when,
// is kept.
//
// Where the models differ from the legacy code, only the timing of the
// bytes changes: ACKs are written by the reader itself rather than by a new
// task (same bytes, same order); every socket write has a deadline of T
// (the legacy peers check T only after partial writes); the server pauses
// T/10 after each accepted connection rather than polling its listener
// every 200 ms; a node's status drops as soon as a failure is seen. Python's
// int(s, 16) is modelled for ASCII input (whitespace, sign, hex digits).
//
// Entry points: [StartNode], [StartServer], [LoadTranscript] and [Replay]
// for the recordings in testdata/transcripts, [ParseLine] for the line forms.
// Every goroutine is owned by the Node or Server that started it, and Close
// waits for all of them. This package imports no other tether package.
package legacy
