package link

import (
	"context"
	"errors"
	"net"
	"testing"
	"testing/synctest"
	"time"
)

// heldConn holds every Write until release is closed, whatever happens
// to the socket meanwhile.
type heldConn struct {
	net.Conn
	release chan struct{}
}

func (c *heldConn) Write(p []byte) (int, error) {
	<-c.release
	return c.Conn.Write(p)
}

// TestCloseWaitsForSession: Close returns only once the attached
// session has ended, its flusher goroutines included (as yamux's Close
// waits for its receive loop): here a flusher is held in a Write.
func TestCloseWaitsForSession(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newLink(t, Config{ID: "n", Timeout: time.Second})
		c1, c2 := net.Pipe()
		defer c2.Close()
		conn := &heldConn{Conn: c1, release: make(chan struct{})}
		attached := make(chan error, 1)
		go func() { attached <- l.Attach(context.Background(), conn) }()
		synctest.Wait() // the first keepalive's flusher is held in Write

		closed := make(chan struct{})
		go func() { l.Close(); close(closed) }()
		synctest.Wait()
		select {
		case <-closed:
			t.Error("Close returned while the session's flusher was still in Write")
		default:
		}
		close(conn.release)
		<-closed
		select {
		case err := <-attached:
			if !errors.Is(err, ErrClosed) {
				t.Errorf("Attach: %v, want ErrClosed", err)
			}
		default:
			t.Error("Close returned before Attach did")
		}
	})
}

// A write whose message was acknowledged before the link closed succeeds,
// even when it sees both at once (Shutdown drains, then closes: CI saw
// TestShutdownDrains's writes fail with "link closed").
func TestWriteAckedThenClosed(t *testing.T) {
	l := newLink(t, Config{ID: "n", Timeout: time.Second})
	l.Close()
	m := &outMsg{id: 1, done: make(chan struct{})}
	close(m.done)
	for i := range 64 {
		if err := l.waitAck(context.Background(), m); err != nil {
			t.Fatalf("try %d: %v, want nil: the message was acknowledged", i, err)
		}
	}
}

// Disconnect ends the attached socket as an outage does: Attach returns
// the cause, the link stays usable, and with no socket it does nothing.
func TestDisconnect(t *testing.T) {
	l := newLink(t, Config{ID: "n", Timeout: time.Second})
	if l.Disconnect(errors.New("no socket")) {
		t.Fatal("Disconnect without a socket reported one")
	}
	p, done := attachPeer(t.Context(), l)
	p.send(t, "\n") // up
	if err := l.WaitUp(t.Context()); err != nil {
		t.Fatal(err)
	}
	cause := errors.New("denied")
	if !l.Disconnect(cause) {
		t.Fatal("Disconnect found no socket")
	}
	if err := <-done; !errors.Is(err, cause) {
		t.Fatalf("Attach returned %v, want the cause", err)
	}
	if l.Up() || l.Disconnect(cause) {
		t.Fatal("still up after Disconnect")
	}
	select {
	case <-l.Done():
		t.Fatal("the link is closed after Disconnect")
	default:
	}
	p, done = attachPeer(t.Context(), l) // the next socket is taken
	p.send(t, "\n")
	if err := l.WaitUp(t.Context()); err != nil {
		t.Fatal(err)
	}
	l.Close()
	<-done
}
