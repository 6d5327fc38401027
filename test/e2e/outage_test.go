package e2e

import (
	"context"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/tether-iot/tether/internal/harness/pkitest"
	"github.com/tether-iot/tether/link"
)

// outageTest is one run of nodes sending qos messages both ways while
// their proxies inject the faults of plan.
type outageTest struct {
	nodes   int
	writers int  // per node and direction
	wait    bool // link.Wait
	plan    plan // per node
	tls     bool // the nodes speak TLS, with their certificates
}

// TestOutagesWait: qos with wait, one writer per node and direction: every
// message is delivered exactly once and in order through every outage.
func TestOutagesWait(t *testing.T) {
	runOutages(t, outageTest{
		nodes:   6,
		writers: 1,
		wait:    true,
		plan:    plan{cut: 7, reset: 7, blackhole: 5, refuse: 5, delay: 3, trickle: 3},
	})
}

// TestOutagesNoWait: qos without wait, several writers per node and
// direction, so that several messages are in flight when an outage hits:
// every message is delivered exactly once (and each writer's in order,
// since a writer waits for each ACK).
func TestOutagesNoWait(t *testing.T) {
	runOutages(t, outageTest{
		nodes:   6,
		writers: 4,
		wait:    false,
		plan:    plan{cut: 7, reset: 7, blackhole: 5, refuse: 5, delay: 3, trickle: 3},
	})
}

// TestOutagesTLS: the nodes speak TLS, each with its certificate, the
// server requiring it: exactly-once delivery in order holds through every
// kind of outage, each reconnection a new TLS handshake.
func TestOutagesTLS(t *testing.T) {
	runOutages(t, outageTest{
		nodes:   4,
		writers: 2,
		wait:    false,
		plan:    plan{cut: 5, reset: 5, blackhole: 3, refuse: 3, delay: 2, trickle: 2},
		tls:     true,
	})
}

// seed returns the seed of the fault sequences: TETHER_E2E_SEED if set (to
// replay a failure), else a new one. The test logs it.
func seed(t *testing.T) uint64 {
	if s := os.Getenv("TETHER_E2E_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("TETHER_E2E_SEED=%q: %v", s, err)
		}
		return v
	}
	return uint64(time.Now().UnixNano())
}

func runOutages(t *testing.T, tc outageTest) {
	t.Parallel() // mostly waits on timers: the tests share the wall time
	ctx, cancel := context.WithTimeout(context.Background(), failsafe)
	defer cancel()
	sd := seed(t)
	t.Logf("seed %d (TETHER_E2E_SEED replays the fault sequence)", sd)
	start := time.Now()

	var o clusterOpts
	var bad []badCredential
	if tc.tls {
		o.pki = pkitest.New(t)
		bad = badCredentials(o.pki, tc.nodes)
	}
	c := newCluster(ctx, t, tc.nodes, T/2, oneProxy, o)
	stop := make(chan struct{})
	c.startWriters(ctx, stop, tc.writers, link.QoS(true), link.Wait(tc.wait))
	var ts tallies
	stopAttack := c.attack(ctx, bad, sd)
	c.driveAll(ctx, tc.plan, sd, &ts)
	stopAttack()
	c.finish(ctx, stop)

	ups, downs := c.chk.totals()
	byKind, total := ts.outages()
	repeats, dups := c.linkTotals()
	var refused int64
	accepted := 0
	for _, n := range c.nodes {
		refused += n.refused.Load()
		accepted += n.front().Stats().Accepted
	}
	t.Logf("%d nodes, %d writer(s) per node and direction, wait=%v, T=%v: %v", tc.nodes, tc.writers, tc.wait, T, time.Since(start).Round(time.Millisecond))
	t.Logf("messages: %d node->server, %d server->node; %d repeats sent, %d duplicates dropped by receivers", ups, downs, repeats, dups)
	t.Logf("outages (server-side Down events): %d in all: cut %d, reset %d, blackhole %d, refuse %d; during delay %d, trickle %d",
		total, byKind[cut], byKind[reset], byKind[blackhole], byKind[refuse], byKind[delay], byKind[trickle])
	t.Logf("connections accepted by the proxies %d, connects refused %d, duplicate-ID rejections %d",
		accepted, refused, c.srv.Stats().DuplicateID)
	t.Logf("by kind:%v", &ts)
}
