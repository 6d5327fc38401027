package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"sync"
	"time"
)

// kind is a kind of fault the driver injects on a node's proxy.
type kind int

const (
	cut       kind = iota // both sides closed with FIN
	reset                 // both sides closed with RST
	blackhole             // nothing passes, no FIN nor RST, for more than T
	refuse                // new connects refused for a while, then a cut
	delay                 // latency up to 3T/4 each way: no outage expected
	trickle               // one byte per write: no outage expected
	nKinds
)

func (k kind) String() string {
	return [...]string{"cut", "reset", "blackhole", "refuse", "delay", "trickle"}[k]
}

// outage reports whether the fault is meant to take the link down.
func (k kind) outage() bool { return k <= refuse }

// plan is how many faults of each kind to inject on each node.
type plan [nKinds]int

// tally is what the faults of one kind did, over all nodes.
type tally struct {
	faults      int
	downs       [2]int        // Down events by end during the faults
	maxRecovery time.Duration // from the fault to both ends up again
	maxOutage   time.Duration // from the first Down to both ends up again
	sumRecovery time.Duration
}

// tallies collects the driver's figures; safe for concurrent use.
type tallies struct {
	mu sync.Mutex
	k  [nKinds]tally
}

func (ts *tallies) add(k kind, before, after state, start time.Time) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	t := &ts.k[k]
	t.faults++
	for e := range 2 {
		t.downs[e] += after.downs[e] - before.downs[e]
	}
	if k.outage() {
		upAt := maxTime(after.upAt[srvEnd], after.upAt[cliEnd])
		downAt := minTime(after.downAt[srvEnd], after.downAt[cliEnd])
		rec := upAt.Sub(start)
		t.maxRecovery = max(t.maxRecovery, rec)
		t.maxOutage = max(t.maxOutage, upAt.Sub(downAt))
		t.sumRecovery += rec
	}
}

// outages returns the outages (server-side Down events) by kind, and the
// total over the outage kinds.
func (ts *tallies) outages() (byKind [nKinds]int, total int) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	for k := range nKinds {
		byKind[k] = ts.k[k].downs[srvEnd]
		if kind(k).outage() {
			total += byKind[k]
		}
	}
	return byKind, total
}

func (ts *tallies) String() string {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	var b strings.Builder
	for k := range nKinds {
		t := ts.k[k]
		fmt.Fprintf(&b, "\n  %-9s faults %3d, Down events server %3d / node %3d", kind(k), t.faults, t.downs[srvEnd], t.downs[cliEnd])
		if kind(k).outage() && t.faults > 0 {
			fmt.Fprintf(&b, ", recovery from the fault mean %v max %v, longest outage %v",
				(t.sumRecovery / time.Duration(t.faults)).Round(time.Millisecond),
				t.maxRecovery.Round(time.Millisecond), t.maxOutage.Round(time.Millisecond))
		}
	}
	return b.String()
}

// between returns a random duration in [lo, hi).
func between(rng *rand.Rand, lo, hi time.Duration) time.Duration {
	return lo + time.Duration(rng.Int64N(int64(hi-lo)))
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// drive injects the faults of p on node n, in a random order, one at a
// time: it waits until the link is up on both ends and some messages have
// passed (0 to maxGap each way), injects the fault, and for an outage waits
// until both ends have gone down and come back up. Delay and trickle last
// until a few messages have passed each way. It returns the first error
// (ctx ending: the link did not recover).
func (c *cluster) drive(ctx context.Context, n *node, p plan, rng *rand.Rand, ts *tallies) error {
	var order []kind
	for k := range nKinds {
		for range p[k] {
			order = append(order, kind(k))
		}
	}
	rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
	const maxGap = 20
	px := n.front()
	for i, k := range order {
		if _, err := n.watch.waitUp(ctx); err != nil {
			return fmt.Errorf("%s, before fault %d (%v): %w", n.id, i, k, err)
		}
		if err := c.chk.waitProgress(ctx, n.idx, rng.IntN(maxGap+1)); err != nil {
			return fmt.Errorf("%s, before fault %d (%v): %w", n.id, i, k, err)
		}
		before, _ := n.watch.state()
		start := time.Now()
		switch k {
		case cut:
			px.Cut()
		case reset:
			px.Reset()
		case blackhole:
			// Longer than T, so that both ends notice it.
			px.Blackhole(3*T/2 + between(rng, 0, T/2))
		case refuse:
			px.Refuse(between(rng, T, 2*T))
			if rng.IntN(2) == 0 {
				px.Cut()
			} else {
				px.Reset()
			}
		case delay:
			px.SetDelay(between(rng, T/8, 3*T/4))
			err := c.chk.waitProgress(ctx, n.idx, 3)
			px.SetDelay(0)
			if err != nil {
				return fmt.Errorf("%s, during a delay: %w", n.id, err)
			}
		case trickle:
			px.SetTrickle(true)
			err := c.chk.waitProgress(ctx, n.idx, 10)
			px.SetTrickle(false)
			if err != nil {
				return fmt.Errorf("%s, while trickling: %w", n.id, err)
			}
		}
		after, _ := n.watch.state()
		if k.outage() {
			var err error
			if after, err = n.watch.waitRecovered(ctx, before); err != nil {
				return fmt.Errorf("%s, after fault %d (%v): %w", n.id, i, k, err)
			}
		}
		ts.add(k, before, after, start)
	}
	return nil
}

// driveAll runs drive on every node at once, each with its own random
// sequence (seeded from seed and the node's index), and fails the test on
// the first error of each.
func (c *cluster) driveAll(ctx context.Context, p plan, seed uint64, ts *tallies) {
	var wg sync.WaitGroup
	errs := make([]error, len(c.nodes))
	for i, n := range c.nodes {
		rng := rand.New(rand.NewPCG(seed, uint64(i)))
		wg.Go(func() { errs[i] = c.drive(ctx, n, p, rng, ts) })
	}
	wg.Wait()
	var msgs []string
	for _, err := range errs {
		if err != nil {
			msgs = append(msgs, err.Error())
		}
	}
	sort.Strings(msgs)
	for _, m := range msgs {
		c.t.Error(m)
	}
}
