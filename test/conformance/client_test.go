package conformance

import (
	"context"
	"sync"
	"testing"

	"github.com/tether-iot/tether/client"
	"github.com/tether-iot/tether/internal/harness/legacy"
	"github.com/tether-iot/tether/link"
)

// serverRig is our client talking to the legacy server through a
// recording proxy, with a ledger for each application.
type serverRig struct {
	id     string
	lsrv   *legacy.Server
	rec    *recording
	dialer *killDialer
	cl     *client.Client
	events *events
	lc     *legacy.ServerConn // the legacy server's connection object
	rd     *readers
	up     *ledger // what the legacy server's application reads
	down   *ledger // what our client's application reads
}

func newServerRig(ctx context.Context, t *testing.T, id string) *serverRig {
	t.Helper()
	r := &serverRig{id: id, up: newLedger("legacy server"), down: newLedger("our client")}
	r.lsrv = legacyServer(t)
	r.rec = record(t, r.lsrv.Addr(), nil)
	r.dial(ctx, t)
	var err error
	if r.lc, err = r.lsrv.Conn(ctx, id); err != nil {
		t.Fatal(err)
	}
	r.rd = newReaders(t)
	r.rd.start(t, r.up, r.lc.ReadLine)
	r.rd.start(t, r.down, r.cl.ReadLine)
	return r
}

// dial starts a new client process with the rig's ID.
func (r *serverRig) dial(ctx context.Context, t *testing.T) {
	t.Helper()
	r.dialer, r.events = &killDialer{}, newEvents()
	r.cl = ourClient(ctx, t, client.Config{ID: r.id, Server: r.rec.Addr(), Dial: r.dialer.dial}, r.events)
}

// faults are the outages of TestClient*: our client's socket fails,
// the legacy server closes its socket, the network closes both with FIN
// or RST, and the network goes silent until both ends time out.
func (r *serverRig) faults() []fault {
	return []fault{
		{"client closes", r.dialer.kill},
		{"server closes", r.lc.DropConn},
		{"network FIN", r.rec.Cut},
		{"network RST", r.rec.Reset},
		{"black hole", func() { r.rec.Blackhole(T * 3 / 2) }},
	}
}

// TestClientLegacyServerQoS: our client and the legacy server exchange
// more than 256 qos messages each way with wait (the ids wrap), through
// outages of every kind; each application reads every message once, in
// order, and our client's bytes conform to internal/wire/spec.md.
func TestClientLegacyServerQoS(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	const n = 300
	r := newServerRig(ctx, t, "client-qos")
	r.up.expect("c", true)
	r.down.expect("s", true)

	var wg sync.WaitGroup
	var cliErr, srvErr error
	wg.Go(func() { cliErr = writeAll(ctx, "c", 0, n, linkWrite(r.cl)) })
	wg.Go(func() { srvErr = writeAll(ctx, "s", 0, n, serverConnWrite(r.lc, true, true)) })
	runWithFaults(ctx, t, r.faults(), r.events, r.cl.Connects, r.up, "c", r.down, "s", n)
	wg.Wait()
	if cliErr != nil || srvErr != nil {
		t.Fatalf("client: %v; server: %v", cliErr, srvErr)
	}
	settle(ctx, t, r.events, r.up, "c", r.down, "s", n)

	rep := checkWire(t, r.rec.transcript(t), wireSpec{stalled: r.rec.stalled, ours: legacy.C2S, id: r.id, t: T})
	t.Logf("our client: %v", rep)
	st := r.cl.Stats()
	t.Logf("our client's link: %d connects, %d sent, %d repeats, %d received, %d duplicates", st.Connects, st.Sent, st.Repeats, st.Received, st.Duplicates)
	if rep.msgs-rep.repeats < n {
		t.Errorf("transcript holds %d new messages from our client, want %d", rep.msgs-rep.repeats, n)
	}
}

func serverConnWrite(c *legacy.ServerConn, qos, wait bool) func(context.Context, string) error {
	return func(ctx context.Context, s string) error { return c.Write(ctx, s, qos, wait) }
}

