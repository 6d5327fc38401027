package bench

import (
	"context"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// epoch is the origin of the monotonic times that gauges record.
var epoch = time.Now()

func mono(t time.Time) int64 { return int64(t.Sub(epoch)) }

// gauge counts events from many goroutines and remembers when the first
// and the last happened; wait blocks until the count reaches a target.
// Adding is lock-free unless someone waits for the count just reached.
type gauge struct {
	n      atomic.Int64
	first  atomic.Int64 // mono time of event 1, 0 before
	last   atomic.Int64
	target atomic.Int64 // a waiter's target, 0 if none

	mu sync.Mutex
	ch chan struct{} // closed when n reaches target
}

// add counts one event that happened at t.
func (g *gauge) add(t time.Time) {
	m := mono(t)
	n := g.n.Add(1)
	if n == 1 {
		g.first.Store(m)
	}
	for {
		old := g.last.Load()
		if m <= old || g.last.CompareAndSwap(old, m) {
			break
		}
	}
	if tg := g.target.Load(); tg > 0 && n >= tg {
		g.mu.Lock()
		if g.ch != nil && n >= g.target.Load() {
			close(g.ch)
			g.ch = nil
			g.target.Store(0)
		}
		g.mu.Unlock()
	}
}

// count returns the number of events so far.
func (g *gauge) count() int64 { return g.n.Load() }

// span returns the time from the first event to the last.
func (g *gauge) span() time.Duration {
	if g.n.Load() == 0 {
		return 0
	}
	return time.Duration(g.last.Load() - g.first.Load())
}

// lastAt returns when the last event happened.
func (g *gauge) lastAt() time.Time { return epoch.Add(time.Duration(g.last.Load())) }

// reset clears the gauge; no event may race with it.
func (g *gauge) reset() {
	g.n.Store(0)
	g.first.Store(0)
	g.last.Store(0)
}

// wait blocks until the count reaches target or ctx ends. One waiter at
// a time.
func (g *gauge) wait(ctx context.Context, target int64) error {
	g.mu.Lock()
	ch := make(chan struct{})
	g.ch = ch
	g.target.Store(target)
	if g.n.Load() >= target {
		g.ch = nil
		g.target.Store(0)
		g.mu.Unlock()
		return nil
	}
	g.mu.Unlock()
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		g.mu.Lock()
		if g.ch == ch {
			g.ch = nil
			g.target.Store(0)
		}
		g.mu.Unlock()
		return ctx.Err()
	}
}

// sampler collects latency samples from many goroutines while on.
type sampler struct {
	on atomic.Bool
	mu sync.Mutex
	ns []int64
}

func (s *sampler) add(d time.Duration) {
	s.mu.Lock()
	s.ns = append(s.ns, int64(d))
	s.mu.Unlock()
}

// take returns the samples and starts afresh.
func (s *sampler) take() []int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	ns := s.ns
	s.ns = nil
	return ns
}

// acceptListener records when its first connection was accepted.
type acceptListener struct {
	net.Listener
	first atomic.Int64 // mono time, 0 before
	last  atomic.Int64
	n     atomic.Int64
}

func (l *acceptListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		now := mono(time.Now())
		if l.n.Add(1) == 1 {
			l.first.Store(now)
		}
		l.last.Store(now) // one accept loop: in order
	}
	return c, err
}

// span returns the number of connections accepted and the time from the
// first to the last.
func (l *acceptListener) span() (int64, time.Duration) {
	return l.n.Load(), time.Duration(l.last.Load() - l.first.Load())
}

// firstAt returns when the first connection was accepted, and whether
// one was.
func (l *acceptListener) firstAt() (time.Time, bool) {
	m := l.first.Load()
	return epoch.Add(time.Duration(m)), m != 0
}
