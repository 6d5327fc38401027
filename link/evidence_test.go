package link

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"syscall"
	"testing"
	"testing/synctest"
	"time"
)

// The rules for an identical 00 first on a new socket (see Window), one
// by one.
func TestWindowCandidateRules(t *testing.T) {
	const horizon = time.Minute
	accepted := func() Window {
		var w Window
		w.accept(0, []byte("boot"), fresh, testNow)
		return w
	}
	for _, tc := range []struct {
		name string
		w    func() Window
		p    string
		g    Greeting
		at   time.Duration // after the 00 was accepted
		want verdict
		why  reason
	}{
		{"fresh greeting", accepted, "boot", GreetFresh, time.Second, restart, byGreeting},
		{"repeat greeting", accepted, "boot", GreetRepeat, time.Hour, duplicate, byGreeting},
		{"repeat greeting, other payload", accepted, "other", GreetRepeat, time.Second, restart, byRule},
		{"evidence", func() Window { w := accepted(); w.zeroAcked = true; return w }, "boot", GreetNone, time.Second, restart, byEvidence},
		{"within the horizon", accepted, "boot", GreetNone, horizon, duplicate, byAge},
		{"past the horizon", accepted, "boot", GreetNone, horizon + time.Millisecond, restart, byHorizon},
		{"age unknown", func() Window { w := accepted(); w.zeroAt = 0; return w }, "boot", GreetNone, time.Second, restart, byUnknown},
		{"moved since", func() Window { w := accepted(); w.accept(1, []byte("x"), fresh, testNow); return w }, "boot", GreetRepeat, time.Second, restart, byRule},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := tc.w()
			v, why := w.check(0, []byte(tc.p), true, tc.g, testNow.Add(tc.at), horizon)
			if v != tc.want || why != tc.why {
				t.Errorf("got %s by %d, want %s by %d", verdictName(v), why, verdictName(tc.want), tc.why)
			}
		})
	}
	w := accepted()
	if v, why := w.check(0, []byte("boot"), true, GreetNone, testNow, -1); v != restart || why != byNoHorizon {
		t.Errorf("negative horizon: %s by %d, want a restart", verdictName(v), why)
	}
	// Not first on its socket: a sender without wait repeating it, whatever
	// its greeting said.
	if v, _ := w.check(0, []byte("boot"), false, GreetFresh, testNow, horizon); v != duplicate {
		t.Errorf("a repeat after other messages on the socket: %s", verdictName(v))
	}
}

// A window saved in the first encoding (41 bytes) still decodes; the age
// of its 00 is unknown, so an identical 00 is taken for a restart.
func TestWindowDecodesV1(t *testing.T) {
	var w Window
	w.accept(0, []byte("boot"), fresh, testNow)
	w.accept(1, []byte("one"), fresh, testNow)
	w.accept(0, []byte("boot"), restart, testNow)
	v2, _ := w.MarshalBinary()
	v1 := v2[1:42] // bits, flags (without bit 3), hash: the old layout
	var got Window
	if err := got.UnmarshalBinary(v1); err != nil {
		t.Fatal(err)
	}
	want := w
	want.zeroAt = 0
	if got != want {
		t.Fatalf("v1 decoded to %+v, want %+v", got, want)
	}
	if v, why := got.check(0, []byte("boot"), true, GreetNone, testNow, time.Hour); v != restart || why != byUnknown {
		t.Errorf("identical 00 after a v1 window: %s by %d", verdictName(v), why)
	}
	w.zeroAcked = true
	b, _ := w.MarshalBinary()
	if err := got.UnmarshalBinary(b); err != nil || got != w {
		t.Fatalf("v2 round trip: %+v, %v; want %+v", got, err, w)
	}
	for _, bad := range [][]byte{nil, v2[:49], append([]byte{9}, v2[1:]...)} {
		if err := got.UnmarshalBinary(bad); err == nil {
			t.Errorf("%d bytes starting %d decoded", len(bad), bad)
		}
	}
}

