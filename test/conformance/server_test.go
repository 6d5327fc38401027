package conformance

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tether-iot/tether/internal/harness/legacy"
	"github.com/tether-iot/tether/link"
	"github.com/tether-iot/tether/server"
)

// nodeRig is our server serving one legacy node through a recording
// proxy, with a ledger for each application.
type nodeRig struct {
	srv  *ourServer
	rec  *recording
	node *legacy.Node
	sl   *link.Link // our server's end
	up   *ledger    // what our server's application reads
	down *ledger    // what the legacy node's application reads
}

func newNodeRig(ctx context.Context, t *testing.T, id string) *nodeRig {
	t.Helper()
	r := &nodeRig{up: newLedger("our server"), down: newLedger("legacy node")}
	r.srv = startServer(t, server.Config{})
	r.rec = record(t, r.srv.addr, nil)
	r.node = legacyNode(t, id, r.rec.Addr())
	var err error
	if r.sl, err = r.srv.Node(ctx, id); err != nil {
		t.Fatal(err)
	}
	rd := newReaders(t)
	rd.start(t, r.up, r.sl.ReadLine)
	rd.start(t, r.down, r.node.ReadLine)
	return r
}

// nodeWrite and serverWrite adapt the two ends' Write to writeAll.
func nodeWrite(n *legacy.Node, qos, wait bool) func(context.Context, string) error {
	return func(ctx context.Context, s string) error { return n.Write(ctx, s, qos, wait) }
}

func linkWrite(l end, opts ...link.WriteOption) func(context.Context, string) error {
	return func(ctx context.Context, s string) error { return l.Write(ctx, s, opts...) }
}

// fault is an outage to inject.
type fault struct {
	name   string
	inject func()
}

// serverFaults are the outages of TestServer*: the node closes its socket,
// our server closes its socket, the network closes both with FIN or RST,
// and the network goes silent until both ends time out.
func (r *nodeRig) faults() []fault {
	return []fault{
		{"node closes", r.node.DropConn},
		{"server closes", r.srv.ln.kill},
		{"network FIN", r.rec.Cut},
		{"network RST", r.rec.Reset},
		{"black hole", func() { r.rec.Blackhole(T * 3 / 2) }},
	}
}

// runWithFaults injects each fault once both ledgers have read a further
// share of n messages of their stream, and waits for our server's link to
// be up again on a new socket before going on.
func runWithFaults(ctx context.Context, t *testing.T, faults []fault, ev *events, connects func() int,
	a *ledger, aStream string, b *ledger, bStream string, n int) {
	t.Helper()
	for k, f := range faults {
		at := (k + 1) * n / (len(faults) + 1)
		if err := a.wait(ctx, aStream, at); err != nil {
			t.Fatal(err)
		}
		if err := b.wait(ctx, bStream, at); err != nil {
			t.Fatal(err)
		}
		c := connects()
		f.inject()
		if err := ev.waitUp(ctx, c+1); err != nil {
			t.Fatalf("after %q: %v", f.name, err)
		}
	}
}

// TestServerLegacyNodeQoS: a legacy node and our server exchange more than
// 256 qos messages each way with wait (the ids wrap), through outages of
// every kind; each application reads every message once, in order, and
// our server's bytes conform to internal/wire/spec.md.
func TestServerLegacyNodeQoS(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	const n = 300
	r := newNodeRig(ctx, t, "legacy-qos")
	r.up.expect("n", true)
	r.down.expect("s", true)

	var wg sync.WaitGroup
	var nodeErr, srvErr error
	wg.Go(func() { nodeErr = writeAll(ctx, "n", 0, n, nodeWrite(r.node, true, true)) })
	wg.Go(func() { srvErr = writeAll(ctx, "s", 0, n, paced(r.down, nodeLag, linkWrite(r.sl))) })
	runWithFaults(ctx, t, r.faults(), r.srv.events, r.sl.Connects, r.up, "n", r.down, "s", n)
	wg.Wait()
	if nodeErr != nil || srvErr != nil {
		t.Fatalf("node: %v; server: %v", nodeErr, srvErr)
	}
	settle(ctx, t, r.srv.events, r.up, "n", r.down, "s", n)

	rep := checkWire(t, r.rec.transcript(t), wireSpec{stalled: r.rec.stalled, ours: legacy.S2C, t: T, writePause: 200 * time.Millisecond})
	t.Logf("our server: %v", rep)
	st := r.sl.Stats()
	t.Logf("our server's link: %d connects, %d sent, %d repeats, %d received, %d duplicates", st.Connects, st.Sent, st.Repeats, st.Received, st.Duplicates)
	if rep.msgs-rep.repeats < n {
		t.Errorf("transcript holds %d new messages from our server, want %d", rep.msgs-rep.repeats, n)
	}
}

