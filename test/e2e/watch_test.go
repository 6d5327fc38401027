package e2e

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/tether-iot/tether/link"
)

// The two ends of a node's link.
const (
	srvEnd = 0
	cliEnd = 1
)

// linkWatch follows the events of both ends of one node's link, so that a
// test can wait for an outage and the recovery without polling.
type linkWatch struct {
	mu       sync.Mutex
	changed  chan struct{} // closed and replaced on every event
	up       [2]bool
	downs    [2]int
	upAt     [2]time.Time // time of the last Up
	downAt   [2]time.Time // time of the last Down
	restarts int          // PeerRestart events: never expected here
}

func newLinkWatch() *linkWatch { return &linkWatch{changed: make(chan struct{})} }

// event records ev from end (srvEnd or cliEnd).
func (w *linkWatch) event(end int, ev link.Event) {
	w.mu.Lock()
	defer w.mu.Unlock()
	switch ev.Kind {
	case link.Up:
		w.up[end], w.upAt[end] = true, ev.Time
	case link.Down:
		w.up[end], w.downAt[end] = false, ev.Time
		w.downs[end]++
	case link.PeerRestart:
		w.restarts++
	}
	close(w.changed)
	w.changed = make(chan struct{})
}

// state is a copy of a linkWatch's state.
type state struct {
	up           [2]bool
	downs        [2]int
	upAt, downAt [2]time.Time
	restarts     int
	bothUp       bool
}

func (w *linkWatch) state() (state, <-chan struct{}) {
	w.mu.Lock()
	defer w.mu.Unlock()
	s := state{up: w.up, downs: w.downs, upAt: w.upAt, downAt: w.downAt, restarts: w.restarts}
	s.bothUp = s.up[srvEnd] && s.up[cliEnd]
	return s, w.changed
}

// wait waits until cond holds for the state, and returns that state.
func (w *linkWatch) wait(ctx context.Context, what string, cond func(state) bool) (state, error) {
	for {
		s, ch := w.state()
		if cond(s) {
			return s, nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return s, fmt.Errorf("waiting for %s (up %v, downs %v): %w", what, s.up, s.downs, ctx.Err())
		}
	}
}

// waitUp waits until both ends are up.
func (w *linkWatch) waitUp(ctx context.Context) (state, error) {
	return w.wait(ctx, "both ends up", func(s state) bool { return s.bothUp })
}

// waitRecovered waits until both ends have gone down since before and are
// both up again.
func (w *linkWatch) waitRecovered(ctx context.Context, before state) (state, error) {
	return w.wait(ctx, "an outage on both ends and the recovery", func(s state) bool {
		return s.downs[srvEnd] > before.downs[srvEnd] && s.downs[cliEnd] > before.downs[cliEnd] && s.bothUp
	})
}
