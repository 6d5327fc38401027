package link

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

// readN reads n lines from l.
func readN(t *testing.T, l *Link, n int) []string {
	t.Helper()
	var got []string
	for range n {
		s, err := l.ReadLine(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, s)
	}
	return got
}

// Every message is ACKed, new or repeated; each is delivered once. A
// repeat of 00 is not delivered again (the legacy weakness), even after
// later ids on the same socket; a 00 first on a new socket after the
// sender moved on is a restart: delivered, with an event.
func TestReceiveDedupAndRestart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		events := make(chan Event, 16)
		l := newLink(t, Config{ID: "n", Timeout: T})
		l.Notify(events)
		p, done := attachPeer(t.Context(), l)
		p.keepAlive(t.Context(), T)
		p.send(t, "00boot\n00boot\n01a\n01a\n02b\n00boot\n")
		var acks []string
		for len(acks) < 6 {
			acks = append(acks, p.nextMsg(t).s)
		}
		if got := strings.Join(acks, " "); got != "00 00 01 01 02 00" {
			t.Fatalf("ACKs %q", got)
		}
		// The sender restarts: a new socket, 00 first.
		p.conn.Close()
		<-done
		p, _ = attachPeer(t.Context(), l)
		p.keepAlive(t.Context(), T)
		p.send(t, "00boot\n01a\n")
		if a, b := p.nextMsg(t).s, p.nextMsg(t).s; a != "00" || b != "01" {
			t.Fatalf("ACKs after the restart %q %q", a, b)
		}
		if got := strings.Join(readN(t, l, 5), " "); got != "boot a b boot a" {
			t.Fatalf("delivered %q", got)
		}
		synctest.Wait()
		if st := l.Stats(); st.Duplicates != 3 || st.Received != 5 || st.PeerRestarts != 1 {
			t.Fatalf("stats %+v", st)
		}
		for ev := range len(events) {
			_ = ev
			if e := <-events; e.Kind == PeerRestart {
				return
			}
		}
		t.Fatal("no PeerRestart event")
	})
}

// noMsg fails if the link has written anything but keepalives to p.
// Call it after synctest.Wait.
func (p *peer) noMsg(t *testing.T) {
	t.Helper()
	for {
		select {
		case l := <-p.lines:
			if l.s != "" {
				t.Fatalf("unexpected line %q", l.s)
			}
		default:
			return
		}
	}
}

// Messages beyond RecvQueue unread lines are queued with their ACK
// deferred: the sender's waiting writes stop (flow control), a repeat is
// dropped without an ACK, and the read loop goes on reading, so the link
// stays up and the application's own qos write gets its ACK. Reading makes
// room and sends the deferred ACKs in order.
func TestReceiveQueueDeferredAck(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newLink(t, Config{ID: "n", Timeout: T, RecvQueue: 2})
		p, _ := attachPeer(t.Context(), l)
		p.keepAlive(t.Context(), T)
		p.send(t, "00a\n01b\n02c\n03d\n")
		if a, b := p.nextMsg(t).s, p.nextMsg(t).s; a != "00" || b != "01" {
			t.Fatalf("ACKs %q %q", a, b)
		}
		time.Sleep(2 * T)  // longer than any hold: the read loop must keep reading
		p.send(t, "02c\n") // the sender's repeat
		synctest.Wait()
		p.noMsg(t)
		if st := l.Stats(); !st.Up || st.Deferred != 2 || st.Buffered != 4 || st.Refused != 0 || st.Duplicates != 1 {
			t.Fatalf("stats %+v", st)
		}
		// The application writes before it reads: its ACK still comes in.
		wrote := make(chan error, 1)
		go func() { wrote <- l.Write(t.Context(), "x") }()
		if m := p.nextMsg(t).s; m != "00x" {
			t.Fatalf("wrote %q", m)
		}
		p.send(t, "00\n")
		if err := <-wrote; err != nil {
			t.Fatal(err)
		}
		readN(t, l, 1)
		if ack := p.nextMsg(t).s; ack != "02" {
			t.Fatalf("ACK %q", ack)
		}
		readN(t, l, 1)
		if ack := p.nextMsg(t).s; ack != "03" {
			t.Fatalf("ACK %q", ack)
		}
		if got := strings.Join(readN(t, l, 2), " "); got != "c d" {
			t.Fatalf("got %q", got)
		}
		synctest.Wait()
		p.noMsg(t)
	})
}

