package e2e

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tether-iot/tether/internal/harness/legacy"
	"github.com/tether-iot/tether/internal/harness/testutil"
	"github.com/tether-iot/tether/link"
	"github.com/tether-iot/tether/server"
)

// pipeListener is a listener whose connections are net.Pipes made by its
// dial: a server and nodes in one synctest bubble, in fake time.
type pipeListener struct {
	conns chan net.Conn
	once  sync.Once
	done  chan struct{}
}

func newPipeListener() *pipeListener {
	return &pipeListener{conns: make(chan net.Conn), done: make(chan struct{})}
}

func (l *pipeListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *pipeListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *pipeListener) Addr() net.Addr { return pipeAddr{} }

func (l *pipeListener) dial(ctx context.Context, _ string) (net.Conn, error) {
	a, b := net.Pipe()
	select {
	case l.conns <- b:
		return a, nil
	case <-l.done:
		return nil, net.ErrClosed
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

type pipeAddr struct{}

func (pipeAddr) Network() string { return "pipe" }
func (pipeAddr) String() string  { return "pipe" }

// slowReader runs, in fake time, a server with a backlog of n messages for
// an original (legacy) node whose application reads one line every
// readEvery, with the server's pace p. It returns the lines the
// application read and the server link's stats.
func slowReader(t *testing.T, n int, readEvery time.Duration, p link.Pace) (read []string, st link.Stats) {
	synctest.Test(t, func(t *testing.T) {
		const T = 2 * time.Second // the original's default, and its ratios
		ln := newPipeListener()
		srv, err := server.New(server.Config{Timeout: T, Pace: p, Logger: testutil.Logger()})
		if err != nil {
			t.Fatal(err)
		}
		served := make(chan struct{})
		go func() {
			defer close(served)
			srv.Serve(ln)
		}()
		node, err := legacy.StartNode(t.Context(), legacy.NodeConfig{ID: "slow", Addr: "pipe", Timeout: T,
			Dial: ln.dial, Logger: testutil.Logger()})
		if err != nil {
			t.Fatal(err)
		}
		l, err := srv.Node(t.Context(), "slow")
		if err != nil {
			t.Fatal(err)
		}
		written := make(chan error, 1)
		go func() { // the backlog
			for i := range n {
				if err := l.Write(t.Context(), fmt.Sprint("m", i)); err != nil {
					written <- err
					return
				}
			}
			written <- nil
		}()
		var mu sync.Mutex
		reading := make(chan struct{})
		go func() { // the application
			defer close(reading)
			for {
				s, err := node.ReadLine(t.Context())
				if err != nil {
					return
				}
				mu.Lock()
				read = append(read, strings.TrimSuffix(s, "\n"))
				mu.Unlock()
				time.Sleep(readEvery)
			}
		}()
		if err := <-written; err != nil { // every message acknowledged
			t.Fatal(err)
		}
		if err := node.WaitQueued(t.Context(), 0); err != nil { // and read, or lost
			t.Fatal(err)
		}
		synctest.Wait()
		st = l.Stats()
		node.Close()
		<-reading
		srv.Close()
		<-served
	})
	return read, st
}

func lostOf(read []string, n int) (lost []int) {
	seen := map[string]bool{}
	for _, s := range read {
		seen[s] = true
	}
	for i := range n {
		if !seen[fmt.Sprint("m", i)] {
			lost = append(lost, i)
		}
	}
	return lost
}

// TestSlowOriginalNode: an original node whose application reads a line
// every 300 ms, with 60 messages waiting for it at the server. Without
// pacing, its 20-line queue overflows: the message it then acknowledges
// is lost, and the server says so (a probable loss, with the id, for each).
// With a pace of 10 ahead and one per 450 ms, nothing is lost. In fake
// time: the figures do not depend on the machine's load.
func TestSlowOriginalNode(t *testing.T) {
	const n, every = 60, 300 * time.Millisecond
	t.Run("unpaced", func(t *testing.T) {
		read, st := slowReader(t, n, every, link.Pace{})
		lost := lostOf(read, n)
		t.Logf("unpaced: %d of %d lost %v; %d probable losses reported", len(lost), n, lost, st.ProbableLosses)
		if len(lost) == 0 {
			t.Fatal("nothing lost without pacing: the test does not reproduce the overflow")
		}
		if st.ProbableLosses != uint64(len(lost)) {
			t.Errorf("%d probable losses reported, %d lost", st.ProbableLosses, len(lost))
		}
	})
	t.Run("paced", func(t *testing.T) {
		read, st := slowReader(t, n, every, link.Pace{Ahead: 10, Every: every * 3 / 2})
		lost := lostOf(read, n)
		t.Logf("paced: %d of %d lost %v; %d probable losses reported", len(lost), n, lost, st.ProbableLosses)
		if len(lost) != 0 || st.ProbableLosses != 0 || len(read) != n {
			t.Errorf("with pacing: lost %v, %d read, %d probable losses; want none lost", lost, len(read), st.ProbableLosses)
		}
	})
}
