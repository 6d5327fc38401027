package legacy

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// T is the short legacy timeout the tests run with.
const T = 200 * time.Millisecond

func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 15*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func startServer(t *testing.T, cfg ServerConfig) *Server {
	t.Helper()
	if cfg.Timeout == 0 {
		cfg.Timeout = T
	}
	s, err := StartServer(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func startNode(t *testing.T, cfg NodeConfig) *Node {
	t.Helper()
	if cfg.Timeout == 0 {
		cfg.Timeout = T
	}
	if cfg.StartDelay == 0 {
		cfg.StartDelay = -1
	}
	if cfg.WiFiDelay == 0 {
		cfg.WiFiDelay = -1
	}
	n, err := StartNode(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

func listen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

// peer is the hand-scripted side of a raw TCP connection.
type peer struct {
	t    *testing.T
	conn net.Conn
	r    *bufio.Reader
	wg   sync.WaitGroup
	stop chan struct{}
	once sync.Once
}

func newPeer(t *testing.T, conn net.Conn) *peer {
	p := &peer{t: t, conn: conn, r: bufio.NewReader(conn), stop: make(chan struct{})}
	t.Cleanup(p.close)
	return p
}

func (p *peer) close() {
	p.once.Do(func() { close(p.stop) })
	p.conn.Close()
	p.wg.Wait()
}

// dialNode connects to a server as a node and sends its ID.
func dialNode(t *testing.T, addr, id string) *peer {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	p := newPeer(t, c)
	p.send(id + "\n")
	return p
}

// accept takes the next connection of a node and checks its ID line.
func accept(t *testing.T, ln net.Listener, id string) *peer {
	t.Helper()
	c, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	p := newPeer(t, c)
	if got := p.line(); got != id {
		t.Fatalf("ID line = %q, want %q", got, id)
	}
	return p
}

func (p *peer) send(s string) {
	p.t.Helper()
	if _, err := io.WriteString(p.conn, s); err != nil {
		voidIfStalled(p.t, fmt.Sprintf("send %q: %v", s, err))
		p.t.Fatalf("send %q: %v", s, err)
	}
}

// keepalive sends a keepalive every T/4 until the peer is closed, to keep
// the other end's read timeout from firing.
func (p *peer) keepalive() {
	p.wg.Go(func() {
		tk := time.NewTicker(T / 4)
		defer tk.Stop()
		for {
			select {
			case <-p.stop:
				return
			case <-tk.C:
				if _, err := io.WriteString(p.conn, "\n"); err != nil {
					return
				}
			}
		}
	})
}

// readLine returns the next line without its LF, or the read error.
func (p *peer) readLine(timeout time.Duration) (string, error) {
	p.conn.SetReadDeadline(time.Now().Add(timeout))
	s, err := p.r.ReadString('\n')
	if err != nil {
		return s, err
	}
	return strings.TrimSuffix(s, "\n"), nil
}

func (p *peer) line() string {
	p.t.Helper()
	s, err := p.readLine(5 * time.Second)
	if err != nil {
		voidIfStalled(p.t, fmt.Sprintf("read line: %q, %v", s, err))
		p.t.Fatalf("read line: %q, %v", s, err)
	}
	return s
}

// next returns the next line that is not a keepalive.
func (p *peer) next() string {
	p.t.Helper()
	for {
		if s := p.line(); s != "" {
			return s
		}
	}
}

func (p *peer) expect(want string) {
	p.t.Helper()
	if got := p.next(); got != want {
		p.t.Fatalf("got line %q, want %q", got, want)
	}
}

// silentFor checks that only keepalives arrive for d.
func (p *peer) silentFor(d time.Duration) {
	p.t.Helper()
	end := time.Now().Add(d)
	for {
		left := time.Until(end)
		if left <= 0 {
			return
		}
		s, err := p.readLine(left)
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return
		}
		if err != nil || s != "" {
			if err != nil {
				voidIfStalled(p.t, fmt.Sprintf("got %q, %v; want only keepalives", s, err))
			}
			p.t.Fatalf("got %q, %v; want only keepalives", s, err)
		}
	}
}

// untilEOF reads until the other end closes and returns the keepalives
// seen.
func (p *peer) untilEOF() int {
	p.t.Helper()
	n := 0
	for {
		s, err := p.readLine(5 * time.Second)
		if errors.Is(err, io.EOF) {
			return n
		}
		if err != nil {
			voidIfStalled(p.t, fmt.Sprintf("waiting for EOF: %q, %v", s, err))
			p.t.Fatalf("waiting for EOF: %q, %v", s, err)
		}
		if s == "" {
			n++
		}
	}
}

func readN(t *testing.T, ctx context.Context, read func(context.Context) (string, error), n int) []string {
	t.Helper()
	var out []string
	for range n {
		s, err := read(ctx)
		if err != nil {
			voidIfStalled(t, fmt.Sprintf("read %d: %v", len(out), err))
			t.Fatalf("read %d: %v", len(out), err)
		}
		out = append(out, s)
	}
	return out
}
