package link

import (
	"bufio"
	"context"
	"net"
	"strings"
	"testing"
	"time"
)

// peer is a scripted far end for tests: it records every line the link
// writes, with the (fake) time it arrived, and writes whatever the test
// tells it to.
type peer struct {
	conn  net.Conn
	lines chan timedLine
}

type timedLine struct {
	s  string
	at time.Time
}

func newPeer(conn net.Conn) *peer {
	p := &peer{conn: conn, lines: make(chan timedLine, 1<<14)}
	go func() {
		defer close(p.lines)
		r := bufio.NewReader(conn)
		for {
			s, err := r.ReadString('\n')
			if err != nil {
				return
			}
			p.lines <- timedLine{strings.TrimSuffix(s, "\n"), time.Now()}
		}
	}()
	return p
}

func (p *peer) send(t testing.TB, s string) {
	t.Helper()
	if _, err := p.conn.Write([]byte(s)); err != nil {
		t.Fatalf("peer write %q: %v", s, err)
	}
}

// keepAlive sends a keepalive every T/4 until ctx ends, like a live peer.
func (p *peer) keepAlive(ctx context.Context, T time.Duration) {
	go func() {
		tick := time.NewTicker(T / 4)
		defer tick.Stop()
		for {
			select {
			case <-tick.C:
				if _, err := p.conn.Write([]byte("\n")); err != nil {
					return
				}
			case <-ctx.Done():
				return
			}
		}
	}()
}

// next returns the next line the link wrote.
func (p *peer) next(t testing.TB) timedLine {
	t.Helper()
	l, ok := <-p.lines
	if !ok {
		t.Fatal("peer: connection closed")
	}
	return l
}

// nextMsg returns the next line that is not a keepalive.
func (p *peer) nextMsg(t testing.TB) timedLine {
	t.Helper()
	for {
		if l := p.next(t); l.s != "" {
			return l
		}
	}
}

// attachPeer attaches a fresh pipe to l and returns the scripted peer and
// a channel with Attach's result.
func attachPeer(ctx context.Context, l *Link) (*peer, <-chan error) {
	c1, c2 := net.Pipe()
	done := make(chan error, 1)
	go func() { done <- l.Attach(ctx, c1) }()
	return newPeer(c2), done
}