func TestParseGreeting(t *testing.T) {
	for pre, want := range map[string]Greeting{
		"":            GreetNone,
		"\n":          GreetFresh,
		"\n\n":        GreetFresh,
		"00boot\n":    GreetRepeat,
		"00boot\n\n":  GreetRepeat,
		"00bo":        GreetNone, // cut: no greeting
		"00\n":        GreetNone, // an ACK
		"01boot\n":    GreetNone,
		"garbage\n":   GreetNone,
		"00boot\nxyz": GreetRepeat,
	} {
		if got := ParseGreeting([]byte(pre)); got != want {
			t.Errorf("ParseGreeting(%q) = %v, want %v", pre, got, want)
		}
	}
}

// The horizon counts from the last ACK of the 00 written, in fake time:
// within it an identical 00 with no evidence is a repeat, past it a
// restart; both are counted and sent as events.
func TestRepeatHorizon(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const horizon = 10 * T
		var mu sync.Mutex
		var events []Event
		l := newLink(t, Config{ID: "n", Timeout: T, RepeatHorizon: horizon, OnEvent: func(ev Event) {
			mu.Lock()
			events = append(events, ev)
			mu.Unlock()
		}})
		wake := func(after time.Duration) {
			t.Helper()
			time.Sleep(after)
			p, done := attachPeer(t.Context(), l)
			p.send(t, "00boot\n")
			if ack := p.nextMsg(t).s; ack != "00" {
				t.Fatalf("ACK %q", ack)
			}
			p.conn.Close()
			<-done
		}
		wake(0)
		wake(horizon - T) // within: a repeat; its ACK restarts the clock
		wake(horizon - T) // within again
		if st := l.Stats(); st.Received != 1 || st.AmbiguousRepeats != 2 {
			t.Fatalf("within the horizon: %d delivered, %d ambiguous repeats; want 1, 2", st.Received, st.AmbiguousRepeats)
		}
		wake(horizon + T)
		st := l.Stats()
		if st.Received != 2 || st.AmbiguousRestarts != 1 || st.PeerRestarts != 1 {
			t.Fatalf("past the horizon: %+v", st)
		}
		synctest.Wait()
		mu.Lock()
		defer mu.Unlock()
		var kinds []string
		for _, ev := range events {
			if ev.Kind == AmbiguousRepeat || ev.Kind == AmbiguousRestart {
				kinds = append(kinds, ev.Kind.String())
				if !strings.Contains(ev.Detail, "id 00") || !strings.Contains(ev.Detail, "horizon") {
					t.Errorf("detail %q", ev.Detail)
				}
			}
		}
		if strings.Join(kinds, " ") != "ambiguous-repeat ambiguous-repeat ambiguous-restart" {
			t.Errorf("events %v", kinds)
		}
	})
}

// loopPair returns the two ends of a loopback TCP connection: the
// accepted one, then the dialed one.
func loopPair(t *testing.T) (a, b *net.TCPConn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	s, err := ln.Accept()
	if err != nil {
		c.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(); s.Close() })
	return s.(*net.TCPConn), c.(*net.TCPConn)
}

