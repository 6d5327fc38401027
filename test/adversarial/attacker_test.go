package adversarial

import (
	"context"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

// dialFrom opens a TCP connection to addr from the loopback address from
// (127.0.0.x: the server's limits per source address see several
// attackers).
func dialFrom(ctx context.Context, from, addr string) (net.Conn, error) {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
	return d.DialContext(ctx, "tcp", addr)
}

// conns is an attacker's set of sockets, all closed by closeAll.
type conns struct {
	mu sync.Mutex
	cs []net.Conn
}

func (c *conns) add(conn net.Conn) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.cs = append(c.cs, conn)
}

func (c *conns) closeAll() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, conn := range c.cs {
		conn.Close()
	}
	c.cs = nil
}

// waitClosedByPeer reads conn until the other end closes it, or until
// limit passes (an error: the server did not close it).
func waitClosedByPeer(conn net.Conn, limit time.Duration) error {
	conn.SetReadDeadline(time.Now().Add(limit))
	_, err := io.Copy(io.Discard, conn)
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		return fmt.Errorf("%v: still open after %v", conn.LocalAddr(), limit)
	}
	return nil
}

// parallel runs f(0..n-1) on n goroutines and waits for them.
func parallel(n int, f func(i int)) {
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f(i)
		}()
	}
	wg.Wait()
}

// source returns one of a few loopback source addresses, by i.
func source(i int) string { return fmt.Sprintf("127.0.0.%d", 2+i%8) }

// errs collects the errors of attackers running in parallel; check
// reports them from the test's goroutine.
type errs struct {
	mu  sync.Mutex
	all []error
}

func (e *errs) add(err error) {
	if err == nil {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.all = append(e.all, err)
}

func (e *errs) check(t *testing.T) {
	t.Helper()
	e.mu.Lock()
	defer e.mu.Unlock()
	for i, err := range e.all {
		if i == 10 {
			t.Errorf("... and %d more", len(e.all)-10)
			break
		}
		t.Error(err)
	}
}