// TestClientLegacyServerNoWait: qos messages without wait, several in
// flight each way, through outages: each read exactly once. Then qos=false
// messages, which the legacy server keeps pending until ACKed: a later
// qos+wait write of the legacy server completes only if our client ACKed
// them all.
func TestClientLegacyServerNoWait(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	const n = 300
	// Our client writes with more writers than link.DefaultMaxInFlight,
	// which must bound the ids in flight; the legacy server with a few.
	const ourWriters, legacyWriters = 100, 8
	r := newServerRig(ctx, t, "client-nowait")
	r.up.expect("c", false)
	r.down.expect("s", false)

	var wg sync.WaitGroup
	var cliErr, srvErr error
	wg.Go(func() { cliErr = writeSpread(ctx, "c", 0, n, ourWriters, linkWrite(r.cl, link.Wait(false))) })
	wg.Go(func() {
		srvErr = writeNoWait(ctx, "s", n, legacyWriters, serverConnWrite(r.lc, true, true), serverConnWrite(r.lc, true, false))
	})
	f := r.faults()
	runWithFaults(ctx, t, []fault{f[0], f[1], f[2]}, r.events, r.cl.Connects, r.up, "c", r.down, "s", n)
	wg.Wait()
	if cliErr != nil || srvErr != nil {
		t.Fatalf("client: %v; server: %v", cliErr, srvErr)
	}
	settle(ctx, t, r.events, r.up, "c", r.down, "s", n)

	const m = 20
	r.up.expect("cq", true)
	r.down.expect("sq", true)
	if err := writeAll(ctx, "cq", 0, m, linkWrite(r.cl, link.QoS(false))); err != nil {
		t.Fatal(err)
	}
	if err := writeAll(ctx, "sq", 0, m, serverConnWrite(r.lc, false, false)); err != nil {
		t.Fatal(err)
	}
	r.down.expect("sw", true)
	if err := withinNetOfStalls(ctx, r.rec.probe, 4*T, func(ctx context.Context) error {
		return r.lc.Write(ctx, msg("sw", 0), true, true)
	}); err != nil {
		t.Fatalf("legacy server's qos+wait write after qos=false ones: %v (an unACKed qos=false message blocks it)", err)
	}
	for _, w := range []struct {
		l    *ledger
		name string
		n    int
	}{{r.up, "cq", m}, {r.down, "sq", m}, {r.down, "sw", 1}} {
		if err := w.l.wait(ctx, w.name, w.n); err != nil {
			t.Fatal(err)
		}
	}
	r.up.verify(t, "cq", m)
	r.down.verify(t, "sq", m)

	rep := checkWire(t, r.rec.transcript(t), wireSpec{stalled: r.rec.stalled, ours: legacy.C2S, id: r.id, t: T})
	t.Logf("our client: %v", rep)
	if rep.maxInFlight > link.DefaultMaxInFlight {
		t.Errorf("%d of our ids in flight at once, more than link.DefaultMaxInFlight (%d)", rep.maxInFlight, link.DefaultMaxInFlight)
	}
}

// TestClientLegacyServerRestart: our client restarts (a new client.Client
// with the same ID): its first message is 00 again, which the legacy
// server takes for a restart and delivers; the legacy server's ids go on
// where they were, and the new client's fresh window accepts them.
func TestClientLegacyServerRestart(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	const n = 40
	r := newServerRig(ctx, t, "client-restart")
	lives := map[int]bool{}
	for life := 1; life <= 3; life++ {
		cs, ss := lifeStream("c", life), lifeStream("s", life)
		r.up.expect(cs, true)
		r.down.expect(ss, true)
		if life > 1 {
			if err := r.cl.Close(); err != nil {
				t.Fatal(err)
			}
			if err := r.lc.WaitStatus(ctx, false); err != nil {
				t.Fatal(err)
			}
			lives[r.rec.Stats().Accepted+1] = true
			r.dial(ctx, t)
			r.rd.start(t, r.down, r.cl.ReadLine)
		}
		var wg sync.WaitGroup
		var cliErr, srvErr error
		wg.Go(func() { cliErr = writeAll(ctx, cs, 0, n, linkWrite(r.cl)) })
		wg.Go(func() { srvErr = writeAll(ctx, ss, 0, n, serverConnWrite(r.lc, true, true)) })
		wg.Wait()
		if cliErr != nil || srvErr != nil {
			t.Fatalf("life %d: client: %v; server: %v", life, cliErr, srvErr)
		}
		if err := r.up.wait(ctx, cs, n); err != nil {
			t.Fatal(err)
		}
		if err := r.down.wait(ctx, ss, n); err != nil {
			t.Fatal(err)
		}
		r.up.verify(t, cs, n)
		r.down.verify(t, ss, n)
	}
	rep := checkWire(t, r.rec.transcript(t), wireSpec{stalled: r.rec.stalled, ours: legacy.C2S, id: r.id, t: T, newLife: lives})
	t.Logf("our client: %v", rep)
	if got := r.lc.NConns(); got != 3 {
		t.Errorf("legacy server saw %d sockets, want 3", got)
	}
}
