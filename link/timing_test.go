package link

import (
	"context"
	"errors"
	"io"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

const T = 2 * time.Second

// The link writes a keepalive at once, then whenever it has written
// nothing for T/4; a silent peer is an outage after exactly T.
func TestKeepaliveAndSilentPeer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newLink(t, Config{ID: "n", Timeout: T})
		start := time.Now()
		p, done := attachPeer(t.Context(), l)
		for i := range 4 {
			ka := p.next(t)
			if ka.s != "" || ka.at.Sub(start) != time.Duration(i)*T/4 {
				t.Fatalf("line %d: %q at %v, want keepalive at %v", i, ka.s, ka.at.Sub(start), time.Duration(i)*T/4)
			}
		}
		err := <-done
		if !errors.Is(err, ErrTimeout) || time.Since(start) != T {
			t.Fatalf("Attach = %v after %v; want ErrTimeout after %v", err, time.Since(start), T)
		}
		if l.Up() {
			t.Fatal("link still up after the outage")
		}
	})
}

// A node's first read waits 2T (FirstTimeout); later reads wait T.
func TestFirstTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newLink(t, nodeCfg("n", T))
		start := time.Now()
		_, done := attachPeer(t.Context(), l)
		if err := <-done; !errors.Is(err, ErrTimeout) || time.Since(start) != 2*T {
			t.Fatalf("Attach = %v after %v; want ErrTimeout after 2T", err, time.Since(start))
		}
	})
}

// A peer that sends keepalives every T/4 keeps the link up indefinitely,
// and a keepalive-only exchange goes no faster than T/4.
func TestKeepalivesKeepLinkUp(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		l := newLink(t, Config{ID: "n", Timeout: T})
		p, done := attachPeer(ctx, l)
		tick := time.NewTicker(T / 4)
		defer tick.Stop()
		for range 40 { // 10 T
			<-tick.C
			p.send(t, "\n")
		}
		if !l.Up() {
			t.Fatal("link went down although the peer sent keepalives")
		}
		synctest.Wait()
		if st := l.Stats(); st.PeerKeepalive != T/4 || st.PeerTimeout() != T {
			t.Fatalf("inferred peer keepalive %v (T %v), want %v", st.PeerKeepalive, st.PeerTimeout(), T/4)
		}
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Fatalf("Attach = %v, want context.Canceled", err)
		}
	})
}

// With AnswerKeepalives, a peer's keepalive is answered at once when this
// side has written nothing for T/8: the link's keepalives follow the
// peer's rhythm (one read-loop wakeup for both directions) and its timer,
// T/4 + T/16 after an answer, does not fire; when the peer falls silent,
// the timer's T/4 rhythm resumes. OnKeepalive is called for both kinds.
func TestKeepaliveEcho(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var fed atomic.Int32
		l := newLink(t, Config{ID: "n", Timeout: T, AnswerKeepalives: true, OnKeepalive: func() { fed.Add(1) }})
		start := time.Now()
		p, _ := attachPeer(t.Context(), l)
		want := []time.Duration{0} // the keepalive at attach
		time.Sleep(3 * T / 16)
		for i := range 4 { // the peer's at 3T/16, 7T/16, 11T/16, 15T/16
			p.send(t, "\n")
			want = append(want, 3*T/16+time.Duration(i)*T/4)
			time.Sleep(T / 4)
		}
		// Silent peer from 15T/16: the timer's first keepalive T/4 + T/16
		// after the last answer (the peer leads: its next keepalive is due
		// first), then T/4 steps.
		want = append(want, 20*T/16, 24*T/16)
		for i, w := range want {
			ka := p.next(t)
			if ka.s != "" || ka.at.Sub(start) != w {
				t.Fatalf("line %d: %q at %v, want a keepalive at %v", i, ka.s, ka.at.Sub(start), w)
			}
		}
		synctest.Wait()
		if n := int(fed.Load()); n != len(want)-1 {
			t.Fatalf("OnKeepalive called %d times, want %d", n, len(want)-1)
		}
	})
}

// Without AnswerKeepalives (a node), the link's keepalives keep their own
// T/4 rhythm whatever the peer's, so that the peer can tell its T. A node
// writes none as its socket is attached: its greeting went with its ID.
func TestKeepaliveNoAnswer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newLink(t, nodeCfg("n", T))
		start := time.Now()
		p, _ := attachPeer(t.Context(), l)
		go func() {
			time.Sleep(3 * T / 16)
			for range 8 {
				p.conn.Write([]byte("\n"))
				time.Sleep(T / 8)
			}
		}()
		for i := 1; i <= 6; i++ {
			ka := p.next(t)
			if ka.s != "" || ka.at.Sub(start) != time.Duration(i)*T/4 {
				t.Fatalf("line %d: %q at %v, want a keepalive at %v", i, ka.s, ka.at.Sub(start), time.Duration(i)*T/4)
			}
		}
	})
}

