package server_test

import (
	"bufio"
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tether-iot/tether/client"
	"github.com/tether-iot/tether/internal/harness/tethertest"
	"github.com/tether-iot/tether/link"
	"github.com/tether-iot/tether/server"
)

// rawConn opens a TCP connection from a chosen loopback source address.
func rawConn(t *testing.T, from, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// waitClosed reads c until the server closes it. It calls t.Fatal: call
// it from the test's goroutine only (see readUntilClosed).
func waitClosed(t *testing.T, c net.Conn) {
	t.Helper()
	if err := readUntilClosed(c, 10*time.Second); err != nil {
		t.Fatal(err)
	}
}

// readUntilClosed reads c until the server closes it, or fails after
// limit.
func readUntilClosed(c net.Conn, limit time.Duration) error {
	c.SetReadDeadline(time.Now().Add(limit))
	buf := make([]byte, 64)
	for {
		if _, err := c.Read(buf); err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				return errors.New("server did not close the connection")
			}
			return nil
		}
	}
}

// Bad IDs, unknown IDs in strict mode and silent peers are turned away,
// each counted, while a good node carries on.
func TestBadHandshakes(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	T := 300 * time.Millisecond
	srv, addr := tethertest.NewServer(t, server.Config{Timeout: T, Expected: []string{"good"}, Strict: true})
	c := tethertest.Dial(t, ctx, client.Config{ID: "good", Server: addr, Timeout: T})
	node, err := srv.Node(ctx, "good")
	if err != nil {
		t.Fatal(err)
	}
	for _, first := range []string{
		"bad\x00id\n",
		"\x1b[31mred\n",
		strings.Repeat("L", 500) + "\n",
		"\xff\xfe\n",
		"stranger\n", // not expected, strict
		"",           // silent
	} {
		rc := rawConn(t, "127.0.0.1", addr)
		rc.Write([]byte(first))
		waitClosed(t, rc)
	}
	if err := c.Write(ctx, "still fine"); err != nil {
		t.Fatal(err)
	}
	if got, err := node.ReadLine(ctx); err != nil || got != "still fine" {
		t.Fatalf("got %q, %v", got, err)
	}
	st := srv.Stats()
	if st.BadID != 4 || st.UnknownID != 1 || st.HandshakeTimeout != 1 {
		t.Fatalf("stats %+v", st)
	}
	if got := srv.Nodes(); len(got) != 1 {
		t.Fatalf("nodes %v", got)
	}
}

// Hundreds of silent connections from one address do not stop a node
// from another address connecting and exchanging messages at once; the
// excess beyond the per-address limit is closed at once and counted. (The
// handshake timeout is an hour: no real time passes waiting for it here;
// TestBadHandshakes counts a silent peer's timeout.)
func TestConnectionFlood(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	const flood, limit = 300, 32
	srv, addr := tethertest.NewServer(t, server.Config{Timeout: 2 * time.Second, HandshakeTimeout: time.Hour, MaxHandshakesPerIP: limit})
	var conns []net.Conn
	for range flood {
		conns = append(conns, rawConn(t, "127.0.0.2", addr))
	}
	// Each flood connection is read until it closes: the excess when the
	// server closes it, the others when the test does, at its end.
	closed := make(chan error, flood)
	var wg sync.WaitGroup
	for _, fc := range conns {
		wg.Go(func() { closed <- readUntilClosed(fc, time.Hour) })
	}
	defer func() {
		for _, fc := range conns {
			fc.Close()
		}
		wg.Wait()
	}()

	c := tethertest.Dial(t, ctx, client.Config{ID: "n1", Server: addr, Timeout: 2 * time.Second})
	node, err := srv.Node(ctx, "n1")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Write(ctx, "through the flood"); err != nil {
		t.Fatal(err)
	}
	if got, err := node.ReadLine(ctx); err != nil || got != "through the flood" {
		t.Fatalf("got %q, %v", got, err)
	}
	for range flood - limit {
		select {
		case err := <-closed:
			if err != nil {
				t.Fatal(err)
			}
		case <-ctx.Done():
			t.Fatalf("the connections past the limit were not all closed: %v", ctx.Err())
		}
	}
	// The listener accepts in order: n1, dialed last, was accepted after
	// every flood connection had been counted or admitted.
	st := srv.Stats()
	if st.PerIPLimit != flood-limit || st.HandshakeTimeout != 0 || st.Handshakes != 1 {
		t.Fatalf("stats %+v", st)
	}
}

