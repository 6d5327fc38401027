package link

import (
	"fmt"
	"testing"
	"testing/synctest"
	"time"
)

// A paced link writes Ahead messages at once, then one each Every; repeats
// do not count.
func TestPace(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newLink(t, Config{ID: "n", Timeout: T, Pace: Pace{Ahead: 3, Every: time.Second}})
		p, _ := attachPeer(t.Context(), l)
		p.keepAlive(t.Context(), T)
		start := time.Now()
		go func() {
			for i := range 6 {
				if err := l.Write(t.Context(), fmt.Sprint("m", i), Wait(false)); err != nil {
					return
				}
			}
		}()
		want := []time.Duration{0, 0, 0, time.Second, 2 * time.Second, 3 * time.Second}
		for i, w := range want {
			m := p.nextMsg(t)
			if got := m.at.Sub(start); got != w {
				t.Errorf("message %d (%q) at %v, want %v", i, m.s, got, w)
			}
			p.send(t, m.s[:2]+"\n")
		}
	})
	if _, err := New(Config{Pace: Pace{Ahead: 3}}); err == nil {
		t.Error("Pace.Ahead without Every accepted")
	}
}

// The original client's overflow: the peer (no greeting) closes its
// socket right after acknowledging a message, having acknowledged 20 or
// more since it started: a probable loss, with the id. Fewer, or another
// line in between, is no sign.
func TestOverflowSignature(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var events []Event
		l := newLink(t, Config{ID: "n", Timeout: T, OnEvent: func(ev Event) {
			if ev.Kind == ProbableLoss {
				events = append(events, ev)
			}
		}})
		socket := func(n int, keepaliveLast bool) {
			t.Helper()
			p, done := attachPeer(t.Context(), l)
			p.keepAlive(t.Context(), T)
			for i := range n {
				go l.Write(t.Context(), fmt.Sprint("m", i))
				m := p.nextMsg(t)
				p.send(t, m.s[:2]+"\n")
				synctest.Wait()
			}
			if keepaliveLast {
				p.send(t, "\n")
			}
			p.conn.Close()
			<-done
		}
		socket(15, false) // 15 acknowledged: no sign yet
		socket(10, true)  // 25, but a keepalive after the last ACK
		if n := l.Stats().ProbableLosses; n != 0 {
			t.Fatalf("%d probable losses, want 0", n)
		}
		socket(3, false) // 28, and the peer closes right after an ACK
		synctest.Wait()
		if n := l.Stats().ProbableLosses; n != 1 || len(events) != 1 {
			t.Fatalf("%d probable losses, %d events; want 1", n, len(events))
		}
		if d := events[0].Detail; d[:5] != "id 1b" {
			t.Errorf("detail %q, want the id of the 28th message (1b)", d)
		}
	})
}
