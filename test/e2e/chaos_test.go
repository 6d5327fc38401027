package e2e

import (
	"context"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/tether-iot/tether/internal/harness/faultnet"
	"github.com/tether-iot/tether/link"
)

// TestChaos: faults at random, overlapping, some of them black holes
// shorter than T that only one end may notice (a WiFi glitch), while two
// writers per node and direction send qos messages with wait, and nodes
// reconnect almost at once. Every message is delivered exactly once, each
// writer's in order.
func TestChaos(t *testing.T) {
	t.Parallel() // mostly waits on timers: the tests share the wall time
	const (
		nodes    = 4
		duration = 8 * time.Second
		every    = T
		// Much shorter than T: a node may reconnect before the server has
		// seen its old socket end, and be turned away as a duplicate ID.
		reconnect = T / 25
	)
	faults := []faultnet.Fault{
		{Kind: faultnet.FaultCut},
		{Kind: faultnet.FaultReset},
		{Kind: faultnet.FaultBlackhole, For: T / 2},
		{Kind: faultnet.FaultBlackhole, For: T},
		{Kind: faultnet.FaultBlackhole, For: 2 * T},
		{Kind: faultnet.FaultRefuse, For: T},
	}
	ctx, cancel := context.WithTimeout(context.Background(), failsafe)
	defer cancel()
	sd := seed(t)
	t.Logf("seed %d (TETHER_E2E_SEED replays the fault choices, not their timing)", sd)
	start := time.Now()

	c := newCluster(ctx, t, nodes, reconnect, oneProxy, clusterOpts{})
	stop := make(chan struct{})
	c.startWriters(ctx, stop, 2, link.QoS(true), link.Wait(true))
	fctx, fcancel := context.WithTimeout(ctx, duration)
	var wg sync.WaitGroup
	for i, n := range c.nodes {
		wg.Go(func() { _ = n.front().Random(fctx, rand.New(rand.NewPCG(sd, uint64(i))), every, faults...) })
	}
	wg.Wait()
	fcancel()
	for _, n := range c.nodes {
		if _, err := n.watch.waitUp(ctx); err != nil {
			t.Errorf("%s: %v", n.id, err)
		}
	}
	downs := c.downs() // before Close, which takes every link down
	c.finish(ctx, stop)

	var st faultnet.Stats
	for _, n := range c.nodes {
		ps := n.front().Stats()
		st.Cuts += ps.Cuts
		st.Resets += ps.Resets
		st.Blackholes += ps.Blackholes
		st.Refusals += ps.Refusals
	}
	ups, dns := c.chk.totals()
	repeats, dups := c.linkTotals()
	t.Logf("%d nodes, T=%v: %v", nodes, T, time.Since(start).Round(time.Millisecond))
	t.Logf("messages: %d node->server, %d server->node; %d repeats sent, %d duplicates dropped by receivers", ups, dns, repeats, dups)
	t.Logf("faults: %d cuts, %d resets, %d black holes, %d refusals; outages (Down events): server %d, nodes %d; duplicate-ID rejections %d",
		st.Cuts, st.Resets, st.Blackholes, st.Refusals, downs[srvEnd], downs[cliEnd], c.srv.Stats().DuplicateID)
}
