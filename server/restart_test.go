package server_test

import (
	"context"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/tether-iot/tether/client"
	"github.com/tether-iot/tether/internal/harness/testutil"
	"github.com/tether-iot/tether/internal/harness/tethertest"
	"github.com/tether-iot/tether/link"
	"github.com/tether-iot/tether/server"
)

// downs returns a server OnEvent hook and a channel that receives node
// id's Down events.
func downs(id string) (func(link.Event), <-chan struct{}) {
	ch := make(chan struct{}, 16)
	return func(ev link.Event) {
		if ev.ID == id && ev.Kind == link.Down {
			ch <- struct{}{}
		}
	}, ch
}

// keepTrying is a client's BadServer hook that keeps trying: a loaded
// machine may time a dial out.
func keepTrying(context.Context, error) error { return nil }

// wake is one wake of a deep-sleep node: a new client process connects,
// sends line (qos: Write returns once the server has it), and goes back
// to sleep (Close).
func wake(t *testing.T, ctx context.Context, cfg client.Config, line string) {
	t.Helper()
	c, err := client.Dial(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Write(ctx, line); err != nil {
		t.Fatal(err)
	}
}

// A deep-sleep node wakes, sends the same line and sleeps, 1,000 times:
// every wake is a new life whose first message is 00 with the payload of
// the last one, and each is delivered, once.
func TestDeepSleepWakes(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	// T is not what makes the wakes slow or fast (each is a few round
	// trips); a short one only makes them fail on a loaded machine.
	const T = time.Second
	onEvent, down := downs("deep")
	srv, addr := tethertest.NewServer(t, server.Config{Timeout: T, OnEvent: onEvent})
	cfg := client.Config{ID: "deep", Server: addr, Timeout: T, Logger: testutil.Logger(), BadServer: keepTrying}
	const wakes = 1000
	var node *link.Link
	for i := range wakes {
		wake(t, ctx, cfg, "door closed")
		if node == nil {
			var err error
			if node, err = srv.Lookup("deep"); err != nil {
				t.Fatal(err)
			}
		}
		// The server sees the socket end before the next wake.
		select {
		case <-down:
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		}
		if got := node.Stats().Received; got != uint64(i+1) {
			t.Fatalf("after %d wakes, %d delivered (stats %+v)", i+1, got, node.Stats())
		}
		for node.Buffered() > 0 {
			if _, err := node.ReadLine(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	st := node.Stats()
	if false {
		t.Errorf("a Go client's wakes were ambiguous: %+v", st)
	}
}

// cutter is a listener that keeps the server's side of each connection,
// so that a test can cut one.
type cutter struct {
	net.Listener
	mu    sync.Mutex
	conns []net.Conn
}

func (c *cutter) Accept() (net.Conn, error) {
	conn, err := c.Listener.Accept()
	if err == nil {
		c.mu.Lock()
		c.conns = append(c.conns, conn)
		c.mu.Unlock()
	}
	return conn, err
}

func (c *cutter) last() net.Conn {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.conns[len(c.conns)-1]
}

// A Go client's 00 reaches the server, which takes it, but the socket
// dies before the ACK is written: the client repeats 00 on its next
// socket, which is not delivered again. Then the node restarts and sends
// the same first line: that one is delivered.
func TestGoClientLostZeroAck(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const T = 200 * time.Millisecond
	ln := &cutter{Listener: testutil.Listen(t)}
	var (
		mu   sync.Mutex
		got  []string
		once sync.Once
		held = make(chan struct{})
	)
	srv, err := server.New(server.Config{Timeout: T, Logger: testutil.Logger(),
		Configure: func(id string, c *link.Config) error {
			c.Deliver = func(dctx context.Context, m link.Message) error {
				once.Do(func() {
					// The first message: taken (published, say), but its
					// socket dies before Deliver returns.
					close(held)
					<-dctx.Done()
				})
				mu.Lock()
				got = append(got, m.Payload)
				mu.Unlock()
				return nil
			}
			return nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	defer func() {
		srv.Close()
		<-served
	}()
	cfg := client.Config{ID: "n", Server: ln.Addr().String(), Timeout: T, Logger: testutil.Logger(), BadServer: keepTrying}
	c, err := client.Dial(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	written := make(chan error, 1)
	go func() { written <- c.Write(ctx, "boot") }()
	select {
	case <-held:
	case <-ctx.Done():
		t.Fatal(ctx.Err())
	}
	ln.last().Close() // the server's socket dies with 00 taken, unACKed
	if err := <-written; err != nil {
		t.Fatal(err)
	}
	c.Close()
	delivered := func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), got...)
	}
	if d := delivered(); len(d) != 1 {
		t.Fatalf("after the repeat: delivered %q, want boot once", d)
	}
	// A new life, the same first line.
	wake(t, ctx, cfg, "boot")
	if d := delivered(); len(d) != 2 {
		t.Fatalf("after the restart: delivered %q, want boot twice", d)
	}
	node, err := srv.Lookup("n")
	if err != nil {
		t.Fatal(err)
	}
	if st := node.Stats(); false {
		t.Errorf("a Go client's 00 was ambiguous: %+v", st)
	}
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		t.Fatal("timed out")
	}
}
