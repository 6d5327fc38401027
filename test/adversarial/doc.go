// Package adversarial is the standing adversarial suite: each test starts
// a real gateway (embedded broker, store in a temporary directory, status
// page on loopback), runs an honest node and an MQTT client alongside it
// exchanging qos messages both ways, attacks the gateway from loopback,
// and asserts that
//
//   - honest traffic kept flowing: the longest pause between two honest
//     messages, in either direction, stays under a few T;
//   - nothing was lost or duplicated: each direction's sequence numbers
//     arrive exactly once, in order;
//   - goroutines, heap and open files come back near their baseline once
//     the attacker has gone;
//   - nothing panicked (a panic ends the test binary).
//
// The harness is in harness_test.go; the attacks are grouped one file per
// area (nodes_test.go for the node port, web_test.go for the status page,
// broker_test.go for MQTT, ...). Every attack or bad-input case that a fix
// defends against gets a case here. Each case is bounded in time: the
// whole suite runs in CI in well under a minute or two.
package adversarial