// TestServerLegacyNodeNoWait: qos messages without wait, several in flight
// at once each way, through outages: each read exactly once (order may
// change). Then qos=false messages, which the legacy node keeps pending
// until ACKed: a later qos+wait write of the node completes only if our
// server ACKed them all.
func TestServerLegacyNodeNoWait(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	const n = 300
	// With nodeLag, fewer than 20 lines wait for the legacy node's reader.
	const writers = 4
	r := newNodeRig(ctx, t, "legacy-nowait")
	r.up.expect("n", false)
	r.down.expect("s", false)

	var wg sync.WaitGroup
	var nodeErr, srvErr error
	wg.Go(func() {
		nodeErr = writeNoWait(ctx, "n", n, writers, nodeWrite(r.node, true, true), nodeWrite(r.node, true, false))
	})
	wg.Go(func() {
		srvErr = writeSpread(ctx, "s", 0, n, writers, paced(r.down, nodeLag, linkWrite(r.sl, link.Wait(false))))
	})
	f := r.faults()
	runWithFaults(ctx, t, []fault{f[0], f[1], f[2]}, r.srv.events, r.sl.Connects, r.up, "n", r.down, "s", n)
	wg.Wait()
	if nodeErr != nil || srvErr != nil {
		t.Fatalf("node: %v; server: %v", nodeErr, srvErr)
	}
	settle(ctx, t, r.srv.events, r.up, "n", r.down, "s", n)

	// qos=false both ways, no outage: all arrive, once each.
	const m = 20
	r.up.expect("nq", true)
	r.down.expect("sq", true)
	if err := writeAll(ctx, "nq", 0, m, nodeWrite(r.node, false, false)); err != nil {
		t.Fatal(err)
	}
	if err := writeAll(ctx, "sq", 0, m, paced(r.down, nodeLag, linkWrite(r.sl, link.QoS(false)))); err != nil {
		t.Fatal(err)
	}
	r.up.expect("nw", true)
	if err := withinNetOfStalls(ctx, r.rec.probe, 4*T, func(ctx context.Context) error {
		return r.node.Write(ctx, msg("nw", 0), true, true)
	}); err != nil {
		t.Fatalf("legacy node's qos+wait write after qos=false ones: %v (an unACKed qos=false message blocks it)", err)
	}
	for _, s := range []struct {
		l    *ledger
		name string
	}{{r.up, "nq"}, {r.down, "sq"}, {r.up, "nw"}} {
		if err := s.l.wait(ctx, s.name, map[string]int{"nq": m, "sq": m, "nw": 1}[s.name]); err != nil {
			t.Fatal(err)
		}
	}
	r.up.verify(t, "nq", m)
	r.down.verify(t, "sq", m)

	rep := checkWire(t, r.rec.transcript(t), wireSpec{stalled: r.rec.stalled, ours: legacy.S2C, t: T, writePause: 200 * time.Millisecond})
	t.Logf("our server: %v", rep)
	if rep.maxInFlight > link.DefaultMaxInFlight {
		t.Errorf("%d of our ids in flight at once, more than link.DefaultMaxInFlight (%d)", rep.maxInFlight, link.DefaultMaxInFlight)
	}
}

// TestServerLegacyNodeRestart: the legacy node restarts (process state
// lost): its next message is 00. Our server delivers it, its link emits
// PeerRestart, and the node's fresh window accepts our messages, whose ids
// go on where they were.
func TestServerLegacyNodeRestart(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	const n = 40
	r := newNodeRig(ctx, t, "legacy-restart")
	for life := 1; life <= 3; life++ {
		ns, ss := lifeStream("n", life), lifeStream("s", life)
		r.up.expect(ns, true)
		r.down.expect(ss, true)
		if life > 1 {
			c := r.sl.Connects()
			if err := r.node.Restart(); err != nil {
				t.Fatal(err)
			}
			if err := r.srv.events.waitUp(ctx, c+1); err != nil {
				t.Fatal(err)
			}
		}
		var wg sync.WaitGroup
		var nodeErr, srvErr error
		wg.Go(func() { nodeErr = writeAll(ctx, ns, 0, n, nodeWrite(r.node, true, true)) })
		wg.Go(func() { srvErr = writeAll(ctx, ss, 0, n, paced(r.down, nodeLag, linkWrite(r.sl))) })
		wg.Wait()
		if nodeErr != nil || srvErr != nil {
			t.Fatalf("life %d: node: %v; server: %v", life, nodeErr, srvErr)
		}
		if err := r.up.wait(ctx, ns, n); err != nil {
			t.Fatal(err)
		}
		if err := r.down.wait(ctx, ss, n); err != nil {
			t.Fatal(err)
		}
		r.up.verify(t, ns, n)
		r.down.verify(t, ss, n)
		if life > 1 {
			seen := 0
			if _, err := r.srv.events.wait(ctx, "PeerRestart", func(ev link.Event) bool {
				if ev.Kind == link.PeerRestart {
					seen++
				}
				return seen == life-1
			}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if got := r.srv.events.count(link.PeerRestart); got != 2 {
		t.Errorf("%d PeerRestart events, want 2", got)
	}
	if got := r.sl.Stats().PeerRestarts; got != 2 {
		t.Errorf("Stats.PeerRestarts = %d, want 2", got)
	}
	evs := r.rec.transcript(t)
	rep := checkWire(t, evs, wireSpec{stalled: r.rec.stalled, ours: legacy.S2C, t: T, writePause: 200 * time.Millisecond})
	t.Logf("our server: %v", rep)
	// The node's side: its first message on each life is 00.
	zeros := 0
	for _, c := range legacy.Conns(evs) {
		lines, _ := splitLines(evs, c, legacy.C2S, false)
		for _, l := range lines {
			if strings.HasPrefix(l.text, "00") && len(l.text) > 2 {
				zeros++
			}
		}
	}
	if zeros != 3 {
		t.Errorf("the node sent %d messages 00, want 3 (one per life)", zeros)
	}
}

func lifeStream(name string, life int) string {
	return name + string(rune('0'+life))
}
