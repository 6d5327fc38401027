package faultnet

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"time"
)

// FaultKind is a kind of fault for [Proxy.Random].
type FaultKind int

const (
	// FaultCut is [Proxy.Cut].
	FaultCut FaultKind = iota + 1
	// FaultReset is [Proxy.Reset].
	FaultReset
	// FaultBlackhole is [Proxy.Blackhole] for [Fault.For].
	FaultBlackhole
	// FaultRefuse is [Proxy.Refuse] for [Fault.For].
	FaultRefuse
)

// String returns the kind's name.
func (k FaultKind) String() string {
	switch k {
	case FaultCut:
		return "cut"
	case FaultReset:
		return "reset"
	case FaultBlackhole:
		return "blackhole"
	case FaultRefuse:
		return "refuse"
	}
	return fmt.Sprintf("FaultKind(%d)", int(k))
}

// Fault is one fault [Proxy.Random] may inject.
type Fault struct {
	// Kind is what to inject.
	Kind FaultKind
	// For is how long a FaultBlackhole or FaultRefuse lasts; it must be
	// positive for them and is ignored for FaultCut and FaultReset.
	For time.Duration
}

// Random injects one of faults, chosen uniformly with rng, at random
// intervals uniform in [every/2, 3*every/2), until ctx is done or the proxy
// closes. It runs on the caller's goroutine and returns a wrapped
// ctx.Err() or an error wrapping [net.ErrClosed]; it returns at once with an
// error if every is not positive or faults is empty or invalid. A nil rng
// means a randomly seeded one; rng must not be used elsewhere meanwhile.
// Faults may overlap when every is shorter than a fault's For: a blackhole
// or refusal then extends the current one.
func (p *Proxy) Random(ctx context.Context, rng *rand.Rand, every time.Duration, faults ...Fault) error {
	if every <= 0 {
		return errors.New("faultnet: random faults: interval must be positive")
	}
	if len(faults) == 0 {
		return errors.New("faultnet: random faults: no faults given")
	}
	for _, f := range faults {
		switch f.Kind {
		case FaultCut, FaultReset:
		case FaultBlackhole, FaultRefuse:
			if f.For <= 0 {
				return fmt.Errorf("faultnet: random faults: %v needs a positive duration", f.Kind)
			}
		default:
			return fmt.Errorf("faultnet: random faults: unknown %v", f.Kind)
		}
	}
	if rng == nil {
		rng = rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	}
	interval := func() time.Duration { return every/2 + time.Duration(rng.Int64N(int64(every))) }
	t := time.NewTimer(interval())
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return fmt.Errorf("faultnet: random faults: %w", ctx.Err())
		case <-p.ctx.Done():
			return fmt.Errorf("faultnet: random faults: %w", net.ErrClosed)
		case <-t.C:
		}
		f := faults[rng.IntN(len(faults))]
		p.cfg.Logger.Info("faultnet: random fault", "kind", f.Kind, "for", f.For)
		switch f.Kind {
		case FaultCut:
			p.Cut()
		case FaultReset:
			p.Reset()
		case FaultBlackhole:
			p.Blackhole(f.For)
		case FaultRefuse:
			p.Refuse(f.For)
		}
		t.Reset(interval())
	}
}
