package netns

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/tether-iot/tether/client"
	"github.com/tether-iot/tether/internal/harness/legacy"
	"github.com/tether-iot/tether/internal/harness/netns"
	"github.com/tether-iot/tether/internal/harness/testutil"
	"github.com/tether-iot/tether/link"
	"github.com/tether-iot/tether/server"
)

// lossNet is a server in one namespace and the nodes in another, with a
// Tether server listening.
type lossNet struct {
	pair   *netns.Pair
	srv    *server.Server
	served chan struct{} // closed when srv's Serve returns
	addr   string        // the server's address, for the nodes
	srvNS  int
	nodeNS int
	downs  chan string // the IDs of the server's links that went down
}

func newLossNet(t *testing.T, ctx context.Context, name string, subnet byte, cfg server.Config) *lossNet {
	t.Helper()
	needNetns(t)
	pid := os.Getpid()
	pair, err := netns.NewPair(ctx, fmt.Sprintf("%s-%d", name, pid), netip.AddrFrom4([4]byte{10, subnet, byte(pid % 250), 0}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := pair.Close(); err != nil {
			t.Errorf("cleaning up the namespaces: %v", err)
		}
	})
	n := &lossNet{pair: pair, srvNS: 0, nodeNS: 1, downs: make(chan string, 64)}
	n.addr = netip.AddrPortFrom(pair.Addr[n.srvNS], 8123).String()
	n.start(t, ctx, cfg)
	t.Cleanup(n.stop)
	return n
}

// start starts a server with cfg on n.addr.
func (n *lossNet) start(t *testing.T, ctx context.Context, cfg server.Config) {
	t.Helper()
	ln, err := n.pair.Listen(ctx, n.srvNS, n.addr)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Logger = testutil.Logger()
	cfg.OnEvent = func(ev link.Event) {
		if ev.Kind == link.Down {
			n.downs <- ev.ID
		}
	}
	if n.srv, err = server.New(cfg); err != nil {
		ln.Close()
		t.Fatal(err)
	}
	served := make(chan struct{})
	n.served = served
	srv := n.srv
	go func() {
		defer close(served)
		srv.Serve(ln)
	}()
}

func (n *lossNet) stop() {
	n.srv.Close()
	<-n.served
}

// restart stops the server and starts another, as a new process would.
func (n *lossNet) restart(t *testing.T, ctx context.Context, cfg server.Config) {
	t.Helper()
	n.stop()
	n.start(t, ctx, cfg)
}

// waitDown waits until the server's link of node id goes down.
func (n *lossNet) waitDown(t *testing.T, ctx context.Context, id string) {
	t.Helper()
	for {
		select {
		case got := <-n.downs:
			if got == id {
				return
			}
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		}
	}
}

// drop makes the server's packets to the nodes vanish (on), data and
// TCP acknowledgements alike, or lets them through again.
func (n *lossNet) drop(t *testing.T, ctx context.Context, on bool) {
	t.Helper()
	if err := n.pair.Drop(ctx, n.srvNS, on); err != nil {
		t.Fatal(err)
	}
}

func readLine(t *testing.T, ctx context.Context, l *link.Link, want string) {
	t.Helper()
	got, err := l.ReadLine(ctx)
	if err != nil || got != want {
		t.Fatalf("server read %q, %v; want %q", got, err, want)
	}
}

// A legacy node sends its first message, 00; the server takes it, but its
// ACK is lost: the node's outage, its reconnection and its repeat of 00
// follow. The repeat is not delivered again (no TCP evidence that the node
// got the ACK, and it comes within the horizon). Then the node restarts,
// as a deep-sleep node does, and sends the same first line: the node's
// TCP acknowledged the server's ACK of the repeat, so this 00 is a new
// life, delivered.
func TestLegacyNodeLostZeroAck(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const T = 400 * time.Millisecond
	n := newLossNet(t, ctx, "tlz", 232, server.Config{Timeout: T})
	dial := n.pair.Dialer(n.nodeNS)
	node, err := legacy.StartNode(ctx, legacy.NodeConfig{ID: "leg", Addr: n.addr, Timeout: T,
		StartDelay: -1, WiFiDelay: -1, Logger: testutil.Logger(),
		Dial: func(ctx context.Context, addr string) (net.Conn, error) { return dial(ctx, "tcp", addr) }})
	if err != nil {
		t.Fatal(err)
	}
	defer node.Close()
	if err := node.WaitUp(ctx); err != nil {
		t.Fatal(err)
	}
	l, err := n.srv.Node(ctx, "leg")
	if err != nil {
		t.Fatal(err)
	}

	n.drop(t, ctx, true)
	written := make(chan error, 1)
	go func() { written <- node.Write(ctx, "boot", true, true) }()
	readLine(t, ctx, l, "boot") // taken; its ACK is dropped
	if err := node.WaitStatus(ctx, false); err != nil {
		t.Fatal(err) // the node's outage: nothing from the server for T
	}
	n.drop(t, ctx, false)
	if err := <-written; err != nil { // repeated after the reconnection, ACKed
		t.Fatal(err)
	}
	st := l.Stats()
	if st.Received != 1 || st.Duplicates == 0 || st.AmbiguousRepeats != 1 {
		t.Fatalf("after the repeat: %d delivered, %d repeats, %d ambiguous repeats; want 1, some, 1",
			st.Received, st.Duplicates, st.AmbiguousRepeats)
	}

	if err := node.Restart(); err != nil {
		t.Fatal(err)
	}
	if err := node.Write(ctx, "boot", true, true); err != nil {
		t.Fatal(err)
	}
	readLine(t, ctx, l, "boot")
	st = l.Stats()
	if st.Received != 2 || st.PeerRestarts != 1 || st.AmbiguousRepeats+st.AmbiguousRestarts != 1 {
		t.Fatalf("after the restart: %d delivered, %d restarts, %d ambiguous; want 2, 1, 1",
			st.Received, st.PeerRestarts, st.AmbiguousRepeats+st.AmbiguousRestarts)
	}
}

