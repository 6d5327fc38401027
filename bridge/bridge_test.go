package bridge_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tether-iot/tether/bridge"
	"github.com/tether-iot/tether/internal/harness/faultnet"
	"github.com/tether-iot/tether/internal/harness/testutil"
	"github.com/tether-iot/tether/link"
	"github.com/tether-iot/tether/server"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const nodeID = "pump1"

// Timing of the tests: short, so that outages are detected quickly; a
// slow machine only makes more outages, which must not change the counts.
const (
	serverT = 600 * time.Millisecond
	serialT = 400 * time.Millisecond
)

// rig is a server, a fault-injecting TCP proxy in front of it, and two
// ptys joined by a fault-injecting relay: the bridge opens one, the
// board the other.
type rig struct {
	t      *testing.T
	ctx    context.Context
	srv    *server.Server
	proxy  *faultnet.Proxy
	bpty   *ptyEnd // the bridge's side
	dpty   *ptyEnd // the board's side
	wire   *relay
	state  string
	plain  bool
	resets chan struct{}
	b      *bridge.Bridge // the latest bridge started

	mu      sync.Mutex
	events  []bridge.Event
	evAdded chan struct{} // closed and replaced on each event
}

// waitEvent waits until an event of kind k has been recorded.
func (r *rig) waitEvent(k bridge.EventKind) {
	r.t.Helper()
	for {
		r.mu.Lock()
		ch := r.evAdded
		for _, ev := range r.events {
			if ev.Kind == k {
				r.mu.Unlock()
				return
			}
		}
		r.mu.Unlock()
		select {
		case <-ch:
		case <-r.ctx.Done():
			r.t.Fatalf("no %v event", k)
		}
	}
}

func newRig(t *testing.T, ctx context.Context, seed uint64) *rig {
	t.Helper()
	srv, err := server.New(server.Config{Timeout: serverT, Logger: testutil.Logger()})
	if err != nil {
		t.Fatal(err)
	}
	ln := testutil.Listen(t)
	served := make(chan struct{})
	go func() { defer close(served); srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close(); <-served })
	px, err := faultnet.Start(context.Background(), faultnet.Config{Target: ln.Addr().String(), Logger: testutil.Logger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { px.Close() })
	r := &rig{t: t, ctx: ctx, srv: srv, proxy: px, bpty: newPty(t), dpty: newPty(t), state: t.TempDir(), resets: make(chan struct{}, 16), evAdded: make(chan struct{})}
	r.wire = startRelay(t, r.bpty, r.dpty, seed)
	return r
}

// startBridge runs a bridge on the rig's state directory; the returned
// function stops it (as a kill would: nothing is flushed on the way out
// that was not stored when it was ACKed).
func (r *rig) startBridge() (stop func()) {
	r.t.Helper()
	b, err := bridge.New(bridge.Config{
		ID:                nodeID,
		Server:            r.proxy.Addr(),
		Timeout:           serverT,
		SerialTimeout:     serialT,
		Open:              bridge.OpenSerial(r.bpty.Path, 115200),
		PortName:          r.bpty.Path,
		StateDir:          r.state,
		Plain:             r.plain,
		ReconnectDelay:    serverT,
		MaxReconnectDelay: 2 * serverT,
		Logger:            testutil.Logger(),
		ResetAfter:        3 * serialT,
		Reset: func(context.Context) error {
			select {
			case r.resets <- struct{}{}:
			default:
			}
			return nil
		},
		OnEvent: func(ev bridge.Event) {
			r.mu.Lock()
			r.events = append(r.events, ev)
			close(r.evAdded)
			r.evAdded = make(chan struct{})
			r.mu.Unlock()
		},
	})
	if err != nil {
		r.t.Fatal(err)
	}
	r.b = b
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); b.Run(ctx) }()
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); <-done }) }
	r.t.Cleanup(stop)
	return stop
}

func (r *rig) startBoard() *bridge.Board {
	r.t.Helper()
	port, err := bridge.OpenSerial(r.dpty.Path, 115200)(r.ctx)
	if err != nil {
		r.t.Fatal(err)
	}
	bd, err := bridge.StartBoard(port, bridge.BoardConfig{Timeout: serialT, Logger: testutil.Logger()})
	if err != nil {
		r.t.Fatal(err)
	}
	return bd
}

// node returns the server's link of the bridged node.
func (r *rig) node() *link.Link {
	r.t.Helper()
	l, err := r.srv.Node(r.ctx, nodeID)
	if err != nil {
		r.t.Fatal(err)
	}
	return l
}

// tally counts the numbered lines one side receives, and wakes waiters
// when a count is reached.
type tally struct {
	mu     sync.Mutex
	prefix string
	seen   map[int]int
	order  []int
	wake   chan struct{}
}

func newTally(prefix string) *tally {
	return &tally{prefix: prefix, seen: map[int]int{}, wake: make(chan struct{})}
}

