package conformance

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tether-iot/tether/client"
	"github.com/tether-iot/tether/internal/harness/faultnet"
	"github.com/tether-iot/tether/internal/harness/lagprobe"
	"github.com/tether-iot/tether/internal/harness/legacy"
	"github.com/tether-iot/tether/internal/harness/testutil"
	"github.com/tether-iot/tether/link"
	"github.com/tether-iot/tether/server"
)

// opaqueConn hides the TCP socket it wraps from the link: no TCP evidence
// about message 00 (see link.Window) can be read from it.
type opaqueConn struct{ net.Conn }

func opaqueDial(ctx context.Context, network, addr string) (net.Conn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	return opaqueConn{c}, nil
}

// scriptedClient dials our client to a scripted server listening on ln;
// it reconnects T/4 after an outage, so that scripts run fast.
func scriptedClient(ctx context.Context, t *testing.T, id string, cfg client.Config) (*client.Client, *events, func() *rawPeer) {
	t.Helper()
	ln := testutil.Listen(t)
	ev := newEvents()
	cfg.ID, cfg.Server = id, ln.Addr().String()
	if cfg.ReconnectDelay == 0 {
		cfg.ReconnectDelay = T / 4
	}
	cl := ourClient(ctx, t, cfg, ev)
	accept := func() *rawPeer {
		t.Helper()
		p := acceptRaw(ctx, t, ln)
		if got, err := p.next(ctx); err != nil || got != id {
			t.Fatalf("our client's first line is %q (%v), want its ID %q", got, err, id)
		}
		return p
	}
	return cl, ev, accept
}

// TestClientFirstReadTolerates2T: a legacy server may be slow to answer a
// new connection (it reads IDs one at a time); the legacy node's first
// read waits 2T. A scripted server stays silent for 1.5T after our
// client's ID, then talks: our client keeps the socket and the link comes
// up on it. (The exact 2T is link's TestFirstTimeout, in fake time. Here
// an attempt is void, and run again, only if our client timed out while
// the process was stalled for long enough to explain it.)
func TestClientFirstReadTolerates2T(t *testing.T) {
	t.Parallel()
	const tries = 5
	for try := 1; ; try++ {
		void := firstReadOnce(t)
		if void == "" {
			return
		}
		if try == tries {
			t.Fatalf("attempt %d of %d void: %s", try, tries, void)
		}
		t.Logf("attempt %d void, running again: %s", try, void)
	}
}

func firstReadOnce(t *testing.T) (void string) {
	ctx := testCtx(t)
	probe := lagprobe.New(t)
	const slowT = 400 * time.Millisecond
	cl, ev, accept := scriptedClient(ctx, t, "slow", client.Config{Timeout: slowT})
	p := accept()
	// Our client's timeout at 2T, or after T of silence once up, is the
	// machine's doing if the process stalled for T/2 of the 2T before
	// it: the scripted server is silent for 1.5T at most.
	stalled := func(err error) string {
		if at := p.endedAt(); !at.IsZero() {
			if st := probe.MaxStalled(at.Add(-2*slowT), at, 2*slowT); st >= slowT/2 {
				return fmt.Sprintf("our client closed the socket at %s, the process stalled %v of the 2T before", at.Format("15:04:05.000"), st.Round(time.Millisecond))
			}
		}
		if err != nil {
			t.Fatal(err)
		}
		return ""
	}
	silence := time.NewTimer(slowT * 3 / 2)
	select {
	case <-silence.C:
	case <-ctx.Done():
		t.Fatal(ctx.Err())
	}
	if p.isEnded() {
		return stalled(errors.New("our client closed the socket within 1.5T of silence"))
	}
	p.send("\n00hello\n")
	if l, err := p.parsedErr(ctx); err != nil || l.Kind != legacy.Ack || l.ID != 0 {
		return stalled(fmt.Errorf("got %v %02x %q (%v), want the ACK of 00", l.Kind, l.ID, l.Payload, err))
	}
	if line, err := cl.ReadLine(ctx); err != nil || line != "hello" {
		t.Fatalf("ReadLine: %q, %v", line, err)
	}
	errc := make(chan error, 1)
	go func() { errc <- cl.Write(ctx, "hi") }()
	if l, err := p.parsedErr(ctx); err != nil || l.Kind != legacy.Message || l.ID != 0 || l.Payload != "hi" {
		return stalled(fmt.Errorf("got %v %02x %q (%v), want message 00 hi", l.Kind, l.ID, l.Payload, err))
	}
	p.send("00\n")
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if n := cl.Connects(); n != 1 || ev.count(link.Down) != 0 {
		return stalled(fmt.Errorf("%d connects, %d outages; want one socket throughout", n, ev.count(link.Down)))
	}
	return ""
}

