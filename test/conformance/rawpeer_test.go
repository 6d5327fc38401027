package conformance

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tether-iot/tether/internal/harness/legacy"
)

// rawPeer is a hand-scripted legacy peer on one TCP connection: the test
// writes bytes and reads the other side's lines, every one of which must
// be well-formed.
type rawPeer struct {
	t    *testing.T
	conn net.Conn
	wg   sync.WaitGroup

	mu    sync.Mutex
	ch    chan struct{} // closed and replaced on each line and at the end
	lines []string      // read, not yet taken; without LF
	ended bool          // the reader hit EOF or an error
	endAt time.Time     // when
}

// newRawPeer starts reading conn; conn is closed at the end of the test.
func newRawPeer(t *testing.T, conn net.Conn) *rawPeer {
	p := &rawPeer{t: t, conn: conn, ch: make(chan struct{})}
	p.wg.Go(p.read)
	t.Cleanup(func() {
		conn.Close()
		p.wg.Wait()
	})
	return p
}

func (p *rawPeer) read() {
	r := bufio.NewReader(p.conn)
	for {
		s, err := r.ReadString('\n')
		p.mu.Lock()
		if err == nil {
			p.lines = append(p.lines, strings.TrimSuffix(s, "\n"))
		} else {
			p.ended, p.endAt = true, time.Now()
		}
		close(p.ch)
		p.ch = make(chan struct{})
		p.mu.Unlock()
		if err != nil {
			return
		}
	}
}

// dialRaw connects a raw peer to addr.
func dialRaw(ctx context.Context, t *testing.T, addr string) *rawPeer {
	t.Helper()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	return newRawPeer(t, conn)
}

// acceptRaw accepts the next connection on ln as a raw peer.
func acceptRaw(ctx context.Context, t *testing.T, ln net.Listener) *rawPeer {
	t.Helper()
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	conn, err := ln.Accept()
	if err != nil {
		t.Fatalf("accept: %v (ctx: %v)", err, ctx.Err())
	}
	return newRawPeer(t, conn)
}

// send writes s as it is.
func (p *rawPeer) send(s string) {
	p.t.Helper()
	if err := p.conn.SetWriteDeadline(time.Now().Add(failsafe)); err != nil {
		p.t.Fatal(err)
	}
	if _, err := p.conn.Write([]byte(s)); err != nil {
		p.t.Fatalf("raw peer: write %q: %v", s, err)
	}
}

// next returns the next line, keepalives included.
func (p *rawPeer) next(ctx context.Context) (string, error) {
	for {
		p.mu.Lock()
		if len(p.lines) > 0 {
			s := p.lines[0]
			p.lines = p.lines[1:]
			p.mu.Unlock()
			return s, nil
		}
		ended, ch := p.ended, p.ch
		p.mu.Unlock()
		if ended {
			return "", fmt.Errorf("raw peer: connection ended")
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return "", fmt.Errorf("raw peer: waiting for a line: %w", ctx.Err())
		}
	}
}

// parsed returns the next line that is not a keepalive, parsed; a
// malformed line fails the test.
func (p *rawPeer) parsed(ctx context.Context) legacy.Line {
	p.t.Helper()
	for {
		s, err := p.next(ctx)
		if err != nil {
			p.t.Fatal(err)
		}
		l, err := legacy.ParseLine(s)
		if err != nil {
			p.t.Fatalf("malformed line %q: %v", s, err)
		}
		if l.Kind != legacy.Keepalive {
			return l
		}
	}
}

// parsedErr returns the next line that is not a keepalive, parsed, or
// an error if the connection ends first or the line is malformed.
func (p *rawPeer) parsedErr(ctx context.Context) (legacy.Line, error) {
	for {
		s, err := p.next(ctx)
		if err != nil {
			return legacy.Line{}, err
		}
		l, err := legacy.ParseLine(s)
		if err != nil {
			return legacy.Line{}, fmt.Errorf("malformed line %q: %w", s, err)
		}
		if l.Kind != legacy.Keepalive {
			return l, nil
		}
	}
}

// expectAck reads lines up to the next one that is not a keepalive,
// which must be the ACK of id.
func (p *rawPeer) expectAck(ctx context.Context, id int) {
	p.t.Helper()
	if l := p.parsed(ctx); l.Kind != legacy.Ack || l.ID != id {
		p.t.Fatalf("got %v %02x %q, want the ACK of %02x", l.Kind, l.ID, l.Payload, id)
	}
}

// isEnded reports whether the other side has closed the connection.
func (p *rawPeer) isEnded() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.ended
}

// endedAt returns when the connection ended, or the zero time.
func (p *rawPeer) endedAt() time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.endAt
}
