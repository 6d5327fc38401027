package link

import (
	"net"
	"testing"
	"testing/synctest"
)

// attachFrom attaches a pipe to l as a socket from peer key and returns
// the scripted peer and Attach's result.
func attachFrom(t *testing.T, l *Link, key string) (*peer, net.Conn, <-chan error) {
	t.Helper()
	c1, c2 := net.Pipe()
	done := make(chan error, 1)
	go func() { done <- l.AttachWith(t.Context(), c1, Peer(key)) }()
	return newPeer(c2), c2, done
}

// When the peer changes, the send sequence restarts with 00: a message
// awaiting its ACK is sent again as 00, and nothing follows it until it is
// acknowledged. When a peer comes back, what the others acknowledged
// meanwhile is reported, and the ids only they set are new again.
func TestPeerChange(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newLink(t, Config{ID: "n", Timeout: T})
		// Peer a: its 00 ACKed, then 01 taken, unACKed, as the socket dies.
		p, c, done := attachFrom(t, l, "a")
		p.keepAlive(t.Context(), T)
		go l.Write(t.Context(), "one")
		if m := p.nextMsg(t).s; m != "00one" {
			t.Fatalf("got %q", m)
		}
		p.send(t, "00\n")
		p.send(t, "00a0\n01a1\n") // a's own messages
		if m, m2 := p.nextMsg(t).s, p.nextMsg(t).s; m != "00" || m2 != "01" {
			t.Fatalf("got %q %q, want the ACKs", m, m2)
		}
		written := make(chan error, 1)
		go func() { written <- l.Write(t.Context(), "two") }()
		if m := p.nextMsg(t).s; m != "01two" {
			t.Fatalf("got %q", m)
		}
		c.Close()
		<-done

		// Peer b: the sequence restarts; "two" goes again as 00, and
		// "three" waits for its ACK.
		p, c, done = attachFrom(t, l, "b")
		p.keepAlive(t.Context(), T)
		go l.Write(t.Context(), "three", Wait(false))
		if m := p.nextMsg(t).s; m != "00two" {
			t.Fatalf("got %q, want two renumbered as 00", m)
		}
		synctest.Wait()
		select {
		case l := <-p.lines:
			if l.s != "" {
				t.Fatalf("%q sent before 00 was acknowledged", l.s)
			}
		default:
		}
		p.send(t, "00\n")
		if err := <-written; err != nil {
			t.Fatal(err)
		}
		if m := p.nextMsg(t).s; m != "01three" {
			t.Fatalf("got %q", m)
		}
		p.send(t, "01\n")
		p.send(t, "02b2\n03b3\n") // b's messages, on a's next ids
		p.nextMsg(t)
		p.nextMsg(t)
		c.Close()
		<-done

		// a comes back: b acknowledged two and three; its 02 and 03 are
		// new to a; a's 01 is still a repeat.
		p, c, done = attachFrom(t, l, "a")
		p.keepAlive(t.Context(), T)
		p.send(t, "02a2\n01a1\n")
		// Its two ACKs, and what b took sent again to a after a 00 (the
		// rest waits for that 00's ACK).
		lines := map[string]bool{}
		for range 3 {
			lines[p.nextMsg(t).s] = true
		}
		if !lines["02"] || !lines["01"] || !lines["00two"] {
			t.Errorf("after a's return: %v, want the ACKs 02 and 01 and 00two", lines)
		}
		st := l.Stats()
		if st.ForeignAcked != 2 || st.SeqRestarts != 2 || st.Renumbered != 1 {
			t.Errorf("foreign %d, restarts %d, renumbered %d; want 2, 2, 1", st.ForeignAcked, st.SeqRestarts, st.Renumbered)
		}
		if st.TwoDevices != 1 || st.Redelivered != 2 {
			t.Errorf("two devices %d, redelivered %d; want 1, 2", st.TwoDevices, st.Redelivered)
		}
		var got []string
		for l.Buffered() > 0 {
			s, _ := l.ReadLine(t.Context())
			got = append(got, s)
		}
		if want := "a0 a1 b2 b3 a2"; join(got) != want {
			t.Errorf("delivered %q, want %q", join(got), want)
		}
		p.send(t, "00\n")
		if m := p.nextMsg(t).s; m != "01three" {
			t.Errorf("after 00's ACK: %q, want 01three", m)
		}
		c.Close()
		<-done
	})
}

func join(ss []string) string {
	out := ""
	for i, s := range ss {
		if i > 0 {
			out += " "
		}
		out += s
	}
	return out
}

// continues: the next id, or one of the 64 before (a repeat), across the
// wrap that skips 00.
func TestContinues(t *testing.T) {
	for _, c := range []struct {
		last, id uint8
		want     bool
	}{
		{0x09, 0x0a, true}, {0x09, 0x09, true}, {0x09, 0x01, true}, {0x09, 0x0b, false},
		{0xff, 0x01, true}, {0x02, 0xff, true}, {0x02, 0x00, false}, {0x80, 0x40, false}, {0x80, 0x41, true},
		{0x00, 0x01, true},
	} {
		if got := continues(c.last, c.id); got != c.want {
			t.Errorf("continues(%02x, %02x) = %v", c.last, c.id, got)
		}
	}
}
