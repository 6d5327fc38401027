package legacy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// upNode starts a node against a raw listener and brings its link up.
func upNode(t *testing.T, ctx context.Context, id string) (*Node, *peer) {
	t.Helper()
	ln := listen(t)
	node := startNode(t, NodeConfig{ID: id, Addr: ln.Addr().String()})
	p := accept(t, ln, id)
	p.keepalive()
	if err := node.WaitUp(ctx); err != nil {
		t.Fatal(err)
	}
	return node, p
}

// The node waits T/40 before its ID, sends keepalives, and gives up after
// 2T without a line from the server; the link is never up.
func TestNodeHandshakeAndFirstRead(t *testing.T) {
	t.Parallel()
	retry(t, func() {
		ln := listen(t)
		node := startNode(t, NodeConfig{ID: "h", Addr: ln.Addr().String()})
		c, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		p := newPeer(t, c)
		if got := p.line(); got != "h" {
			t.Fatalf("ID %q", got)
		}
		if el := time.Since(start); el < T/40 {
			t.Errorf("ID after %v, want >= %v", el, T/40)
		}
		// The 2T run from the start of the reader, just before the ID.
		if n := p.untilEOF(); n < 4 {
			voidIfStalled(t, fmt.Sprintf("%d keepalives in 2T, want about 8", n))
			t.Errorf("%d keepalives in 2T, want about 8", n)
		}
		if el := time.Since(start); el < 2*T-T/10 {
			t.Errorf("node gave up %v after accept, want about 2T", el)
		}
		if node.Up() {
			t.Error("node up without a line from the server")
		}
	})
}

// A qos message is repeated, identical, every T until ACKed; wait=True
// holds the next message back until then.
func TestNodeQosRepeatAndWait(t *testing.T) {
	t.Parallel()
	retry(t, func() {
		ctx := testCtx(t)
		node, p := upNode(t, ctx, "q")
		first, second := make(chan error, 1), make(chan error, 1)
		go func() { first <- node.Write(ctx, "a", true, true) }()
		p.expect("00a")
		start := time.Now()
		go func() { second <- node.Write(ctx, "b", true, true) }()
		p.expect("00a")
		if el := time.Since(start); el < T {
			t.Errorf("repeat after %v, want >= T", el)
		}
		p.send("00\n")
		if err := <-first; err != nil {
			t.Fatal(err)
		}
		p.expect("01b")
		p.send("01\n")
		if err := <-second; err != nil {
			t.Fatal(err)
		}
	})
}

// The node ACKs every message, clears its window on 00 (so a repeated 00
// is delivered twice) and drops other repeats.
func TestNodeWindow(t *testing.T) {
	t.Parallel()
	retry(t, func() {
		ctx := testCtx(t)
		node, p := upNode(t, ctx, "w")
		for _, l := range []string{"00x", "00x", "01y", "01y", "02z"} {
			p.send(l + "\n")
			p.expect(l[:2])
		}
		got := readN(t, ctx, node.ReadLine, 4)
		if fmt.Sprint(got) != fmt.Sprint([]string{"x\n", "x\n", "y\n", "z\n"}) {
			t.Fatalf("node read %q", got)
		}
		if n := node.Connects(); n != 1 {
			voidIfStalled(t, fmt.Sprintf("connects = %d, want 1", n))
			t.Errorf("connects = %d, want 1", n)
		}
	})
}

