package link

import (
	"context"
	"testing"
	"testing/synctest"
	"time"
)

// TestKeepaliveCadence: while messages and ACKs go out at odd times (the
// peer ACKs each message at once), a
// keepalive follows exactly T/4 after the link's last write, never
// sooner or later, and no silence of the link exceeds T/4. (The
// conformance suite checks the same on real sockets with an allowance for
// a busy machine; this is the exact check.)
func TestKeepaliveCadence(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newLink(t, Config{ID: "n", Timeout: T})
		start := time.Now()
		p, _ := attachPeer(t.Context(), l)
		p.keepAlive(t.Context(), T)
		go func() {
			for i, at := range []time.Duration{T / 8, 11 * T / 16, 7 * T / 8, 3 * T / 2} {
				if !sleepUntil(t.Context(), start.Add(at)) {
					return
				}
				if err := l.Write(t.Context(), "w"+string(rune('a'+i)), QoS(false)); err != nil {
					return
				}
			}
		}()
		go func() {
			for i, at := range []time.Duration{5 * T / 16, 17 * T / 16} {
				if !sleepUntil(t.Context(), start.Add(at)) {
					return
				}
				p.send(t, "0"+string(rune('0'+i))+"m\n")
			}
		}()
		var prev time.Time
		kas, others := 0, 0
		for {
			ln := p.next(t)
			if ln.at.Sub(start) > 2*T {
				break
			}
			switch {
			case ln.s == "":
				kas++
			case len(ln.s) > 2: // our message: the peer ACKs it
				others++
				p.send(t, ln.s[:2]+"\n")
			default:
				others++
			}
			if kas+others == 1 {
				if ln.s != "" || !ln.at.Equal(start) {
					t.Fatalf("first line %q at %v, want a keepalive at once", ln.s, ln.at.Sub(start))
				}
			} else {
				gap := ln.at.Sub(prev)
				if gap > T/4 {
					t.Fatalf("silent for %v before %q at %v: more than T/4", gap, ln.s, ln.at.Sub(start))
				}
				if ln.s == "" && gap != T/4 {
					t.Fatalf("keepalive at %v, %v after the last write: want exactly T/4", ln.at.Sub(start), gap)
				}
			}
			prev = ln.at
		}
		if others != 6 || kas < 4 {
			t.Fatalf("%d keepalives and %d other lines, want 4 messages and 2 ACKs between keepalives", kas, others)
		}
	})
}

// sleepUntil waits until at, or reports false when ctx ends first.
func sleepUntil(ctx context.Context, at time.Time) bool {
	tm := time.NewTimer(time.Until(at))
	defer tm.Stop()
	select {
	case <-tm.C:
		return true
	case <-ctx.Done():
		return false
	}
}