// When the deferred places are full too, the read loop holds for up to
// T/2 (TCP flow control slows the sender); then the message is left
// unACKed, and the sender's repeat is taken once the application has
// read. Nothing ACKed is dropped.
func TestReceiveQueueFull(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newLink(t, Config{ID: "n", Timeout: T, RecvQueue: 1})
		p, _ := attachPeer(t.Context(), l)
		p.keepAlive(t.Context(), T)
		p.send(t, "00a\n01b\n02c\n")
		if a := p.nextMsg(t).s; a != "00" {
			t.Fatalf("ACK %q", a)
		}
		time.Sleep(T / 2)
		synctest.Wait()
		p.noMsg(t)
		if st := l.Stats(); st.Refused != 1 || st.Deferred != 1 || st.Buffered != 2 {
			t.Fatalf("stats %+v", st)
		}
		readN(t, l, 1)
		if ack := p.nextMsg(t).s; ack != "01" {
			t.Fatalf("ACK %q", ack)
		}
		p.send(t, "02c\n") // the sender's repeat: deferred behind b
		synctest.Wait()
		p.noMsg(t)
		readN(t, l, 1)
		if ack := p.nextMsg(t).s; ack != "02" {
			t.Fatalf("ACK %q", ack)
		}
		if got := readN(t, l, 1); got[0] != "c" {
			t.Fatalf("got %q", got)
		}
	})
}

// A sender that restarts while some of its messages wait for their
// deferred ACK: those ids now name messages of its new life, so they are
// delivered but never ACKed; the new life's messages are ACKed in turn.
func TestReceiveDeferredAckRestart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newLink(t, Config{ID: "n", Timeout: T, RecvQueue: 2})
		p, done := attachPeer(t.Context(), l)
		p.keepAlive(t.Context(), T)
		p.send(t, "00a\n01b\n02c\n")
		if a, b := p.nextMsg(t).s, p.nextMsg(t).s; a != "00" || b != "01" {
			t.Fatalf("ACKs %q %q", a, b)
		}
		p.conn.Close()
		<-done
		p, _ = attachPeer(t.Context(), l)
		p.keepAlive(t.Context(), T)
		p.send(t, "00z\n") // a new life: 00 first on a new socket
		synctest.Wait()
		p.noMsg(t)
		if st := l.Stats(); st.PeerRestarts != 1 || st.Buffered != 4 || st.Deferred != 2 {
			t.Fatalf("stats %+v", st)
		}
		if got := readN(t, l, 1)[0]; got != "a" {
			t.Fatalf("read %q", got)
		}
		synctest.Wait()
		p.noMsg(t) // c's id 02 is not ACKed: it is not the new life's
		if got := readN(t, l, 1)[0]; got != "b" {
			t.Fatalf("read %q", got)
		}
		if ack := p.nextMsg(t).s; ack != "00" {
			t.Fatalf("ACK %q", ack)
		}
		p.send(t, "01y\n") // c and z are unread: deferred
		synctest.Wait()
		p.noMsg(t)
		if got := readN(t, l, 1)[0]; got != "c" {
			t.Fatalf("read %q", got)
		}
		if ack := p.nextMsg(t).s; ack != "01" {
			t.Fatalf("ACK %q", ack)
		}
		if got := strings.Join(readN(t, l, 2), " "); got != "z y" {
			t.Fatalf("read %q", got)
		}
		synctest.Wait()
		p.noMsg(t)
	})
}

// An application that reads a full queue within T/2 loses nothing and
// causes no repeat: the message waits in the read loop.
func TestReceiveQueueBackpressure(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newLink(t, Config{ID: "n", Timeout: T, RecvQueue: 1})
		p, _ := attachPeer(t.Context(), l)
		p.keepAlive(t.Context(), T)
		p.send(t, "00a\n01b\n")
		if a := p.nextMsg(t).s; a != "00" {
			t.Fatalf("ACK %q", a)
		}
		time.Sleep(T / 4)
		if got := readN(t, l, 1); got[0] != "a" {
			t.Fatalf("got %q", got)
		}
		if b := p.nextMsg(t); b.s != "01" {
			t.Fatalf("ACK %q", b.s)
		}
		if got := readN(t, l, 1); got[0] != "b" || l.Stats().Refused != 0 {
			t.Fatalf("got %q, stats %+v", got, l.Stats())
		}
	})
}