// Over real TCP, the receiver finds that the sender's stack acknowledged
// its ACK of 00 (rule 2), reports the window to OnWindow, and takes the
// sender's next identical 00 for a restart without ambiguity.
func TestTCPEvidenceOfAck(t *testing.T) {
	if !canReadTCP(t) {
		t.Skip("no TCP_INFO on this system")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	windows := make(chan Window, 8)
	l := newLink(t, Config{ID: "n", Timeout: time.Second, OnWindow: func(w Window) { windows <- w }})
	for wake := range 2 {
		node, done := legacyWake(t, ctx, l)
		node.Close() // after reading the ACK: our stack acknowledged it
		if err := <-done; !errors.Is(err, ErrPeerClosed) {
			t.Fatalf("Attach: %v", err)
		}
		var w Window
		for w = range windows {
			if w.zeroAcked {
				break
			}
		}
		if st := l.Stats(); st.Received != uint64(wake+1) || st.AmbiguousRepeats+st.AmbiguousRestarts != 0 {
			t.Fatalf("wake %d: %+v", wake, st)
		}
	}
}

// Rule 2 after a reset: the sender's stack acknowledged our ACK of its
// 00, then the socket ended in a reset (a sender that closes it with
// bytes unread resets it: a live legacy node whose timeout fired, its loop
// stalled, with our ACK unread). Its next identical 00 is still delivered
// (a duplicate rather than a loss), but as an ambiguous restart: counted,
// warned and stored with the window. Before, it was an exact restart: an
// uncounted duplicate.
func TestTCPEvidenceOfAckThenReset(t *testing.T) {
	if !canReadTCP(t) {
		t.Skip("no TCP_INFO on this system")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	windows := make(chan Window, 8)
	l := newLink(t, Config{ID: "n", Timeout: time.Second, OnWindow: func(w Window) { windows <- w }})
	node, done := legacyWake(t, ctx, l)
	if _, err := node.Write([]byte("\n")); err != nil {
		t.Fatal(err)
	} // unread by the link before the reset, or read: either way
	node.SetLinger(0)
	node.Close() // a reset
	if err := <-done; !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("Attach: %v, want a reset", err)
	}
	var w Window // the last one given: Attach has returned
	for len(windows) > 0 {
		w = <-windows
	}
	if !w.zeroAcked || !w.zeroReset {
		t.Fatalf("window after the reset: zeroAcked %v, zeroReset %v; want both", w.zeroAcked, w.zeroReset)
	}
	b, _ := w.MarshalBinary()
	var back Window
	if err := back.UnmarshalBinary(b); err != nil || back != w {
		t.Fatalf("the window's encoding lost the reset: %v", err)
	}

	node, done = legacyWake(t, ctx, l)
	if st := l.Stats(); st.Received != 2 || st.AmbiguousRestarts != 1 || st.AmbiguousRepeats != 0 {
		t.Fatalf("after the second 00: received %d, ambiguous restarts %d, repeats %d; want 2, 1, 0",
			st.Received, st.AmbiguousRestarts, st.AmbiguousRepeats)
	}
	node.Close()
	<-done
}

// With NoTCPEvidence (a node behind a proxy that terminates TCP), the
// TCP acknowledgement of our ACK is not taken for proof: the node's next
// identical 00 is decided by the horizon, and counted. Here the horizon
// is none (negative): delivered, an ambiguous restart; with the evidence
// it would be an exact one (TestTCPEvidenceOfAck).
func TestNoTCPEvidence(t *testing.T) {
	if !canReadTCP(t) {
		t.Skip("no TCP_INFO on this system")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	windows := make(chan Window, 8)
	l := newLink(t, Config{ID: "n", Timeout: time.Second, NoTCPEvidence: true, RepeatHorizon: -1,
		OnWindow: func(w Window) { windows <- w }})
	for wake := range 2 {
		node, done := legacyWake(t, ctx, l)
		node.Close()
		if err := <-done; !errors.Is(err, ErrPeerClosed) {
			t.Fatalf("Attach: %v", err)
		}
		for len(windows) > 0 {
			if w := <-windows; w.zeroAcked {
				t.Fatal("the window took TCP evidence")
			}
		}
		if st := l.Stats(); st.Received != uint64(wake+1) || st.AmbiguousRestarts != uint64(wake) {
			t.Fatalf("wake %d: received %d, ambiguous restarts %d", wake, st.Received, st.AmbiguousRestarts)
		}
	}
}

// legacyWake is a legacy node's wake on a new loopback socket attached to
// l: it sends 00boot and reads its ACK. It returns the node's end and
// Attach's result.
func legacyWake(t *testing.T, ctx context.Context, l *Link) (*net.TCPConn, <-chan error) {
	t.Helper()
	srv, node := loopPair(t)
	done := make(chan error, 1)
	go func() { done <- l.Attach(ctx, srv) }()
	p := newPeer(node)
	p.send(t, "00boot\n")
	if ack := p.nextMsg(t).s; ack != "00" {
		t.Fatalf("ACK %q", ack)
	}
	return node, done
}

// canReadTCP reports whether tcpProgress works on a loopback socket.
func canReadTCP(t *testing.T) bool {
	a, _ := loopPair(t)
	rc, err := a.SyscallConn()
	if err != nil {
		return false
	}
	_, _, ok := tcpProgress(rc)
	return ok
}

// nodeSocket attaches a new loopback TCP socket to the node-role link l
// and returns the scripted server on its other end, which has written its
// first line.
func nodeSocket(t *testing.T, ctx context.Context, l *Link, opts ...AttachOption) (*peer, *net.TCPConn, <-chan error) {
	t.Helper()
	node, srv := loopPair(t)
	done := make(chan error, 1)
	go func() { done <- l.AttachWith(ctx, node, opts...) }()
	p := newPeer(srv)
	p.keepAlive(ctx, time.Second)
	p.send(t, "\n")
	return p, srv, done
}

// A node's Greeting: fresh before its 00 is written; the 00 itself once
// the server's stack has acknowledged it on a socket that ended cleanly
// (Attach then counts it as sent: it is not written again before T); and
// fresh again once the 00 is acknowledged.
func TestGreetingOfNode(t *testing.T) {
	if !canReadTCP(t) {
		t.Skip("no TCP_INFO on this system")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	l := newLink(t, Config{ID: "n", Timeout: time.Second, UpOnFirstLine: true})
	if g, _ := l.Greeting(); string(g) != "\n" {
		t.Fatalf("greeting before 00: %q", g)
	}
	written := make(chan error, 1)
	go func() { written <- l.Write(ctx, "boot") }()
	// This server takes the 00 and ends the socket (FIN), unACKed.
	p, srv, done := nodeSocket(t, ctx, l)
	if m := p.nextMsg(t).s; m != "00boot" {
		t.Fatalf("got %q", m)
	}
	srv.Close()
	if err := <-done; !errors.Is(err, ErrPeerClosed) {
		t.Fatalf("Attach: %v", err)
	}
	g, opt := l.Greeting()
	if string(g) != "00boot\n" {
		t.Fatalf("greeting after a delivered 00: %q", g)
	}
	p, _, done = nodeSocket(t, ctx, l, opt)
	start := time.Now()
	if m := p.nextMsg(t).s; m != "00boot" {
		t.Fatalf("got %q", m)
	}
	if d := time.Since(start); d < 900*time.Millisecond {
		t.Errorf("00 written again after %v, before T", d)
	}
	p.send(t, "00\n")
	if err := <-written; err != nil {
		t.Fatal(err)
	}
	if g, _ := l.Greeting(); string(g) != "\n" {
		t.Fatalf("greeting after the ACK: %q", g)
	}
	l.Close()
	<-done
}

// A node whose 00 was acknowledged by the server's stack on a socket that
// then ended in a reset cannot tell whether the server read it (a server
// that closes a socket with unread bytes resets it): it says nothing.
func TestGreetingAfterReset(t *testing.T) {
	if !canReadTCP(t) {
		t.Skip("no TCP_INFO on this system")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	l := newLink(t, Config{ID: "n", Timeout: time.Second, UpOnFirstLine: true})
	go l.Write(ctx, "boot")
	p, srv, done := nodeSocket(t, ctx, l)
	if m := p.nextMsg(t).s; m != "00boot" {
		t.Fatalf("got %q", m)
	}
	srv.SetLinger(0)
	srv.Close() // a reset
	if err := <-done; err == nil || errors.Is(err, ErrPeerClosed) {
		t.Fatalf("Attach: %v, want a reset", err)
	}
	if g, _ := l.Greeting(); g != nil {
		t.Fatalf("greeting after a reset: %q, want none", g)
	}
}

// A server answers a client's greeting with its own, in its first write:
// two keepalives (its 00 never reached the client, or was acknowledged),
// then its 00 when the client's stack acknowledged it on a socket that
// ended cleanly; a single keepalive to a peer that did not greet.
func TestServerAnswersGreeting(t *testing.T) {
	if !canReadTCP(t) {
		t.Skip("no TCP_INFO on this system")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	l := newLink(t, Config{ID: "n", Timeout: time.Second})
	first := func(opts ...AttachOption) (string, *peer, *net.TCPConn, <-chan error) {
		t.Helper()
		srv, node := loopPair(t)
		done := make(chan error, 1)
		go func() { done <- l.AttachWith(ctx, srv, opts...) }()
		node.SetReadDeadline(time.Now().Add(5 * time.Second))
		buf := make([]byte, 64)
		n, err := node.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		node.SetReadDeadline(time.Time{})
		return string(buf[:n]), newPeer(node), node, done
	}
	got, _, node, done := first()
	if got != "\n" {
		t.Errorf("to a peer that did not greet: %q, want one keepalive", got)
	}
	node.Close()
	<-done
	got, p, node, done := first(Greeted(GreetFresh))
	if got != "\n\n" {
		t.Errorf("before our 00: %q, want two keepalives", got)
	}
	written := make(chan error, 1)
	go func() { written <- l.Write(ctx, "config") }()
	if m := p.nextMsg(t).s; m != "00config" {
		t.Fatalf("got %q", m)
	}
	node.Close() // took it, no ACK, clean end
	<-done
	got, p, node, done = first(Greeted(GreetFresh))
	if got != "\n\n00config\n" {
		t.Errorf("with our 00 received, unACKed: %q, want two keepalives and the 00", got)
	}
	p.send(t, "00\n")
	if err := <-written; err != nil {
		t.Fatal(err)
	}
	node.Close()
	<-done
}

// A node that greeted reads the server's answer from its first bytes: an
// identical 00 after "\n\n" is a restart of the server, after "\n\n00..."
// a repeat; after a single keepalive (a legacy server) the node decides by
// its own evidence.
func TestNodeReadsAnswer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newLink(t, Config{ID: "n", Timeout: T, UpOnFirstLine: true})
		greeted := func(o *attachOpts) { o.greeted = true }
		socket := func(first string) {
			t.Helper()
			c1, c2 := net.Pipe()
			done := make(chan error, 1)
			go func() { done <- l.AttachWith(t.Context(), c1, greeted) }()
			p := newPeer(c2)
			p.send(t, first)
			if ack := p.nextMsg(t).s; ack != "00" {
				t.Fatalf("ACK %q", ack)
			}
			c2.Close()
			<-done
		}
		socket("\n\n00config\n")
		socket("\n\n00config\n") // repeat: not delivered again
		if st := l.Stats(); st.Received != 1 || st.Duplicates != 1 {
			t.Fatalf("after a repeat: %+v", st)
		}
		// The fresh answer and the 00 came apart: still fresh.
		c1, c2 := net.Pipe()
		done := make(chan error, 1)
		go func() { done <- l.AttachWith(t.Context(), c1, greeted) }()
		p := newPeer(c2)
		p.send(t, "\n\n")
		p.send(t, "00config\n")
		if ack := p.nextMsg(t).s; ack != "00" {
			t.Fatalf("ACK %q", ack)
		}
		c2.Close()
		<-done
		if st := l.Stats(); st.Received != 2 || st.PeerRestarts != 1 || st.AmbiguousRepeats+st.AmbiguousRestarts != 0 {
			t.Fatalf("after a fresh answer: %+v", st)
		}
	})
}