// Ids run 00..ff, then wrap to 01; qos=false messages take ids too.
func TestNodeIDsWrap(t *testing.T) {
	t.Parallel()
	retry(t, func() {
		ctx := testCtx(t)
		node, p := upNode(t, ctx, "ids")
		done := make(chan error, 1)
		go func() {
			for i := range 257 {
				if err := node.Write(ctx, fmt.Sprint(i), false, true); err != nil {
					done <- err
					return
				}
			}
			done <- nil
		}()
		for i := range 257 {
			want := fmt.Sprintf("%02x%d", i, i)
			if i == 256 {
				want = "01256"
			}
			p.expect(want)
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	})
}

// The 21st undelivered message is ACKed, then dropped, and the node
// declares an outage.
func TestNodeQueueOverflow(t *testing.T) {
	t.Parallel()
	retry(t, func() {
		ctx := testCtx(t)
		node, p := upNode(t, ctx, "o")
		for i := range 21 {
			p.send(fmt.Sprintf("%02xm%d\n", i, i))
		}
		for i := range 21 {
			p.expect(fmt.Sprintf("%02x", i))
		}
		p.untilEOF()
		got := readN(t, ctx, node.ReadLine, 20)
		if got[19] != "m19\n" {
			t.Fatalf("last line %q", got[19])
		}
		short, cancel := context.WithTimeout(ctx, T/2)
		defer cancel()
		if s, err := node.ReadLine(short); err == nil {
			t.Fatalf("21st line delivered: %q", s)
		}
	})
}

// A non-hex id kills the node's reader without an outage: later messages
// are neither ACKed nor timed out.
func TestNodeNonHexKillsReader(t *testing.T) {
	t.Parallel()
	retry(t, func() {
		ctx := testCtx(t)
		node, p := upNode(t, ctx, "nh")
		p.send("zzhello\n00x\n")
		p.silentFor(2 * T)
		if !node.Up() {
			t.Error("node went down")
		}
	})
}

// At start-up a refused connection calls bad_server, which by default
// stops the node.
func TestNodeBadServer(t *testing.T) {
	t.Parallel()
	retry(t, func() {
		ctx := testCtx(t)
		ln := listen(t)
		addr := ln.Addr().String()
		ln.Close()
		node := startNode(t, NodeConfig{ID: "b", Addr: addr})
		if err := node.WaitUp(ctx); !errors.Is(err, ErrBadServer) {
			t.Fatalf("WaitUp: %v", err)
		}
		if !errors.Is(node.Err(), ErrBadServer) {
			t.Fatalf("Err: %v", node.Err())
		}
	})
}

// A BadServer hook that returns nil lets the node retry after 2T.
func TestNodeBadServerHook(t *testing.T) {
	t.Parallel()
	retry(t, func() {
		ctx := testCtx(t)
		srv := startServer(t, ServerConfig{})
		var dials, hooks atomic.Int32
		node := startNode(t, NodeConfig{
			ID:   "bh",
			Addr: srv.Addr(),
			Dial: func(ctx context.Context, addr string) (net.Conn, error) {
				if dials.Add(1) == 1 {
					return nil, &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
				}
				var d net.Dialer
				return d.DialContext(ctx, "tcp", addr)
			},
			BadServer: func(context.Context) error { hooks.Add(1); return nil },
		})
		if err := node.WaitUp(ctx); err != nil {
			t.Fatal(err)
		}
		if hooks.Load() != 1 || dials.Load() != 2 {
			t.Errorf("hooks %d, dials %d", hooks.Load(), dials.Load())
		}
	})
}

// A restart is a new process: the connection drops, pending calls fail,
// and ids start again at 00.
func TestNodeRestart(t *testing.T) {
	t.Parallel()
	retry(t, func() {
		ctx := testCtx(t)
		ln := listen(t)
		node := startNode(t, NodeConfig{ID: "r", Addr: ln.Addr().String()})
		p := accept(t, ln, "r")
		p.keepalive()
		if err := node.WaitUp(ctx); err != nil {
			t.Fatal(err)
		}
		if err := node.Write(ctx, "a", false, false); err != nil {
			t.Fatal(err)
		}
		p.expect("00a")
		// The read is the old process's: a ReadLine that the goroutine made
		// only after Restart would be the new process's, and wait.
		read := make(chan error, 1)
		old := node.proc()
		go func() { _, err := old.readLine(ctx); read <- err }()
		if err := node.Restart(); err != nil {
			t.Fatal(err)
		}
		if err := <-read; !errors.Is(err, ErrRestarted) {
			t.Fatalf("pending read: %v", err)
		}
		p.untilEOF()
		p = accept(t, ln, "r")
		p.keepalive()
		if err := node.Write(ctx, "b", false, false); err != nil {
			t.Fatal(err)
		}
		p.expect("00b")
		if err := node.Close(); err != nil {
			t.Fatal(err)
		}
		if err := node.Restart(); !errors.Is(err, net.ErrClosed) {
			t.Fatalf("Restart after Close: %v", err)
		}
		if err := node.Write(ctx, "c", false, false); !errors.Is(err, net.ErrClosed) {
			t.Fatalf("Write after Close: %v", err)
		}
	})
}