// A Go client's 00 reaches the server, but nothing comes back: neither
// the ACK nor the TCP acknowledgement of the 00. The client cannot tell
// whether the server got it, so it sends no greeting on its next socket,
// and the server decides as for a legacy node: a repeat, not delivered
// again. (Saying "fresh" there would make it a duplicate.) The client's
// next life is delivered: it says fresh.
func TestGoClientOneWayLoss(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const T = 400 * time.Millisecond
	n := newLossNet(t, ctx, "tow", 233, server.Config{Timeout: T})
	cfg := client.Config{ID: "go", Server: n.addr, Timeout: T, Dial: n.pair.Dialer(n.nodeNS), Logger: testutil.Logger()}
	downs := make(chan struct{}, 8)
	cfg.OnEvent = func(ev link.Event) {
		if ev.Kind == link.Down {
			downs <- struct{}{}
		}
	}
	c, err := client.Dial(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.WaitUp(ctx); err != nil {
		t.Fatal(err)
	}
	l, err := n.srv.Node(ctx, "go")
	if err != nil {
		t.Fatal(err)
	}
	n.drop(t, ctx, true)
	written := make(chan error, 1)
	go func() { written <- c.Write(ctx, "boot") }()
	readLine(t, ctx, l, "boot")
	select { // the client's outage: nothing from the server for T
	case <-downs:
	case <-ctx.Done():
		t.Fatal(ctx.Err())
	}
	n.drop(t, ctx, false)
	if err := <-written; err != nil {
		t.Fatal(err)
	}
	st := l.Stats()
	if st.Received != 1 || st.AmbiguousRepeats != 1 {
		t.Fatalf("after the repeat: %d delivered, %d ambiguous repeats; want 1, 1", st.Received, st.AmbiguousRepeats)
	}
	c.Close()

	cfg.OnEvent = nil
	c2, err := client.Dial(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if err := c2.Write(ctx, "boot"); err != nil {
		t.Fatal(err)
	}
	readLine(t, ctx, l, "boot")
	if st := l.Stats(); st.Received != 2 || st.AmbiguousRepeats+st.AmbiguousRestarts != 1 {
		t.Fatalf("after the restart: %d delivered, %d ambiguous; want 2, 1", st.Received, st.AmbiguousRepeats+st.AmbiguousRestarts)
	}
}

// The server's first message to a Go client, 00, arrives; the client's
// ACK of it is lost, and so is the TCP acknowledgement (nothing from the
// node reaches the server): the server repeats its 00 on the next socket,
// and the client, with no evidence that the server got its ACK, takes it
// for a repeat (within the horizon). Then the server restarts (a new
// process, without a store) and sends the same first line: the client's
// TCP stack had the repeat's ACK acknowledged, so that is a new life of
// the server, delivered.
func TestServerZeroAckLost(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const T = 400 * time.Millisecond
	n := newLossNet(t, ctx, "tsz", 234, server.Config{Timeout: T})
	cfg := client.Config{ID: "go", Server: n.addr, Timeout: T, Dial: n.pair.Dialer(n.nodeNS), Logger: testutil.Logger(),
		BadServer: func(context.Context, error) error { return nil }}
	c, err := client.Dial(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.WaitUp(ctx); err != nil {
		t.Fatal(err)
	}
	l, err := n.srv.Node(ctx, "go")
	if err != nil {
		t.Fatal(err)
	}
	if err := n.pair.Drop(ctx, n.nodeNS, true); err != nil {
		t.Fatal(err)
	}
	written := make(chan error, 1)
	go func() { written <- l.Write(ctx, "config") }()
	if got, err := c.ReadLine(ctx); err != nil || got != "config" {
		t.Fatalf("client read %q, %v", got, err)
	}
	n.waitDown(t, ctx, "go") // the server's outage: nothing from the node for T
	if err := n.pair.Drop(ctx, n.nodeNS, false); err != nil {
		t.Fatal(err)
	}
	if err := <-written; err != nil { // repeated on the next socket, ACKed
		t.Fatal(err)
	}
	if st := c.Stats(); st.Received != 1 || st.AmbiguousRepeats != 1 {
		t.Fatalf("after the repeat: client got %d, %d ambiguous repeats; want 1, 1", st.Received, st.AmbiguousRepeats)
	}
	t.Log("server restart")
	n.restart(t, ctx, server.Config{Timeout: T})
	l, err = n.srv.Node(ctx, "go")
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Write(ctx, "config"); err != nil {
		t.Fatal(err)
	}
	if got, err := c.ReadLine(ctx); err != nil || got != "config" {
		t.Fatalf("client read %q, %v after the server restart", got, err)
	}
	if st := c.Stats(); st.Received != 2 || st.PeerRestarts != 1 || st.AmbiguousRepeats+st.AmbiguousRestarts != 1 {
		t.Fatalf("after the restart: %+v", st)
	}
}