// A second connection with the ID of a node that is up is closed; the
// first keeps working (the legacy rule).
func TestDuplicateID(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	T := 2 * time.Second
	srv, addr := tethertest.NewServer(t, server.Config{Timeout: T})
	c := tethertest.Dial(t, ctx, client.Config{ID: "dup", Server: addr, Timeout: T})
	node, err := srv.Node(ctx, "dup")
	if err != nil {
		t.Fatal(err)
	}
	if err := node.WaitUp(ctx); err != nil {
		t.Fatal(err)
	}
	rc := rawConn(t, "127.0.0.1", addr)
	rc.Write([]byte("dup\n"))
	waitClosed(t, rc)
	if srv.Stats().DuplicateID != 1 {
		t.Fatalf("stats %+v", srv.Stats())
	}
	if err := node.Write(ctx, "to the first"); err != nil {
		t.Fatal(err)
	}
	if got, err := c.ReadLine(ctx); err != nil || got != "to the first" {
		t.Fatalf("got %q, %v", got, err)
	}
}

// Bytes that follow the ID in the same read are the start of the node's
// stream, as with legacy nodes that send quickly.
func TestBytesAfterID(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	srv, addr := tethertest.NewServer(t, server.Config{Timeout: time.Second, WritePause: -1})
	rc := rawConn(t, "127.0.0.1", addr)
	rc.Write([]byte("fast\n00hello\n"))
	node, err := srv.Node(ctx, "fast")
	if err != nil {
		t.Fatal(err)
	}
	if got, err := node.ReadLine(ctx); err != nil || got != "hello" {
		t.Fatalf("got %q, %v", got, err)
	}
	r := bufio.NewReader(rc)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if line == "00\n" {
			break
		}
	}
	if s := node.Stats(); s.Received != 1 {
		t.Fatalf("stats %+v", s)
	}
}

// Close does not wait for silent connections to time out.
func TestCloseDuringHandshakes(t *testing.T) {
	srv, addr := tethertest.NewServer(t, server.Config{Timeout: time.Hour})
	for range 10 {
		rawConn(t, "127.0.0.1", addr)
	}
	deadline := time.AfterFunc(30*time.Second, func() { panic("Close waited for the handshake timeout") })
	defer deadline.Stop()
	// Connections are accepted in order: once a later one has
	// handshaken, the ten silent ones are in their handshakes.
	rawConn(t, "127.0.0.1", addr).Write([]byte("last\n"))
	if _, err := srv.Node(t.Context(), "last"); err != nil {
		t.Fatal(err)
	}
	srv.Close()
}

// A Configure hook that fails refuses the node's connection; the node is
// not kept, and another node is unaffected.
func TestConfigureRefuses(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	srv, addr := tethertest.NewServer(t, server.Config{Configure: func(id string, c *link.Config) error {
		if id == "broken" {
			return errors.New("saved state unreadable")
		}
		return nil
	}})
	rc := rawConn(t, "127.0.0.1", addr)
	rc.Write([]byte("broken\n"))
	waitClosed(t, rc)
	tethertest.Dial(t, ctx, client.Config{ID: "fine", Server: addr})
	if _, err := srv.Node(ctx, "fine"); err != nil {
		t.Fatal(err)
	}
	if st, nodes := srv.Stats(), srv.Nodes(); st.Refused != 1 || len(nodes) != 1 {
		t.Fatalf("stats %+v, nodes %v", st, nodes)
	}
}