// Two answering ends do not answer each other's answers: each writes
// about one keepalive per T/4.
func TestKeepaliveEchoNoPingPong(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var srvKA, nodeKA atomic.Int32
		scfg, ncfg := serverCfg("s", T), nodeCfg("s", T)
		ncfg.AnswerKeepalives = true
		scfg.OnKeepalive = func() { srvKA.Add(1) }
		ncfg.OnKeepalive = func() { nodeKA.Add(1) }
		srv, node := newLink(t, scfg), newLink(t, ncfg)
		ctx, cancel := context.WithCancel(t.Context())
		var a attacher
		pipePair(t, ctx, &a, srv, node)
		time.Sleep(10 * T)
		synctest.Wait()
		if !srv.Up() || !node.Up() {
			t.Fatal("link down")
		}
		cancel()
		a.wg.Wait()
		if s, n := srvKA.Load(), nodeKA.Load(); s > 41 || n > 41 || s < 39 || n < 39 {
			t.Fatalf("keepalives in 10T: server %d, node %d; want about 40 each", s, n)
		}
	})
}

// An unacknowledged qos message is repeated, byte for byte, every T;
// once acknowledged, Write returns and repeats stop.
func TestRepeatAfterT(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newLink(t, Config{ID: "n", Timeout: T})
		p, _ := attachPeer(t.Context(), l)
		p.keepAlive(t.Context(), T)
		werr := make(chan error, 1)
		start := time.Now()
		go func() { werr <- l.Write(t.Context(), "hello") }()
		for i := range 3 {
			m := p.nextMsg(t)
			if m.s != "00hello" || m.at.Sub(start) != time.Duration(i)*T {
				t.Fatalf("transmission %d: %q at %v; want 00hello at %v", i, m.s, m.at.Sub(start), time.Duration(i)*T)
			}
		}
		p.send(t, "00\n")
		if err := <-werr; err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if st := l.Stats(); st.Sent != 1 || st.Repeats != 2 || st.Acked != 1 || st.Pending != 0 {
			t.Fatalf("stats %+v", st)
		}
		// No more repeats: only keepalives follow.
		deadline := time.Now().Add(3 * T)
		for time.Now().Before(deadline) {
			if m := p.next(t); m.s != "" {
				t.Fatalf("unexpected line %q after the ACK", m.s)
			}
		}
	})
}

// After an outage, pending qos messages are sent again on the next
// socket, with their ids, before anything newer.
func TestRepeatAfterReconnect(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newLink(t, Config{ID: "n", Timeout: T})
		p, done := attachPeer(t.Context(), l)
		errs := make(chan error, 3)
		go func() { errs <- l.Write(t.Context(), "first") }()
		if m := p.nextMsg(t); m.s != "00first" {
			t.Fatalf("got %q", m.s)
		}
		p.send(t, "00\n")
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
		go func() { errs <- l.Write(t.Context(), "a", Wait(false)) }()
		go func() {
			synctest.Wait()
			errs <- l.Write(t.Context(), "b", Wait(false))
		}()
		got := map[string]bool{p.nextMsg(t).s: true, p.nextMsg(t).s: true}
		if !got["01a"] || !got["02b"] {
			t.Fatalf("got %v", got)
		}
		p.conn.Close() // outage: both unacknowledged
		// The read loop sees EOF, or a write finds the pipe closed first.
		if err := <-done; !errors.Is(err, ErrPeerClosed) && !errors.Is(err, io.ErrClosedPipe) {
			t.Fatalf("Attach = %v, want ErrPeerClosed", err)
		}
		p2, _ := attachPeer(t.Context(), l)
		if a, b := p2.nextMsg(t), p2.nextMsg(t); a.s != "01a" || b.s != "02b" {
			t.Fatalf("after reconnect: %q, %q; want 01a, 02b", a.s, b.s)
		}
		p2.send(t, "02\n01\n")
		for range 2 {
			if err := <-errs; err != nil {
				t.Fatal(err)
			}
		}
		if c := l.Connects(); c != 2 {
			t.Fatalf("Connects = %d", c)
		}
	})
}

// The server's write pause: after attach, only keepalives and ACKs go out
// until the peer's first bytes and WritePause more.
func TestWritePause(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		pause := 200 * time.Millisecond
		l := newLink(t, Config{ID: "n", Timeout: T, WritePause: pause})
		go l.Write(t.Context(), "queued", QoS(false))
		synctest.Wait()
		p, _ := attachPeer(t.Context(), l)
		start := time.Now()
		if ka := p.next(t); ka.s != "" {
			t.Fatalf("first line %q, want a keepalive", ka.s)
		}
		time.Sleep(T / 8) // the node's first bytes come a little later
		p.send(t, "00hi\n")
		first := time.Now()
		if ack := p.nextMsg(t); ack.s != "00" || ack.at != first {
			t.Fatalf("got %q at %v; want the ACK 00 at once", ack.s, ack.at.Sub(start))
		}
		if m := p.nextMsg(t); m.s != "00queued" || m.at.Sub(first) != pause {
			t.Fatalf("got %q %v after the first bytes; want 00queued after %v", m.s, m.at.Sub(first), pause)
		}
	})
}

// A node's link comes up with the first line from the server, and holds
// writes until then.
func TestNodeUpOnFirstLine(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newLink(t, nodeCfg("n", T))
		p, _ := attachPeer(t.Context(), l)
		synctest.Wait()
		if l.Up() {
			t.Fatal("node link up before any line")
		}
		werr := make(chan error, 1)
		go func() { werr <- l.Write(t.Context(), "x", QoS(false)) }()
		time.Sleep(T / 8)
		p.send(t, "\n")
		if err := <-werr; err != nil {
			t.Fatal(err)
		}
		if !l.Up() {
			t.Fatal("node link not up after the first line")
		}
		if m := p.nextMsg(t); m.s != "00x" {
			t.Fatalf("got %q", m.s)
		}
	})
}