// Deliver replaces the queue; its error leaves the message unACKed.
func TestDeliverHook(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fail := true
		var got []Message
		l := newLink(t, Config{ID: "n", Timeout: T, Deliver: func(ctx context.Context, m Message) error {
			if fail {
				fail = false
				return errors.New("broker down")
			}
			got = append(got, m)
			return nil
		}})
		p, _ := attachPeer(t.Context(), l)
		p.keepAlive(t.Context(), T)
		p.send(t, "00x\n")
		synctest.Wait()
		p.send(t, "00x\n")
		if ack := p.nextMsg(t).s; ack != "00" {
			t.Fatalf("ACK %q", ack)
		}
		if len(got) != 1 || got[0].Payload != "x" || l.Stats().Refused != 1 {
			t.Fatalf("delivered %+v", got)
		}
		if w := got[0].Window; checkOn(&w, 0, "x", false) != duplicate {
			t.Fatal("Message.Window does not include the message")
		}
		if _, err := l.ReadLine(t.Context()); !errors.Is(err, ErrNoQueue) {
			t.Fatalf("ReadLine with Deliver = %v", err)
		}
	})
}

// Bad input is counted and skipped; the link and the next good message
// are unaffected.
func TestBadInput(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newLink(t, Config{ID: "n", Timeout: T, MaxLine: 64})
		p, done := attachPeer(t.Context(), l)
		p.keepAlive(t.Context(), T)
		p.send(t, strings.Repeat("x", 1000)+"\n") // too long
		p.send(t, "zzgarbage\n")                  // not hex
		p.send(t, "q\n")                          // malformed
		p.send(t, "00\xff\xfe\n")                 // not UTF-8
		p.send(t, "00good\n")
		if ack := p.nextMsg(t).s; ack != "00" {
			t.Fatalf("ACK %q", ack)
		}
		if got := readN(t, l, 1); got[0] != "good" {
			t.Fatalf("got %q", got)
		}
		st := l.Stats()
		if st.TooLong != 1 || st.Malformed != 2 || st.NotUTF8 != 1 || !st.Up {
			t.Fatalf("stats %+v", st)
		}
		select {
		case err := <-done:
			t.Fatalf("bad input ended the session: %v", err)
		default:
		}
	})
}

// A socket that dies mid-line leaves nothing behind: the next socket
// starts with an empty line buffer (the legacy server glued the fragment
// onto the next line, ACKed and delivered the garbage, and lost the real
// message).
func TestNoPartialLineAcrossSockets(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newLink(t, Config{ID: "n", Timeout: T})
		p, done := attachPeer(t.Context(), l)
		p.send(t, "00first\n07[7, \"c:partial")
		p.conn.Close()
		<-done
		p2, _ := attachPeer(t.Context(), l)
		p2.keepAlive(t.Context(), T)
		p2.send(t, "01second\n")
		if ack := p2.nextMsg(t).s; ack != "01" {
			t.Fatalf("ACK %q", ack)
		}
		if got := readN(t, l, 2); got[0] != "first" || got[1] != "second" {
			t.Fatalf("got %q", got)
		}
	})
}

// A qos=false message whose ACK is lost never blocks later qos writes
// (the legacy server waited for it for ever).
func TestNoQoSNeverBlocks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newLink(t, Config{ID: "n", Timeout: T})
		p, _ := attachPeer(t.Context(), l)
		p.keepAlive(t.Context(), T)
		go l.Write(t.Context(), "first")
		p.nextMsg(t)
		p.send(t, "00\n")
		synctest.Wait()
		if err := l.Write(t.Context(), "fire and forget", QoS(false)); err != nil {
			t.Fatal(err)
		}
		p.nextMsg(t) // never ACKed
		werr := make(chan error, 1)
		go func() { werr <- l.Write(t.Context(), "next") }()
		if m := p.nextMsg(t); m.s != "02next" {
			t.Fatalf("got %q", m.s)
		}
		p.send(t, "02\n")
		if err := <-werr; err != nil {
			t.Fatal(err)
		}
	})
}

