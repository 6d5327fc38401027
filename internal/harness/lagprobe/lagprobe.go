// Package lagprobe measures the scheduling delays of the process that a
// real-time test runs in, so that the test can allow for them instead of
// relying on a wall-clock margin.
//
// A Probe wakes up every millisecond and records each wake-up that came
// late as a stall: the interval from when it should have run to when it
// ran. On a loaded machine (other processes, a CPU quota, a busy Go
// runtime, the race detector) every goroutine of the process is held up
// alike; a probe sees those delays, and a test can ask how much of an
// interval the process spent stalled. A timing property of the code under
// test then becomes "at most d plus the stalls within the interval": it
// still fails on a real regression (a missing keepalive leaves a silence of
// T while the probe saw nothing), and it holds on a busy machine.
package lagprobe

import (
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"
)

// Tick is the probe's interval: stalls shorter than about a tick are not
// seen, nor do they matter to the millisecond-scale bounds of the tests.
const Tick = time.Millisecond

// Stall is an interval in which the probe's goroutine could not run: it
// was due at From and ran at To.
type Stall struct{ From, To time.Time }

// Len is the stall's duration.
func (s Stall) Len() time.Duration { return s.To.Sub(s.From) }

// Probe records the stalls of the process from Start to Stop.
type Probe struct {
	stop chan struct{}
	done chan struct{}

	mu     sync.Mutex
	stalls []Stall       // in time order, not overlapping
	woke   chan struct{} // closed and replaced at each wake-up
}

// Start starts a probe; Stop must be called to end its goroutine.
func Start() *Probe {
	p := &Probe{stop: make(chan struct{}), done: make(chan struct{}), woke: make(chan struct{})}
	go p.run(time.Now().Add(Tick)) // a stall before the goroutine runs counts too
	return p
}

// New starts a probe that stops at the end of the test.
func New(tb testing.TB) *Probe {
	tb.Helper()
	p := Start()
	tb.Cleanup(p.Stop)
	return p
}

func (p *Probe) run(due time.Time) {
	defer close(p.done)
	t := time.NewTimer(time.Until(due))
	defer t.Stop()
	for {
		select {
		case <-t.C:
		case <-p.stop:
			return
		}
		now := time.Now()
		p.mu.Lock()
		if late := now.Sub(due); late > Tick {
			p.stalls = append(p.stalls, Stall{From: due, To: now})
		}
		close(p.woke)
		p.woke = make(chan struct{})
		p.mu.Unlock()
		due = now.Add(Tick)
		t.Reset(Tick)
	}
}

// Stop ends the probe's goroutine; the stalls recorded stay readable. It
// is idempotent.
func (p *Probe) Stop() {
	select {
	case <-p.stop:
	default:
		close(p.stop)
	}
	<-p.done
}

// sync waits, while the probe runs, until it has woken up twice more: a
// stall that has just ended is recorded by then, even if the caller ran
// first when the process resumed.
func (p *Probe) sync() {
	for range 2 {
		p.mu.Lock()
		ch := p.woke
		p.mu.Unlock()
		select {
		case <-ch:
		case <-p.done:
			return
		}
	}
}

// Stalled returns how long the process was stalled within [from, to].
// Like every query, it first lets the probe record a stall that has just
// ended.
func (p *Probe) Stalled(from, to time.Time) time.Duration {
	p.sync()
	p.mu.Lock()
	defer p.mu.Unlock()
	return stalled(p.stalls, from, to)
}

func stalled(stalls []Stall, from, to time.Time) time.Duration {
	var d time.Duration
	// The first stall that ends after from.
	i := sort.Search(len(stalls), func(i int) bool { return stalls[i].To.After(from) })
	for ; i < len(stalls) && stalls[i].From.Before(to); i++ {
		s := stalls[i]
		a, b := s.From, s.To
		if a.Before(from) {
			a = from
		}
		if b.After(to) {
			b = to
		}
		if b.After(a) {
			d += b.Sub(a)
		}
	}
	return d
}

// MaxStalled returns the most stalled time within any interval of length
// window inside [from, to]: what could have held up one timeout of that
// length.
func (p *Probe) MaxStalled(from, to time.Time, window time.Duration) time.Duration {
	p.sync()
	p.mu.Lock()
	defer p.mu.Unlock()
	var most time.Duration
	// An interval holding the most stalled time can be taken to start
	// where a stall starts (or at from).
	starts := []time.Time{from}
	for _, s := range p.stalls {
		if s.From.After(from) && s.From.Before(to) {
			starts = append(starts, s.From)
		}
	}
	for _, a := range starts {
		b := a.Add(window)
		if b.After(to) {
			b = to
		}
		most = max(most, stalled(p.stalls, a, b))
	}
	return most
}

// Longest returns the longest single stall within [from, to], clipped
// to it.
func (p *Probe) Longest(from, to time.Time) time.Duration {
	p.sync()
	p.mu.Lock()
	defer p.mu.Unlock()
	var most time.Duration
	for _, s := range p.stalls {
		if s.To.After(from) && s.From.Before(to) {
			most = max(most, stalled([]Stall{s}, from, to))
		}
	}
	return most
}

// Summary describes the stalls within [from, to], for a test's log.
func (p *Probe) Summary(from, to time.Time) string {
	p.sync()
	p.mu.Lock()
	n := 0
	for _, s := range p.stalls {
		if s.To.After(from) && s.From.Before(to) {
			n++
		}
	}
	p.mu.Unlock()
	return fmt.Sprintf("%d stalls of the process totalling %v, the longest %v, in %v",
		n, p.Stalled(from, to).Round(time.Millisecond), p.Longest(from, to).Round(time.Millisecond), to.Sub(from).Round(time.Millisecond))
}
