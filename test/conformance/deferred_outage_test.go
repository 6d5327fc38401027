package conformance

import (
	"context"
	"net"
	"testing"

	"github.com/tether-iot/tether/client"
	"github.com/tether-iot/tether/internal/harness/legacy"
	"github.com/tether-iot/tether/internal/harness/testutil"
)

// TestDeferredAckOutage: a qos=false message of a legacy server finds our
// client's receive queue full, so its ACK is deferred until the
// application reads; the socket ends before that, and the application
// reads while the link is down. A legacy server never repeats a qos=false
// message and holds its next qos+wait write until every earlier id is
// ACKed: the deferred ACK must go out on the next socket, or that write
// blocks for ever. (Found under load in TestFullQueueQoSFalse/client,
// which hung for 45 s when an outage fell within its stalled read.)
func TestDeferredAckOutage(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	ln := testutil.Listen(t)
	// The second dial waits until the application has read: the deferred
	// ACK falls due while no socket is attached.
	gate := make(chan struct{})
	dials := 0
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		if dials++; dials > 1 {
			select {
			case <-gate:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}
	ev := newEvents()
	cl := ourClient(ctx, t, client.Config{ID: "deferout", Server: ln.Addr().String(), RecvQueue: 1,
		ReconnectDelay: T / 4, Dial: dial}, ev)
	p := acceptRaw(ctx, t, ln)
	if id, err := p.next(ctx); err != nil || id != "deferout" {
		t.Fatalf("first line %q, %v; want the ID", id, err)
	}
	// 00 fills the queue and is ACKed; 01 (qos=false for the sender: it
	// will not repeat it) is queued with its ACK deferred; then the
	// server closes the socket. TCP keeps the order: our client has
	// queued 01 when it sees the end.
	p.send("\n00f0\n")
	p.expectAck(ctx, 0)
	p.send("01f1\n")
	p.conn.(*net.TCPConn).CloseWrite()
	if err := ev.waitDown(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if st := cl.Stats(); st.Deferred != 1 {
		t.Fatalf("Stats.Deferred = %d, want 1", st.Deferred)
	}
	for _, want := range []string{"f0", "f1"} {
		if got, err := cl.ReadLine(ctx); err != nil || got != want {
			t.Fatalf("ReadLine: %q, %v; want %q", got, err, want)
		}
	}
	close(gate)
	p2 := acceptRaw(ctx, t, ln)
	if id, err := p2.next(ctx); err != nil || id != "deferout" {
		t.Fatalf("first line %q, %v; want the ID", id, err)
	}
	p2.send("\n")
	// The ACK of 01 is owed since before this socket: it comes before
	// any keepalive of our client's timer (T/4 after its last write).
	for range 3 {
		s, err := p2.next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		l, err := legacy.ParseLine(s)
		if err != nil {
			t.Fatalf("malformed line %q: %v", s, err)
		}
		if l.Kind == legacy.Ack && l.ID == 1 {
			return
		}
		if l.Kind != legacy.Keepalive {
			t.Fatalf("got %v %02x %q, want the ACK of 01", l.Kind, l.ID, l.Payload)
		}
	}
	t.Fatal("three keepalives and no ACK of 01: the deferred ACK was dropped with the socket (a legacy sender's next qos+wait write would block for ever)")
}
