package e2e

import (
	"bytes"
	"context"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tether-iot/tether/internal/harness/faultnet"
	"github.com/tether-iot/tether/link"
)

// midLineCutter is a faultnet Filter that cuts a connection (CutAfter: FIN
// both ways) right after forwarding a chunk that ends in the middle of a
// line, after letting a few such chunks pass: the receiver is left with the
// start of a line that never ends. The directions take turns, so that both
// get their share of cuts. One cutter serves both proxies of a node.
type midLineCutter struct {
	target int // mid-message cuts wanted each way
	armed  atomic.Bool

	mu      sync.Mutex
	rng     *rand.Rand
	conns   map[connKey]*lineState
	turn    faultnet.Dir  // the direction of the next cut
	cuts    [2]int        // connections cut mid-line, by direction
	midMsg  [2]int        // of which inside a message (not an ACK)
	reached chan struct{} // closed when midMsg reaches target both ways
}

// connKey names a connection of one of the node's two proxies: each cuts
// one direction only, and numbers its connections itself.
type connKey struct {
	dir  faultnet.Dir
	conn int
}

// lineState is where one connection's stream stands in the cut direction.
type lineState struct {
	lines  int // complete lines so far
	tail   int // bytes of the line under way
	budget int // mid-line chunks to let pass before cutting
}

func newMidLineCutter(target int, rng *rand.Rand) *midLineCutter {
	m := &midLineCutter{target: target, rng: rng, conns: make(map[connKey]*lineState), reached: make(chan struct{})}
	m.armed.Store(true)
	return m
}

// filter returns the Filter of the proxy that cuts direction only.
func (m *midLineCutter) filter(only faultnet.Dir) func(faultnet.Dir, int, []byte) faultnet.Action {
	return func(dir faultnet.Dir, conn int, data []byte) faultnet.Action {
		if dir != only {
			return faultnet.Forward
		}
		m.mu.Lock()
		defer m.mu.Unlock()
		k := connKey{dir, conn}
		st := m.conns[k]
		if st == nil {
			st = &lineState{budget: 1 + m.rng.IntN(30)}
			m.conns[k] = st
		}
		if i := bytes.LastIndexByte(data, '\n'); i >= 0 {
			st.lines += bytes.Count(data, []byte{'\n'})
			st.tail = len(data) - i - 1
		} else {
			st.tail += len(data)
		}
		// Skip the first line (the node's ID, or the server's first
		// keepalive): the test is about the lines of the link.
		if !m.armed.Load() || dir != m.turn || st.lines == 0 || st.tail == 0 {
			return faultnet.Forward
		}
		if st.budget--; st.budget > 0 {
			return faultnet.Forward
		}
		m.turn = 1 - m.turn
		m.cuts[dir]++
		if st.tail >= 3 { // two hex digits and part of a payload
			m.midMsg[dir]++
			if m.midMsg[dir] == m.target && m.midMsg[1-dir] >= m.target {
				close(m.reached)
			}
		}
		return faultnet.CutAfter
	}
}

func (m *midLineCutter) counts() (cuts, midMsg [2]int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.cuts, m.midMsg
}

// TestPartialLines: each node reaches the server through two proxies that
// both deliver one byte per write, so that every chunk either proxy reads
// may end mid-line; the one nearer the server cuts the connection right
// after a chunk that ends inside a node->server line, the one nearer the
// node after one that ends inside a server->node line. No fragment may be
// delivered (alone or glued to a later line), and qos messages with wait
// must still arrive exactly once and in order.
func TestPartialLines(t *testing.T) {
	t.Parallel() // mostly waits on timers: the tests share the wall time
	const (
		nodes  = 3
		target = 15 // mid-message cuts per node and direction
	)
	ctx, cancel := context.WithTimeout(context.Background(), failsafe)
	defer cancel()
	sd := seed(t)
	t.Logf("seed %d (TETHER_E2E_SEED replays the cut choices)", sd)
	start := time.Now()

	var cutters []*midLineCutter
	chain := func(n *node, addr string) ([]*faultnet.Proxy, error) {
		m := newMidLineCutter(target, rand.New(rand.NewPCG(sd, uint64(n.idx))))
		cutters = append(cutters, m)
		near, err := faultnet.Start(context.Background(), faultnet.Config{Target: addr, Filter: m.filter(faultnet.C2S)})
		if err != nil {
			return nil, err
		}
		far, err := faultnet.Start(context.Background(), faultnet.Config{Target: near.Addr(), Filter: m.filter(faultnet.S2C)})
		if err != nil {
			near.Close()
			return nil, err
		}
		near.SetTrickle(true)
		far.SetTrickle(true)
		return []*faultnet.Proxy{far, near}, nil
	}
	c := newCluster(ctx, t, nodes, T/2, chain, clusterOpts{})
	stop := make(chan struct{})
	c.startWriters(ctx, stop, 1, link.QoS(true), link.Wait(true))

	for i, m := range cutters {
		select {
		case <-m.reached:
		case <-ctx.Done():
			cuts, mid := m.counts()
			t.Errorf("node %d: only %v of %d mid-message cuts each way (%v mid-line) before the failsafe", i, mid, target, cuts)
		}
		m.armed.Store(false)
	}
	for _, n := range c.nodes {
		if _, err := n.watch.waitUp(ctx); err != nil {
			t.Errorf("%s: %v", n.id, err)
		}
	}
	downs := c.downs() // before Close, which takes every link down
	c.finish(ctx, stop)

	var cuts, mid [2]int
	for _, m := range cutters {
		a, b := m.counts()
		for d := range 2 {
			cuts[d] += a[d]
			mid[d] += b[d]
		}
	}
	ups, dns := c.chk.totals()
	t.Logf("%d nodes, T=%v: %v", nodes, T, time.Since(start).Round(time.Millisecond))
	t.Logf("messages: %d node->server, %d server->node", ups, dns)
	t.Logf("cuts mid-line: node->server %d (%d inside a message), server->node %d (%d inside a message)",
		cuts[faultnet.C2S], mid[faultnet.C2S], cuts[faultnet.S2C], mid[faultnet.S2C])
	t.Logf("outages (Down events): server %d, nodes %d; duplicate-ID rejections %d",
		downs[srvEnd], downs[cliEnd], c.srv.Stats().DuplicateID)
}