func (c *tally) add(t testing.TB, line string) {
	n, err := strconv.Atoi(strings.TrimPrefix(line, c.prefix))
	if err != nil || !strings.HasPrefix(line, c.prefix) {
		t.Errorf("unexpected line %q", line)
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seen[n]++
	c.order = append(c.order, n)
	close(c.wake)
	c.wake = make(chan struct{})
}

// waitFor waits until n distinct numbers have arrived.
func (c *tally) waitFor(ctx context.Context, n int) error {
	for {
		c.mu.Lock()
		got, ch := len(c.seen), c.wake
		c.mu.Unlock()
		if got >= n {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("%d of %d %q lines arrived: %w", got, n, c.prefix, ctx.Err())
		}
	}
}

// check asserts that 1..n arrived exactly once each, in order.
func (c *tally) check(t testing.TB, n int) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	var missing, dupes []int
	for i := 1; i <= n; i++ {
		switch c.seen[i] {
		case 0:
			missing = append(missing, i)
		case 1:
		default:
			dupes = append(dupes, i)
		}
	}
	if len(missing) > 0 || len(dupes) > 0 || len(c.seen) != n {
		t.Errorf("%q lines: missing %v, duplicated %v, %d distinct of %d", c.prefix, missing, dupes, len(c.seen), n)
	}
	for i := 1; i < len(c.order); i++ {
		if c.order[i] < c.order[i-1] {
			t.Errorf("%q lines out of order: %d after %d", c.prefix, c.order[i], c.order[i-1])
			break
		}
	}
}

// readAll copies the lines that rd returns into c until it fails.
func readAll(t testing.TB, ctx context.Context, c *tally, rd func(context.Context) (string, error)) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			line, err := rd(ctx)
			if err != nil {
				return
			}
			c.add(t, line)
		}
	}()
	return done
}

// TestExactlyOnceThroughFaults carries numbered lines both ways between
// a board and the server through every fault of the serial bridge: bytes
// flipped and dropped on the serial line, the bridge killed and
// restarted on its state, the server unreachable (silent, then cut), the
// board restarting, the board not answering (reset). Every line arrives
// exactly once, in order.
func TestExactlyOnceThroughFaults(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	r := newRig(t, ctx, 1)
	stopBridge := r.startBridge()
	up, down := newTally("b"), newTally("s")
	const (
		nUp, nDown  = 200, 100
		downPhase1  = 60  // server lines sent before the board restarts
		boardReboot = 130 // the board restarts before this line
	)
	bd := r.startBoard()
	boardRead := readAll(t, ctx, down, bd.ReadLine)

	node := r.node()
	serverRead := readAll(t, ctx, up, node.ReadLine)
	defer func() { <-serverRead }()
	gate := make(chan struct{})
	noisy := make(chan struct{})
	serverSent := make(chan error, 1)
	go func() {
		select { // the server's lines cross the noisy wire
		case <-noisy:
		case <-ctx.Done():
		}
		for i := 1; i <= nDown; i++ {
			if i == downPhase1+1 {
				select {
				case <-gate:
				case <-ctx.Done():
					serverSent <- ctx.Err()
					return
				}
			}
			if err := node.Write(ctx, "s"+strconv.Itoa(i)); err != nil {
				serverSent <- err
				return
			}
		}
		serverSent <- nil
	}()

	for i := 1; i <= nUp; i++ {
		switch i {
		case 20:
			r.wire.set(0.01, 0.005) // a noisy wire
			close(noisy)
		case 60:
			stopBridge() // the bridge's host dies; the board keeps repeating
			stopBridge = r.startBridge()
		case 80:
			<-r.proxy.Blackhole(3 * serverT) // the server away, silently
		case 100:
			r.proxy.Cut() // and the connection cut
		case 115:
			r.wire.set(0, 0)
		case boardReboot:
			if err := down.waitFor(ctx, downPhase1); err != nil {
				t.Fatal(err)
			}
			bd.Close() // the board resets: lines it took were read
			<-boardRead
			bd = r.startBoard()
			boardRead = readAll(t, ctx, down, bd.ReadLine)
			close(gate)
		case 160:
			r.wire.setCut(true) // the board stops answering: a reset
			select {
			case <-r.resets:
			case <-ctx.Done():
				t.Fatal("no reset of a board that stopped answering")
			}
			r.wire.setCut(false)
		}
		if err := bd.Write(ctx, "b"+strconv.Itoa(i)); err != nil {
			t.Fatalf("board write %d: %v", i, err)
		}
	}
	if err := up.waitFor(ctx, nUp); err != nil {
		t.Fatal(err)
	}
	if err := <-serverSent; err != nil {
		t.Fatalf("server writes: %v", err)
	}
	if err := down.waitFor(ctx, nDown); err != nil {
		t.Fatal(err)
	}
	up.check(t, nUp)
	down.check(t, nDown)
	flipped, dropped := r.wire.faults()
	t.Logf("serial faults: %d bytes flipped, %d dropped; board saw %d bad frames", flipped, dropped, bd.BadFrames())
	if flipped == 0 || dropped == 0 {
		t.Errorf("the relay injected no faults (%d flipped, %d dropped)", flipped, dropped)
	}
	if n := node.Stats().PeerRestarts; n != 1 {
		t.Errorf("the server saw %d node restarts, want 1 (the board's)", n)
	}
	r.mu.Lock()
	kinds := map[bridge.EventKind]int{}
	for _, ev := range r.events {
		kinds[ev.Kind]++
	}
	r.mu.Unlock()
	for _, k := range []bridge.EventKind{bridge.BoardRestart, bridge.BoardReset, bridge.ServerDown, bridge.BoardDown} {
		if kinds[k] == 0 {
			t.Errorf("no %v event: %v", k, kinds)
		}
	}
	stopBridge()
	bd.Close()
	<-boardRead
	r.srv.Close()
}