// TestClientRepeatOfZero: the legacy receiver clears its window on every
// 00, so a repeat of 00 (its ACK lost) is delivered twice. Our client
// reads it once; a 00 with a new payload after other ids is a restart of
// the server's sender, delivered with a PeerRestart event.
//
// The scripted server reads our ACK before it closes the socket, so its
// TCP stack acknowledged the ACK: that is evidence that the server got it
// (link.Window, rule 2), which would make its next identical 00 a
// restart. Our client dials through opaqueConn here, which hides the TCP
// socket as on a system without TCP_INFO: no evidence, and the repeat
// comes within the horizon (rule 4).
func TestClientRepeatOfZero(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	cl, ev, accept := scriptedClient(ctx, t, "zero", client.Config{Dial: opaqueDial})
	p := accept()
	p.send("\n00first\n")
	p.expectAck(ctx, 0)
	p.conn.Close() // as if the ACK had been lost in an outage
	if err := ev.waitDown(ctx, 1); err != nil {
		t.Fatal(err)
	}
	p = accept()
	p.send("\n00first\n01second\n")
	p.expectAck(ctx, 0)
	p.expectAck(ctx, 1)
	if got := drain(ctx, t, cl); !slices.Equal(got, []string{"first", "second"}) {
		t.Errorf("read %q, want first and second once each", got)
	}
	if st := cl.Stats(); st.Duplicates != 1 || st.PeerRestarts != 0 {
		t.Errorf("%d duplicates, %d restarts; want 1 and 0", st.Duplicates, st.PeerRestarts)
	}
	p.send("00again\n")
	p.expectAck(ctx, 0)
	if _, err := ev.wait(ctx, "PeerRestart", func(e link.Event) bool { return e.Kind == link.PeerRestart }); err != nil {
		t.Fatal(err)
	}
	if line, err := cl.ReadLine(ctx); err != nil || line != "again" {
		t.Errorf("ReadLine after the restart: %q, %v", line, err)
	}
}

// TestClientPartialLine: the legacy server glues the fragment of a line
// cut by an outage onto the first line of the next connection. Our client
// drops the fragment: the repeat of the message on the next connection is
// read once, whole.
func TestClientPartialLine(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	cl, ev, accept := scriptedClient(ctx, t, "partial", client.Config{})
	p := accept()
	p.send("\n00one\n01tw")
	p.expectAck(ctx, 0)
	p.conn.Close()
	if err := ev.waitDown(ctx, 1); err != nil {
		t.Fatal(err)
	}
	p = accept()
	p.send("\n01two\n")
	p.expectAck(ctx, 1)
	if got := drain(ctx, t, cl); !slices.Equal(got, []string{"one", "two"}) {
		t.Errorf("read %q, want one and two", got)
	}
	if st := cl.Stats(); st.Malformed != 0 {
		t.Errorf("%d malformed lines: the fragment was glued on", st.Malformed)
	}
}

