package soak

import (
	"context"
	"math/rand/v2"
	"time"

	"github.com/tether-iot/tether/internal/notify"
)

// inject strikes a node with random faults until the soak stops them:
// each time the node's link is up, it waits a random time around
// FaultEvery, injects a fault and waits until the node has noticed it.
func (s *Soak) inject(n *simNode, rng *rand.Rand) {
	ctx := s.faultCtx
	T := s.cfg.Timeout
	between := func(lo, hi time.Duration) time.Duration {
		return lo + time.Duration(rng.Int64N(int64(hi-lo)+1))
	}
	for {
		if err := n.cl.WaitUp(ctx); err != nil {
			return
		}
		if !notify.Sleep(ctx, between(s.cfg.FaultEvery/2, s.cfg.FaultEvery*3/2)) {
			return
		}
		downs := n.downCount()
		f := s.cfg.Faults[rng.IntN(len(s.cfg.Faults))]
		var over <-chan struct{}
		switch f {
		case Cut:
			n.proxy.Cut()
		case Reset:
			n.proxy.Reset()
		case Blackhole:
			over = n.proxy.Blackhole(between(3*T/2, 3*T))
		case Refuse:
			over = n.proxy.Refuse(between(5*T/2, 5*T))
			n.proxy.Cut()
		}
		s.faults[f].Add(1)
		if over != nil {
			select {
			case <-over:
			case <-ctx.Done():
				return
			}
		}
		// The node notices a cut at once and silence within T; should
		// it not (the fault struck while it was reconnecting), go on.
		wctx, cancel := context.WithTimeout(ctx, 4*T)
		err := n.waitDowns(wctx, downs+1)
		cancel()
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			s.missedFaults.Add(1)
		}
	}
}
