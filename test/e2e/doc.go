// Package e2e holds Tether's end-to-end tests; it has no code of its own.
//
// The tests run a real server.Server on loopback and several client.Client
// nodes that reach it through faultnet proxies, send thousands of qos
// messages both ways, and inject hundreds of outages of every kind the
// proxies know (FIN, RST, black hole, refused connects, delay, trickle,
// cuts in the middle of a line). They then check that every message
// written was delivered exactly once, each writer's in order, that no
// fragment of a line was ever delivered, and that nothing is left
// running. T is short (250 ms), so that each outage costs well under a
// second.
//
// Entry points: TestOutagesWait and TestOutagesNoWait (outage_test.go: one
// fault at a time, waiting for the recovery, until each node has had its
// quota of each kind), TestPartialLines (partial_test.go: cuts in the middle
// of a line), TestFirstMessageAckLost (zero_test.go: the ACK of message
// 00 lost each way) and TestChaos (chaos_test.go: random, overlapping
// faults, black holes shorter than T included). The harness is in
// cluster_test.go, the payloads and the delivery checker in check_test.go.
// The tests log their figures (messages each way, outages by kind,
// duplicate-ID rejections, recovery times) with -v:
//
//	go test -race -v ./test/e2e
//
// Each test logs the seed of its random choices; TETHER_E2E_SEED=<seed>
// replays them. Set TETHER_TEST_LOG=1 to see the links' own logs.
package e2e