// sendBadLines sends what a broken or hostile peer may send: an id that is not
// hex (it kills the legacy node's reader without an outage), a line longer
// than MaxLine (the legacy peers buffer it without bound) and a payload
// that is not UTF-8. None is ACKed or delivered; the link stays up and
// delivers the next message.
func sendBadLines(p *rawPeer) {
	p.send("zz not hex\n")
	p.send("00" + strings.Repeat("long", 2000) + "\n")
	p.send("00\xff\xfe\n")
	p.send("00ok\n")
}

func checkBadLines(ctx context.Context, t *testing.T, p *rawPeer, l end) {
	t.Helper()
	p.expectAck(ctx, 0)
	if line, err := l.ReadLine(ctx); err != nil || line != "ok" {
		t.Fatalf("ReadLine: %q, %v", line, err)
	}
	st := l.Stats()
	if st.Malformed != 1 || st.TooLong != 1 || st.NotUTF8 != 1 || st.Received != 1 || !st.Up || st.Connects != 1 {
		t.Errorf("stats: %d malformed, %d too long, %d not UTF-8, %d received, up %v, %d connects; want 1, 1, 1, 1, true, 1",
			st.Malformed, st.TooLong, st.NotUTF8, st.Received, st.Up, st.Connects)
	}
}

// TestBadLines: bad lines are counted and dropped, never ACKed, and the
// link goes on, on our server and on our client.
func TestBadLines(t *testing.T) {
	t.Parallel()
	t.Run("server", func(t *testing.T) {
		t.Parallel()
		ctx := testCtx(t)
		srv := startServer(t, server.Config{})
		p := dialRaw(ctx, t, srv.addr)
		p.send("bad\n")
		if _, err := p.next(ctx); err != nil {
			t.Fatal(err)
		}
		sl, err := srv.Node(ctx, "bad")
		if err != nil {
			t.Fatal(err)
		}
		sendBadLines(p)
		checkBadLines(ctx, t, p, sl)
	})
	t.Run("client", func(t *testing.T) {
		t.Parallel()
		ctx := testCtx(t)
		cl, _, accept := scriptedClient(ctx, t, "bad", client.Config{})
		p := accept()
		p.send("\n")
		sendBadLines(p)
		checkBadLines(ctx, t, p, cl)
	})
}

// TestServerSilentHandshake: the legacy server reads each new node's ID
// inside its accept loop, so one silent connection holds up every other
// node. Ours does not: a legacy node connects, comes up and exchanges
// messages while a connection that never finishes its ID line is pending.
func TestServerSilentHandshake(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	srv := startServer(t, server.Config{HandshakeTimeout: failsafe})
	silent := dialRaw(ctx, t, srv.addr)
	silent.send("half an I")
	node := legacyNode(t, "after-silent", srv.addr)
	sl, err := srv.Node(ctx, "after-silent")
	if err != nil {
		t.Fatal(err)
	}
	if err := node.Write(ctx, "hi", true, true); err != nil {
		t.Fatal(err)
	}
	if line, err := sl.ReadLine(ctx); err != nil || line != "hi" {
		t.Fatalf("ReadLine: %q, %v", line, err)
	}
	if err := sl.Write(ctx, "ho"); err != nil {
		t.Fatal(err)
	}
	if line, err := node.ReadLine(ctx); err != nil || line != "ho\n" {
		t.Fatalf("node ReadLine: %q, %v", line, err)
	}
	if silent.isEnded() {
		t.Error("the silent connection was closed meanwhile: the test proved nothing")
	}
}

// ackDropper is a proxy Filter that drops the chunks in direction dir
// that carry the ACK of the message whose payload is payload, as it saw
// that message go the other way.
type ackDropper struct {
	dir     faultnet.Dir
	payload string
	id      atomic.Int32 // -1: the message not seen yet
	mu      sync.Mutex
	rest    string // the other direction's partial line
	once    sync.Once
	dropped chan struct{}
}