// Nothing follows our 00 until it is ACKed, so the peer can always tell
// a repeat of 00 from a restart.
func TestNothingFollowsZeroUntilAcked(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newLink(t, Config{ID: "n", Timeout: T})
		p, _ := attachPeer(t.Context(), l)
		p.keepAlive(t.Context(), T)
		if err := l.Write(t.Context(), "zero", QoS(false)); err != nil {
			t.Fatal(err)
		}
		second := make(chan error, 1)
		go func() { second <- l.Write(t.Context(), "one", Wait(false)) }()
		if m := p.nextMsg(t); m.s != "00zero" {
			t.Fatalf("got %q", m.s)
		}
		if m := p.nextMsg(t); m.s != "00zero" { // repeated after T, although qos=false
			t.Fatalf("got %q, want the repeat of 00 first", m.s)
		}
		p.send(t, "00\n")
		if m := p.nextMsg(t); m.s != "01one" {
			t.Fatalf("got %q", m.s)
		}
		p.send(t, "01\n")
		if err := <-second; err != nil {
			t.Fatal(err)
		}
	})
}

// With wait=false, at most MaxInFlight ids are in flight; the next write
// waits for the oldest ACK.
func TestInFlightBound(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newLink(t, Config{ID: "n", Timeout: 100 * T, MaxInFlight: 8})
		p, _ := attachPeer(t.Context(), l)
		go l.Write(t.Context(), "zero")
		p.nextMsg(t)
		p.send(t, "00\n")
		synctest.Wait()
		for i := range 9 {
			go l.Write(t.Context(), fmt.Sprint("m", i), Wait(false))
			synctest.Wait()
		}
		for range 8 {
			p.nextMsg(t)
		}
		synctest.Wait()
		if st := l.Stats(); st.Pending != 8 || st.Sent != 9 {
			t.Fatalf("stats %+v: want 8 pending, the ninth write waiting", st)
		}
		p.send(t, "01\n") // the oldest ACKed: the ninth goes
		if m := p.nextMsg(t); !strings.HasPrefix(m.s, "09") {
			t.Fatalf("got %q", m.s)
		}
	})
}

func TestWriteContextBeforeID(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newLink(t, Config{ID: "n", Timeout: T})
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		// No socket: a qos=false write waits for up, then gives up.
		if err := l.Write(ctx, "x", QoS(false)); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Write = %v", err)
		}
		if st := l.Stats(); st.Queued != 0 || l.Snapshot().Next != 0 {
			t.Fatalf("a cancelled write left state behind: %+v", st)
		}
	})
}

// A link resumed from a snapshot continues the peer's sequence: no 00,
// the same window, and Reuse resends a message with its old id.
func TestResumeAndReuse(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a := newLink(t, Config{ID: "n", Timeout: T})
		p, _ := attachPeer(t.Context(), a)
		p.keepAlive(t.Context(), T)
		var assigned uint8
		go a.Write(t.Context(), "one", Assign(func(id uint8) error { assigned = id; return nil }))
		p.nextMsg(t)
		p.send(t, "00\n00peer\n")
		p.nextMsg(t)
		go a.Write(t.Context(), "two", Assign(func(id uint8) error { assigned = id; return nil }))
		if m := p.nextMsg(t); m.s != "01two" || assigned != 1 {
			t.Fatalf("got %q, assigned %02x", m.s, assigned)
		}
		snap := a.Snapshot()
		a.Close() // "crash" before the ACK of 01

		b := newLink(t, Config{ID: "n", Timeout: T, Resume: snap})
		p2, _ := attachPeer(t.Context(), b)
		p2.keepAlive(t.Context(), T)
		werr := make(chan error, 2)
		go func() { werr <- b.Write(t.Context(), "two", Reuse(assigned)) }()
		if m := p2.nextMsg(t); m.s != "01two" {
			t.Fatalf("resent %q, want 01two", m.s)
		}
		p2.send(t, "01\n00peer\n") // the peer repeats its 00 too
		if err := <-werr; err != nil {
			t.Fatal(err)
		}
		if ack := p2.nextMsg(t).s; ack != "00" {
			t.Fatalf("ACK %q", ack)
		}
		go func() { werr <- b.Write(t.Context(), "three") }()
		if m := p2.nextMsg(t); m.s != "02three" {
			t.Fatalf("got %q, want 02three", m.s)
		}
		p2.send(t, "02\n")
		if err := <-werr; err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if st := b.Stats(); st.Received != 0 || st.Duplicates != 1 {
			t.Fatalf("the resumed window delivered the repeat again: %+v", st)
		}
	})
}
