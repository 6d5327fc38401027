package metrics_test

import (
	"context"
	"errors"
	"io"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/tether-iot/tether/client"
	"github.com/tether-iot/tether/link"
	"github.com/tether-iot/tether/server"
)

// takeDown closes c and waits until the server's link of node id has
// seen the outage.
func takeDown(t *testing.T, ctx context.Context, srv *server.Server, c *client.Client) {
	t.Helper()
	l, err := srv.Lookup(c.ID())
	if err != nil {
		t.Fatal(err)
	}
	ch := make(chan link.Event, 16)
	l.Notify(ch)
	defer l.Stop(ch)
	c.Close()
	for l.Up() {
		select {
		case <-ch:
		case <-ctx.Done():
			t.Fatalf("node %s still up: %v", c.ID(), ctx.Err())
		}
	}
}

// rawNode connects as node id with a bare socket and sends lines after
// the ID line. The server reads them in order.
func rawNode(t *testing.T, addr, id string, lines ...string) net.Conn {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	b := []byte(id + "\n")
	for _, l := range lines {
		b = append(b, l...)
		b = append(b, '\n')
	}
	if _, err := conn.Write(b); err != nil {
		t.Fatal(err)
	}
	return conn
}

// readEOF reads conn until the server closes it.
func readEOF(t *testing.T, conn net.Conn) {
	t.Helper()
	if err := conn.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	_, err := io.Copy(io.Discard, conn)
	if err != nil && !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("waiting for the server to close: %v", err)
	}
}