func newAckDropper(dir faultnet.Dir, payload string) *ackDropper {
	d := &ackDropper{dir: dir, payload: payload, dropped: make(chan struct{})}
	d.id.Store(-1)
	return d
}

func (d *ackDropper) filter(dir faultnet.Dir, _ int, data []byte) faultnet.Action {
	if dir != d.dir {
		d.mu.Lock()
		lines := strings.Split(d.rest+string(data), "\n")
		d.rest = lines[len(lines)-1]
		d.mu.Unlock()
		for _, l := range lines[:len(lines)-1] {
			if p, err := legacy.ParseLine(l); err == nil && p.Kind == legacy.Message && p.Payload == d.payload {
				d.id.Store(int32(p.ID))
			}
		}
		return faultnet.Forward
	}
	id := d.id.Load()
	if id < 0 {
		return faultnet.Forward
	}
	for _, l := range strings.Split(string(data), "\n") {
		if p, err := legacy.ParseLine(l); err == nil && p.Kind == legacy.Ack && p.ID == int(id) {
			d.once.Do(func() { close(d.dropped) })
			return faultnet.Drop
		}
	}
	return faultnet.Forward
}

func (d *ackDropper) wait(ctx context.Context, t *testing.T) {
	t.Helper()
	select {
	case <-d.dropped:
	case <-ctx.Done():
		t.Fatal("the ACK was never seen:", ctx.Err())
	}
}

// TestQoSFalseLostAck: the legacy server counts a qos=false message as
// pending until ACKed, so when that ACK is lost every later qos+wait write
// blocks for ever. Ours, server and client alike, waits for no ACK of a
// qos=false message: with that ACK dropped on the wire, the next qos+wait
// write completes.
func TestQoSFalseLostAck(t *testing.T) {
	t.Parallel()
	t.Run("server", func(t *testing.T) {
		t.Parallel()
		ctx := testCtx(t)
		srv := startServer(t, server.Config{})
		drop := newAckDropper(faultnet.C2S, "lossy")
		rec := record(t, srv.addr, drop.filter)
		node := legacyNode(t, "lossy-ack", rec.Addr())
		sl, err := srv.Node(ctx, "lossy-ack")
		if err != nil {
			t.Fatal(err)
		}
		lostAck(ctx, t, drop, rec.probe, sl, node.ReadLine)
	})
	t.Run("client", func(t *testing.T) {
		t.Parallel()
		ctx := testCtx(t)
		lsrv := legacyServer(t)
		drop := newAckDropper(faultnet.S2C, "lossy")
		rec := record(t, lsrv.Addr(), drop.filter)
		cl := ourClient(ctx, t, client.Config{ID: "lossy-ack", Server: rec.Addr()}, newEvents())
		lc, err := lsrv.Conn(ctx, "lossy-ack")
		if err != nil {
			t.Fatal(err)
		}
		lostAck(ctx, t, drop, rec.probe, cl, lc.ReadLine)
	})
}

// lostAck writes a qos message, a qos=false one whose ACK drop drops, and
// a qos+wait one that must complete within a few T (beyond the process's
// stalls meanwhile).
func lostAck(ctx context.Context, t *testing.T, drop *ackDropper, probe *lagprobe.Probe, l end, read func(context.Context) (string, error)) {
	t.Helper()
	for i, line := range []string{"first", "lossy", "after"} {
		var err error
		switch i {
		case 0:
			err = l.Write(ctx, line)
		case 1: // drop, armed with "lossy", drops its ACK
			err = l.Write(ctx, line, link.QoS(false))
		case 2:
			drop.wait(ctx, t)
			err = withinNetOfStalls(ctx, probe, 4*T, func(ctx context.Context) error { return l.Write(ctx, line) })
		}
		if err != nil {
			t.Fatalf("write %q: %v", line, err)
		}
		if got, err := read(ctx); err != nil || got != line+"\n" {
			t.Fatalf("peer read %q, %v; want %q", got, err, line)
		}
	}
}

