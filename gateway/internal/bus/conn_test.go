package bus

import (
	"bytes"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

type slowRecord struct {
	mu   sync.Mutex
	whys []string
	got  chan struct{}
}

func (r *slowRecord) f(_ *clientConn, why string, _ int) {
	r.mu.Lock()
	r.whys = append(r.whys, why)
	r.mu.Unlock()
	r.got <- struct{}{}
}

// A client that reads nothing: writes return at once until the pending
// bound, then the client is dropped, once, and its socket closed.
func TestClientConnPendingBound(t *testing.T) {
	a, b := net.Pipe()
	defer b.Close()
	rec := &slowRecord{got: make(chan struct{}, 2)}
	c := newClientConn(a, 1000, time.Hour, rec.f)
	for i := range 4 {
		if _, err := c.Write(make([]byte, 250)); err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
	}
	// The flusher may hold the first 250 bytes in its pipe write, so
	// the bound is crossed within two more writes.
	var err error
	for range 2 {
		if _, err = c.Write(make([]byte, 250)); err != nil {
			break
		}
	}
	if !errors.Is(err, errSlowClient) {
		t.Fatalf("write past the bound: %v, want errSlowClient", err)
	}
	<-rec.got
	if _, err := c.Write([]byte("x")); !errors.Is(err, errSlowClient) {
		t.Errorf("write after the drop: %v", err)
	}
	c.Close()
	c.wait()
	// What the flusher had begun may still come; then the end.
	b.SetReadDeadline(time.Now().Add(10 * time.Second)) // a hang guard
	if _, err := io.Copy(io.Discard, b); err != nil {
		t.Errorf("socket not closed: %v", err)
	}
	if len(rec.whys) != 1 || rec.whys[0] != "pending" {
		t.Errorf("drops: %v, want one for the pending bound", rec.whys)
	}
}

// A client that takes nothing for the write timeout is dropped.
func TestClientConnWriteTimeout(t *testing.T) {
	a, b := net.Pipe()
	defer b.Close()
	rec := &slowRecord{got: make(chan struct{}, 2)}
	c := newClientConn(a, 1<<20, 10*time.Millisecond, rec.f)
	if _, err := c.Write([]byte("never read")); err != nil {
		t.Fatal(err)
	}
	<-rec.got
	c.Close()
	c.wait()
	if len(rec.whys) != 1 || rec.whys[0] != "timeout" {
		t.Errorf("drops: %v, want one for the timeout", rec.whys)
	}
}

// Close sends what is pending (a CONNACK refusing the client, say), then
// closes; mochi's SetDeadline sets the read deadline only.
func TestClientConnCloseFlushes(t *testing.T) {
	a, b := net.Pipe()
	rec := &slowRecord{got: make(chan struct{}, 2)}
	c := newClientConn(a, 1<<20, time.Hour, rec.f)
	c.SetDeadline(time.Now().Add(-time.Second)) // a past write deadline would fail the flush
	msg := []byte("last words")
	if _, err := c.Write(msg); err != nil {
		t.Fatal(err)
	}
	c.Close()
	got, err := io.ReadAll(b)
	if err != nil || !bytes.Equal(got, msg) {
		t.Errorf("read %q, %v; want %q then EOF", got, err, msg)
	}
	c.wait()
	if _, err := c.Write(msg); !errors.Is(err, net.ErrClosed) {
		t.Errorf("write after Close: %v", err)
	}
	if len(rec.whys) != 0 {
		t.Errorf("drops: %v, want none", rec.whys)
	}
}
