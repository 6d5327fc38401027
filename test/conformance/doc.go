// Package conformance holds the legacy-conformance suite; it has no code
// of its own, only tests.
//
// The suite checks Tether against the original micropython-iot peers, byte
// for byte as internal/wire/spec.md describes them (its section "The
// legacy peers"). The peers are the faithful Go models of
// internal/harness/legacy (a legacy node, a legacy server) and the
// recordings of the real ones in testdata/transcripts:
//
//   - server_test.go: our server serves legacy nodes: qos messages with
//     and without wait, qos=false ones, more than 256 each way (the ids
//     wrap), outages of every kind (the node or our server closes its
//     socket, FIN, RST, black hole) and node restarts (a new 00, a
//     PeerRestart event, the node's fresh window).
//   - client_test.go: our client against the legacy server, the same way,
//     and our client restarting (its ids start at 00 again).
//   - wirecheck_test.go: each of those runs through a recording faultnet
//     proxy, and the recording is held to the protocol: every line from our
//     side is a keepalive, a lowercase two-digit ACK or a message; ids go
//     00, 01, ... ff, 01, repeats byte-identical, never 00 again in a life;
//     every message from the peer is ACKed, in order; our server sends no
//     message before the node's first bytes plus 200 ms; our side is never
//     silent for more than T/4 plus a tolerance (less than T, so that the
//     peer never sees an outage) while connected, beyond the time the
//     test's process was stalled within that silence (measured by
//     internal/harness/lagprobe: a loaded machine holds up our timers as
//     long; the exact T/4 cadence is link's TestKeepaliveCadence, in fake
//     time). wirecheck_self_test.go runs these
//     checks on the legacy peers' own recordings, which pass, and on
//     synthetic faults, which they catch.
//   - replay_test.go: each legacy transcript replayed, at 20 times its
//     pace, against our server (the node's side) and our client (the
//     server's side): an ACK for every message, each message read once.
//     No replayed silence comes near T: an attempt in which our side timed
//     out anyway is void (and replayed) only if the process was measurably
//     stalled long enough to explain it.
//   - scripted_test.go: hand-scripted legacy peers for the cases a model
//     cannot produce on demand: a server silent for 1.5T after the ID (our
//     client's first read waits 2T), repeats of 00, lines cut by an outage,
//     bad lines, lost ACKs, a full receive queue.
//
// Tests use T = 250 ms (the replays 400 ms); the legacy models scale their
// fixed delays with T. A legacy node ACKs a message before its application
// reads it and drops the 21st unread line, so our server's writes to it are
// paced by what its application has read (see paced), as a real gateway's
// must be. Set TETHER_CONFORMANCE_KEEP=<dir> to keep the
// recorded transcripts, TETHER_TEST_LOG=1 to see the logs.
//
//	go test -race -v ./test/conformance
//
// # Legacy weaknesses
//
// Each weakness of the legacy peers listed in internal/wire/spec.md, and the test
// that shows Tether does not have it:
//
//	weakness of the legacy peers                  Tether                                            test
//	--------------------------------------------  ------------------------------------------------  ------------------------------------------
//	a repeat of 00 clears the window and is       a 00 identical to the accepted one, nothing       TestReplayServer/mid0-c2s,
//	delivered twice                               accepted since, is a repeat: ACKed, not read      TestClientRepeatOfZero (1)
//	a lost ACK of a qos=false message blocks      no ACK awaited for qos=false; and we ACK every    TestQoSFalseLostAck, the qos=false phases of
//	every later qos+wait write                    message, so legacy peers' writes go on            Test{Server,Client}Legacy*NoWait (2)
//	one connection per 200 ms, ID read in the     each handshake on its own goroutine               TestServerSilentHandshake
//	accept loop: a silent client stalls others
//	no bound on a line's length                   MaxLine: a longer line is dropped and counted     TestBadLines
//	the partial line of a dead socket is glued    each socket starts with an empty line buffer      TestReplayServer/partial-line,
//	onto the next socket's first line                                                               TestClientPartialLine
//	ACK before queueing: a full queue loses an    ACK only once queued; beyond RecvQueue unread     TestFullQueueLosesNothing,
//	ACKed message                                 lines the ACK waits until the application reads   TestFullQueueQoSFalse (2)
//	a non-hex id kills the node's reader          counted as malformed and dropped; link goes on    TestBadLines
//	any peer may claim any ID                     not addressed by the link (server Config.Strict   none
//	                                              limits IDs to Expected)
//	8-bit ids, 128-wide window: more than 128     MaxInFlight (64) bounds the ids in flight         TestClientLegacyServerNoWait (maximum
//	in flight cannot be told apart                                                                  measured on the wire)
//	every wait loop polls every 50 ms             channels and timers; a matter of speed            none (see the bench command)
//	all state in memory                           link.Snapshot and Config.Resume                   none (link tests)
//
// # Known gaps
//
// (1) A legacy sender without wait may send later ids before 00, or repeat
// 00 after them (its ACK lost); the legacy models do both. On one socket
// our receivers handle both (see link.Window: an overtaken 00 and a repeat
// after later ids are neither a restart nor delivered twice). A 00 that is
// repeated first on a new socket, after later ids were acknowledged (an
// outage within the sender's first messages), is still taken for a
// restart, as the legacy receiver would: repeats of the later ids are then
// read twice. The no-wait tests have each legacy peer wait for the ACK of
// its first message (see writeNoWait).
//
// (2) A message that finds RecvQueue lines unread is queued with its ACK
// deferred until the application has read enough: the peer's waiting
// writes stop, its ACKs and keepalives are still read, and a qos=false
// message is neither lost nor left unACKed (a legacy peer would otherwise
// block its later qos+wait writes for ever). Only a message that finds
// twice RecvQueue lines unread for T/2 (or that Deliver refuses) is left
// unACKed; a qos=false one is then lost and a legacy peer blocks as
// above. That takes a peer that writes qos=false messages without pause
// to an application that has stopped reading. Holding the read loop for
// ever instead would deadlock an application that waits for an ACK before
// it reads.
package conformance