// TestFullQueueLosesNothing: the legacy node ACKs a message before it
// queues it, and a full queue drops it: lost. Ours never ACKs a message it
// has not queued: with a receive queue of 2 and a slow application, every
// qos message of a burst without wait is read exactly once.
func TestFullQueueLosesNothing(t *testing.T) {
	t.Parallel()
	const n, queue = 10, 2
	t.Run("server", func(t *testing.T) {
		t.Parallel()
		ctx := testCtx(t)
		srv := startServer(t, server.Config{RecvQueue: queue})
		node := legacyNode(t, "full", srv.addr)
		sl, err := srv.Node(ctx, "full")
		if err != nil {
			t.Fatal(err)
		}
		slowBurst(ctx, t, n, sl, nodeWrite(node, true, true), nodeWrite(node, true, false))
	})
	t.Run("client", func(t *testing.T) {
		t.Parallel()
		ctx := testCtx(t)
		lsrv := legacyServer(t)
		cl := ourClient(ctx, t, client.Config{ID: "full", Server: lsrv.Addr(), RecvQueue: queue}, newEvents())
		lc, err := lsrv.Conn(ctx, "full")
		if err != nil {
			t.Fatal(err)
		}
		slowBurst(ctx, t, n, cl, serverConnWrite(lc, true, true), serverConnWrite(lc, true, false))
	})
}

// TestFullQueueQoSFalse: qos=false messages of a legacy peer that find our
// receive queue full are queued with their ACK deferred until the
// application reads. None is lost, and the peer's next qos+wait write,
// which a legacy peer holds until every earlier id is ACKed (qos=false
// ones too), waits for the application and then completes. (Before the
// deferred ACK, a message that found the queue full for T/2 was left
// unACKed: a qos=false one was lost, and that write blocked for ever.)
func TestFullQueueQoSFalse(t *testing.T) {
	t.Parallel()
	const queue = 2
	t.Run("server", func(t *testing.T) {
		t.Parallel()
		attempts(t, func(ctx context.Context, probe *lagprobe.Probe) string {
			srv := startServer(t, server.Config{RecvQueue: queue})
			node := legacyNode(t, "fullnoqos", srv.addr)
			sl, err := srv.Node(ctx, "fullnoqos")
			if err != nil {
				t.Fatal(err)
			}
			return stalledApp(ctx, t, 2*queue, sl, srv.events, probe, nodeWrite(node, false, true), nodeWrite(node, true, true))
		})
	})
	t.Run("client", func(t *testing.T) {
		t.Parallel()
		attempts(t, func(ctx context.Context, probe *lagprobe.Probe) string {
			lsrv := legacyServer(t)
			ev := newEvents()
			cl := ourClient(ctx, t, client.Config{ID: "fullnoqos", Server: lsrv.Addr(), RecvQueue: queue}, ev)
			lc, err := lsrv.Conn(ctx, "fullnoqos")
			if err != nil {
				t.Fatal(err)
			}
			return stalledApp(ctx, t, 2*queue, cl, ev, probe, serverConnWrite(lc, false, true), serverConnWrite(lc, true, true))
		})
	})
}

