package e2e

import (
	"context"
	"sync"
	"testing"

	"github.com/tether-iot/tether/internal/harness/faultnet"
	"github.com/tether-iot/tether/link"
)

// lineScan follows the lines of one direction of one connection across
// chunks, keeping the first bytes and the length of the line under way.
type lineScan struct {
	lines int     // complete lines so far
	head  [3]byte // first bytes of the line under way
	n     int     // its length so far
}

// feed scans data and calls line for each line it completes, with its
// index on the connection, its first bytes (at most 3) and its length.
func (s *lineScan) feed(data []byte, line func(idx int, head string, n int)) {
	for _, b := range data {
		if b != '\n' {
			if s.n < len(s.head) {
				s.head[s.n] = b
			}
			s.n++
			continue
		}
		line(s.lines, string(s.head[:min(s.n, len(s.head))]), s.n)
		s.lines++
		s.n = 0
	}
}

// zeroAckLoss is a faultnet Filter that loses the ACK of each side's first
// message (id 00) once: it cuts the connection (CutBefore) instead of
// forwarding the chunk that holds that ACK, so the sender repeats its 00 on
// the next connection, to a receiver that has already delivered it (the
// case the legacy receiver gets wrong: it delivers 00 twice).
type zeroAckLoss struct {
	mu       sync.Mutex
	scans    map[connKey]*lineScan
	zeroSeen map[connKey]bool // message 00 went that way on that connection
	lost     [2]bool          // the ACK of direction d's 00 was lost
	done     chan struct{}    // closed once both are
}

func newZeroAckLoss() *zeroAckLoss {
	return &zeroAckLoss{
		scans:    make(map[connKey]*lineScan),
		zeroSeen: make(map[connKey]bool),
		done:     make(chan struct{}),
	}
}

func (z *zeroAckLoss) filter(dir faultnet.Dir, conn int, data []byte) faultnet.Action {
	z.mu.Lock()
	defer z.mu.Unlock()
	k := connKey{dir, conn}
	s := z.scans[k]
	if s == nil {
		s = &lineScan{}
		z.scans[k] = s
	}
	act := faultnet.Forward
	other := 1 - dir
	s.feed(data, func(idx int, head string, n int) {
		switch {
		case dir == faultnet.C2S && idx == 0: // the node's ID
		case n > 2 && head[:2] == "00":
			z.zeroSeen[k] = true
		case n == 2 && head == "00" && z.zeroSeen[connKey{other, conn}] && !z.lost[other]:
			act = faultnet.CutBefore
			z.lost[other] = true
			if z.lost[dir] {
				close(z.done)
			}
		}
	})
	return act
}

// TestFirstMessageAckLost: the ACK of message 00 is lost, each way, on
// every node: the repeat of 00 must be recognised as a repeat (not as a
// restart of the sender), so that every message is still delivered exactly
// once and in order.
func TestFirstMessageAckLost(t *testing.T) {
	t.Parallel() // mostly waits on timers: the tests share the wall time
	const nodes = 3
	ctx, cancel := context.WithTimeout(context.Background(), failsafe)
	defer cancel()

	var losses []*zeroAckLoss
	chain := func(n *node, addr string) ([]*faultnet.Proxy, error) {
		z := newZeroAckLoss()
		losses = append(losses, z)
		p, err := faultnet.Start(context.Background(), faultnet.Config{Target: addr, Filter: z.filter})
		if err != nil {
			return nil, err
		}
		return []*faultnet.Proxy{p}, nil
	}
	// With TCP evidence: each cut is a FIN after the proxy forwarded the 00
	// its receiver acknowledged, so the 00's sender may say in its greeting
	// that its 00 arrived (rule 1 of the spec, end to end).
	c := newCluster(ctx, t, nodes, T/2, chain, clusterOpts{tcpEvidence: true})
	stop := make(chan struct{})
	c.startWriters(ctx, stop, 1, link.QoS(true), link.Wait(true))
	for i, z := range losses {
		select {
		case <-z.done:
		case <-ctx.Done():
			z.mu.Lock()
			t.Errorf("node %d: ACK of message 00 lost %v (c2s, s2c) before the failsafe", i, z.lost)
			z.mu.Unlock()
		}
	}
	for _, n := range c.nodes {
		if err := c.chk.waitProgress(ctx, n.idx, 100); err != nil {
			t.Error(err)
		}
	}
	c.finish(ctx, stop)

	for _, n := range c.nodes {
		for _, l := range []interface{ Stats() link.Stats }{n.sl, n.cl} {
			if st := l.Stats(); st.Duplicates == 0 {
				t.Errorf("%s: an end received no repeat, though the ACK of its peer's 00 was lost", n.id)
			}
		}
	}
	ups, downs := c.chk.totals()
	repeats, dups := c.linkTotals()
	t.Logf("%d nodes: %d messages node->server, %d server->node; %d repeats sent, %d duplicates dropped by receivers",
		nodes, ups, downs, repeats, dups)
}
