package soak

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/tether-iot/tether/client"
	"github.com/tether-iot/tether/internal/harness/faultnet"
	"github.com/tether-iot/tether/link"
)

// simNode is one simulated node: a client, its fault proxy if any, its
// streams to the server and its checks of the server's streams.
type simNode struct {
	id    string
	run   string
	cl    *client.Client
	proxy *faultnet.Proxy // nil without faults
	out   *streams
	soak  *Soak

	mu       sync.Mutex
	up       bool
	downAt   time.Time
	downs    int
	recover  []time.Duration
	changed  chan struct{} // closed and replaced on each event
	recv     checkers
	stale    uint64
	peerEnd  *line // the peer's answer to our end
	readErr  error
	endReady chan struct{} // closed when peerEnd or readErr is set
	stopped  chan struct{} // closed when the node's streams have ended
}

func newSimNode(s *Soak, id string) *simNode {
	return &simNode{
		id:       id,
		run:      fmt.Sprintf("%x", s.cfg.Seed^uint64(time.Now().UnixNano())),
		soak:     s,
		changed:  make(chan struct{}),
		endReady: make(chan struct{}),
		stopped:  make(chan struct{}),
	}
}

// onEvent follows the node's link: outages and the time to recover.
func (n *simNode) onEvent(ev link.Event) {
	n.mu.Lock()
	recovered := false
	switch ev.Kind {
	case link.Down:
		if n.up {
			n.up = false
			n.downAt = ev.Time
			n.downs++
		}
	case link.Up:
		if !n.up {
			n.up = true
			if !n.downAt.IsZero() {
				n.recover = append(n.recover, ev.Time.Sub(n.downAt))
				recovered = true
			}
		}
	}
	close(n.changed)
	n.changed = make(chan struct{})
	n.mu.Unlock()
	if recovered {
		n.soak.recovered()
	}
}

// waitDowns waits until the node has gone down at least k times in all.
func (n *simNode) waitDowns(ctx context.Context, k int) error {
	for {
		n.mu.Lock()
		downs, ch := n.downs, n.changed
		n.mu.Unlock()
		if downs >= k {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (n *simNode) downCount() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.downs
}

// read checks the server's streams until the link closes.
func (n *simNode) read(ctx context.Context) {
	defer func() {
		n.mu.Lock()
		if n.peerEnd == nil && n.readErr == nil {
			n.readErr = errors.New("link closed before the server's answer")
			close(n.endReady)
		}
		n.mu.Unlock()
	}()
	for {
		s, err := n.cl.ReadLine(ctx)
		if err != nil {
			return
		}
		m, err := parseLine(s)
		n.mu.Lock()
		switch {
		case err != nil:
			n.soak.cfg.Logger.Warn("soak node: bad line", "node", n.id, "err", err)
		case m.run != n.run:
			n.stale++
		case m.kind == "d":
			n.recv.add(m.stream, m.n)
		case m.kind == "end" && m.view != nil && n.peerEnd == nil:
			n.peerEnd = &m
			close(n.endReady)
		default:
			n.stale++
		}
		n.mu.Unlock()
	}
}

// finish ends the node's run: once its streams have stopped and been
// acknowledged, it tells the peer how many it sent and waits for the
// peer's answer. It returns the node's part of the report.
func (n *simNode) finish(ctx context.Context) nodeResult {
	r := nodeResult{id: n.id}
	select {
	case <-n.stopped:
	case <-ctx.Done():
		r.err = fmt.Errorf("node %s: its messages were not all acknowledged in time", n.id)
		return r
	}
	if err := n.out.failure(); err != nil {
		r.err = fmt.Errorf("node %s: %w", n.id, err)
		return r
	}
	r.sent = [2]uint64{n.out.sent[0].Load(), n.out.sent[1].Load()}
	end := fmt.Sprintf("end %s %d %d", n.run, r.sent[0], r.sent[1])
	if err := n.cl.Write(ctx, end); err != nil {
		r.err = fmt.Errorf("node %s: end of run: %w", n.id, err)
		return r
	}
	select {
	case <-n.endReady:
	case <-ctx.Done():
		r.err = fmt.Errorf("node %s: no answer from the server's soak peer in time (is the server running \"tether soak --serve\"?)", n.id)
		return r
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.peerEnd == nil {
		r.err = fmt.Errorf("node %s: %w", n.id, n.readErr)
		return r
	}
	r.up = *n.peerEnd.view
	r.peerSent = n.peerEnd.sent
	r.down = n.recv.view(r.peerSent)
	r.stale = n.stale
	r.recover = append([]time.Duration(nil), n.recover...)
	r.ok = true
	return r
}

// nodeResult is one node's part of the report.
type nodeResult struct {
	id       string
	ok       bool
	err      error
	sent     [2]uint64 // by the node
	peerSent [2]uint64 // by the server
	up       view      // the server's view of the node's streams
	down     view      // the node's view of the server's streams
	stale    uint64
	recover  []time.Duration
}