// stalledApp has the legacy peer write n qos=false messages to l, whose
// application reads nothing for 2T, then a qos+wait one; then the
// application reads: every message once, in order, and the qos+wait write
// completes only then.
//
// An outage loses a qos=false message that was on its way, and a legacy
// peer then holds its qos+wait write for ever: the test would hang. No
// outage comes but for the machine: one that the process's stalls explain
// (see stallDown) voids the attempt, which it returns why.
func stalledApp(ctx context.Context, t *testing.T, n int, l end, ev *events, probe *lagprobe.Probe, noQoS, qosWait func(context.Context, string) error) (void string) {
	t.Helper()
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var watch sync.WaitGroup
	defer watch.Wait()
	defer cancel(nil)
	watch.Go(func() {
		if _, err := ev.wait(ctx, "an outage", func(e link.Event) bool { return e.Kind == link.Down }); err != nil {
			return
		}
		if at, st, ok := ev.stallDown(probe, T, T/4); ok {
			cancel(fmt.Errorf("an outage at %s, the process stalled %v of the T before", at.Format("15:04:05.000"), st.Round(time.Millisecond)))
		}
	})
	voided := func() string {
		if c := context.Cause(ctx); c != nil && !errors.Is(c, context.Canceled) && !errors.Is(c, context.DeadlineExceeded) {
			return c.Error()
		}
		return ""
	}
	var want []string
	for i := range n {
		p := fmt.Sprintf("f%d", i)
		want = append(want, p)
		if err := noQoS(ctx, p); err != nil {
			if v := voided(); v != "" {
				return v
			}
			t.Fatal(err)
		}
	}
	want = append(want, "last")
	wrote := make(chan error, 1)
	go func() { wrote <- qosWait(ctx, "last") }()
	stall := time.NewTimer(2 * T) // longer than any hold of the read loop
	defer stall.Stop()
	select {
	case <-stall.C:
	case err := <-wrote:
		t.Fatalf("the qos+wait write returned (%v) before the application read: an ACK was given too early", err)
	case <-ctx.Done():
		if v := voided(); v != "" {
			return v
		}
		t.Fatal(ctx.Err())
	}
	var got []string
	for range want {
		s, err := l.ReadLine(ctx)
		if err != nil {
			if v := voided(); v != "" {
				return v
			}
			t.Fatal(err)
		}
		got = append(got, strings.TrimSuffix(s, "\n"))
	}
	if !slices.Equal(got, want) {
		t.Fatalf("read %q, want %q", got, want)
	}
	if err := <-wrote; err != nil {
		t.Fatalf("the qos+wait write after qos=false ones: %v", err)
	}
	if st := l.Stats(); st.Refused != 0 || st.Deferred == 0 {
		t.Fatalf("refused %d (want 0), deferred %d (want > 0)", st.Refused, st.Deferred)
	}
	return ""
}

// attempts runs once until it returns "" (done), at most five times; a
// non-empty return says why that attempt is void (the machine's doing).
func attempts(t *testing.T, once func(context.Context, *lagprobe.Probe) string) {
	t.Helper()
	const tries = 5
	for try := 1; ; try++ {
		v := once(testCtx(t), lagprobe.New(t))
		if v == "" {
			return
		}
		if try == tries {
			t.Fatalf("attempt %d of %d void: %s", try, tries, v)
		}
		t.Logf("attempt %d void, running again: %s", try, v)
	}
}

// slowBurst has the legacy peer write n messages without wait to l, whose
// application reads one line every T/2, and checks each is read once.
func slowBurst(ctx context.Context, t *testing.T, n int, l end, first, spread func(context.Context, string) error) {
	t.Helper()
	led := newLedger("our side")
	led.expect("b", false)
	var wg sync.WaitGroup
	var werr error
	wg.Go(func() { werr = writeNoWait(ctx, "b", n, n, first, spread) })
	tick := time.NewTicker(T / 2) // a slow application
	defer tick.Stop()
	for range n {
		select {
		case <-tick.C:
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		}
		line, err := l.ReadLine(ctx)
		if err != nil {
			t.Fatal(err)
		}
		led.got(line)
	}
	wg.Wait()
	if werr != nil {
		t.Fatal(werr)
	}
	for _, line := range drain(ctx, t, l) { // every write is ACKed: nothing more may come
		led.got(line)
	}
	led.verify(t, "b", n)
	st := l.Stats()
	t.Logf("%d messages: %d refused while the queue was full (repeated later), %d duplicates", n, st.Refused, st.Duplicates)
}
