package link

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// The transports the link's real-time tests run over, as yamux's tests
// do: net.Pipe, whose writes block until read and which has no
// SyscallConn (every write goes through a flusher's conn.Write), and
// loopback TCP with small socket buffers, where the link writes without
// blocking through SyscallConn (tryWrite) and splices what the socket did
// not take in front of what was queued since (flush.go). The fake-time
// tests (synctest) can only use pipes: a goroutine blocked on a real
// socket is not durably blocked.
var transports = []struct {
	name string
	pair func(t testing.TB) (net.Conn, net.Conn)
}{
	{"pipe", func(testing.TB) (net.Conn, net.Conn) { return net.Pipe() }},
	{"tcp", tcpPair},
}

// tcpPair returns the two ends of a loopback TCP connection, each with
// small buffers so that a burst fills them.
func tcpPair(t testing.TB) (net.Conn, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	type accepted struct {
		c   net.Conn
		err error
	}
	ch := make(chan accepted, 1)
	go func() {
		c, err := ln.Accept()
		ch <- accepted{c, err}
	}()
	c1, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	a := <-ch
	if a.err != nil {
		c1.Close()
		t.Fatal(a.err)
	}
	for _, c := range []net.Conn{c1, a.c} {
		tc := c.(*net.TCPConn)
		tc.SetWriteBuffer(64 << 10)
		tc.SetReadBuffer(64 << 10)
	}
	return c1, a.c
}

// forEachTransport runs f as a subtest over each transport.
func forEachTransport(t *testing.T, f func(t *testing.T, pair func(testing.TB) (net.Conn, net.Conn))) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) { f(t, tr.pair) })
	}
}

// writeBlocker, once armed, holds the flusher's conn.Write calls until
// released, and says when the first one arrives. It keeps the socket's SyscallConn, so
// that over TCP the link's non-blocking writes go on past it: only what
// the socket did not take reaches the flusher.
type writeBlocker struct {
	net.Conn
	armed   atomic.Bool // Writes pass until armed
	once    sync.Once
	blocked chan struct{} // closed by the first Write
	release chan struct{}
}

func newWriteBlocker(c net.Conn) *writeBlocker {
	return &writeBlocker{Conn: c, blocked: make(chan struct{}), release: make(chan struct{})}
}

func (w *writeBlocker) Write(p []byte) (int, error) {
	if !w.armed.Load() {
		return w.Conn.Write(p)
	}
	w.once.Do(func() { close(w.blocked) })
	<-w.release
	return w.Conn.Write(p)
}

// SyscallConn is the socket's, if it has one (TCP).
func (w *writeBlocker) SyscallConn() (syscall.RawConn, error) {
	if sc, ok := w.Conn.(syscall.Conn); ok {
		return sc.SyscallConn()
	}
	return nil, syscall.EINVAL
}

// TestWriteBlocked: a burst of large qos messages meets a peer that does
// not read. Over TCP the non-blocking writes fill the socket, and the rest
// goes to the flusher (held by the blocker, which proves it got there);
// over a pipe everything does. Once the peer reads and the flusher is
// released, every message arrives whole, exactly once, and is
// acknowledged: the partial write was spliced in the right order.
func TestWriteBlocked(t *testing.T) {
	forEachTransport(t, func(t *testing.T, pair func(testing.TB) (net.Conn, net.Conn)) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		const n, size = 48, 32 << 10
		T := 10 * time.Second // no timeout or repeat while the test runs
		l := newLink(t, Config{ID: "n", Timeout: T, UpOnFirstLine: true, MaxLine: size + 64})
		c1, c2 := pair(t)
		defer c2.Close()
		w := newWriteBlocker(c1)
		attached := make(chan error, 1)
		go func() { attached <- l.Attach(ctx, w) }()
		if _, err := c2.Write([]byte("\n")); err != nil { // the link comes up
			t.Fatal(err)
		}
		if err := l.WaitUp(ctx); err != nil {
			t.Fatal(err)
		}
		// Nothing follows 00 until it is acknowledged: 00 goes first.
		first := make(chan error, 1)
		go func() { first <- l.Write(ctx, "first") }()
		r := bufio.NewReaderSize(c2, 64<<10)
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				t.Fatal(err)
			}
			if line == "00first\n" {
				break
			}
		}
		if _, err := c2.Write([]byte("00\n")); err != nil {
			t.Fatal(err)
		}
		if err := <-first; err != nil {
			t.Fatal(err)
		}
		w.armed.Store(true)

		payload := func(i int) string { return fmt.Sprintf("%03d:", i) + strings.Repeat(string(rune('a'+i%26)), size) }
		writes := make(chan error, n)
		for i := range n {
			go func() { writes <- l.Write(ctx, payload(i), Wait(false)) }()
		}
		select {
		case <-w.blocked:
		case <-ctx.Done():
			t.Fatal("the flusher never wrote")
		}

		// The peer reads every line, checks it and acknowledges it.
		seen := make(map[int]int)
		peerErr := make(chan error, 1)
		go func() {
			for len(seen) < n {
				line, err := r.ReadString('\n')
				if err != nil {
					peerErr <- err
					return
				}
				line = strings.TrimSuffix(line, "\n")
				if line == "" {
					continue // a keepalive
				}
				id, p := line[:2], line[2:]
				i, err := strconv.Atoi(p[:min(3, len(p))])
				if err != nil || p != payload(i) {
					peerErr <- fmt.Errorf("line %.20q... (%d bytes) is not a message as written", line, len(line))
					return
				}
				seen[i]++
				if _, err := c2.Write([]byte(id + "\n")); err != nil {
					peerErr <- err
					return
				}
			}
			peerErr <- nil
		}()
		close(w.release)
		if err := <-peerErr; err != nil {
			t.Fatal(err)
		}
		for range n {
			if err := <-writes; err != nil {
				t.Fatal(err)
			}
		}
		for i, k := range seen {
			if k != 1 {
				t.Errorf("message %d arrived %d times", i, k)
			}
		}
		l.Close()
		<-attached
	})
}
