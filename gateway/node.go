package gateway

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tether-iot/tether/link"
)

// fastQueue bounds the qos-off messages waiting for a node.
const fastQueue = 64

// nodeState is the gateway's side of one node: its writers.
type nodeState struct {
	id    string
	wake  chan struct{} // buffer 1: the durable queue has a new message
	fast  chan string   // qos-off messages, dropped when full
	state sync.Mutex    // serializes the retained state publishes
	// published is the state last published ("up", "down"; "" none
	// yet), under state: a state is published only when it changes.
	published string
	// introduced is set (under state) by introduce's publishState:
	// before it, the events' publishes wait for it.
	introduced bool
	// connecting is set once the node has begun a handshake (configure):
	// its link may not be registered yet, and is not up.
	connecting atomic.Bool

	dropped  atomic.Uint64 // messages for the node dropped, for any reason
	full     episode       // its durable queue is full: new messages dropped
	fastFull episode       // its qos-off queue is full
	stranger bool          // not expected, never seen connected (g.mu)

	// Its up spool (spool.go).
	upMu         sync.Mutex    // guards draining
	draining     bool          // its drainer runs
	spoolFull    episode       // its messages are refused: the spool is full
	spoolRefused atomic.Uint64 // its messages refused because the spool was full
}

func (n *nodeState) kick() {
	select {
	case n.wake <- struct{}{}:
	default:
	}
}

// node returns the state of node id, starting its goroutines on first
// use. It returns a detached state (which nothing reads) once closed.
func (g *Gateway) node(id string) *nodeState { return g.nodeConnecting(id, false) }

// nodeConnecting is node; connecting marks the node as connecting
// before its goroutines start (see nodeState.connecting).
func (g *Gateway) nodeConnecting(id string, connecting bool) *nodeState {
	g.mu.Lock()
	defer g.mu.Unlock()
	if n := g.nodes[id]; n != nil {
		if connecting {
			n.connecting.Store(true)
		}
		return n
	}
	n := &nodeState{
		id:   id,
		wake: make(chan struct{}, 1),
		fast: make(chan string, fastQueue),
	}
	n.connecting.Store(connecting)
	if g.closed {
		return n
	}
	if !g.expect[id] && !g.st.Seen(id) {
		n.stranger = true
		g.strangers++
	}
	g.nodes[id] = n
	g.wg.Add(2)
	go g.runNode(n)
	go g.runFast(n)
	return n
}

// runNode makes the node known on MQTT, then writes its durable queue,
// oldest first, one message at a time (qos, wait), across its outages
// and the gateway's restarts.
func (g *Gateway) runNode(n *nodeState) {
	defer g.wg.Done()
	select {
	case <-g.busSet:
	case <-g.ctx.Done():
		return
	}
	g.introduce(n)
	var l *link.Link
	for {
		it, ok, err := g.st.Head(n.id)
		if err != nil {
			g.log.Error("store: cannot read the node's queue; retrying", "node", n.id, "err", err)
			if !g.sleep(time.Second) {
				return
			}
			continue
		}
		if !ok {
			select {
			case <-n.wake:
				continue
			case <-g.ctx.Done():
				return
			}
		}
		if l == nil {
			if l, err = g.srv.Node(g.ctx, n.id); err != nil {
				return // closed
			}
		}
		opt := link.Reuse(it.ID)
		if it.Assigned {
			g.log.Info("resending a queued message with the id it had before the restart; the node drops it if it has it", "node", n.id, "id", it.ID)
		} else {
			seq := it.Seq
			opt = link.Assign(func(id uint8) error { return g.st.Assign(n.id, seq, id) })
		}
		err = l.Write(g.ctx, it.Payload, opt)
		switch {
		case err == nil:
		case g.ctx.Err() != nil, errors.Is(err, link.ErrClosed):
			return // it stays in the store (and in the link until Shutdown drains it)
		case errors.Is(err, link.ErrEmpty), errors.Is(err, link.ErrNewline),
			errors.Is(err, link.ErrTooLong), errors.Is(err, link.ErrNotUTF8):
			g.drop(n, dropInvalid)
			g.log.Error("message can never be written to the node: dropped", "node", n.id, "err", err)
		default:
			g.log.Error("write to node failed; retrying", "node", n.id, "err", err)
			if !g.sleep(time.Second) {
				return
			}
			continue
		}
		if err := g.st.Remove(n.id, it.Seq); err != nil {
			// Sent again with the same id after a restart: the node's
			// window drops the repeat.
			g.log.Error("store: cannot remove a delivered message", "node", n.id, "err", err)
		}
		g.drained(n)
		g.storeDrained()
	}
}

// runFast writes the node's qos-off messages once each, when it is up.
func (g *Gateway) runFast(n *nodeState) {
	defer g.wg.Done()
	var l *link.Link
	for {
		var p string
		select {
		case p = <-n.fast:
		case <-g.ctx.Done():
			return
		}
		if dropped, ended := n.fastFull.end(func() bool { return len(n.fast) <= fastQueue/2 }); ended {
			g.log.Info("qos-off messages for the node are taken again", "node", n.id, "dropped", dropped)
		}
		if l == nil {
			var err error
			if l, err = g.srv.Node(g.ctx, n.id); err != nil {
				return
			}
		}
		// The id is stored before it is used, as for the durable queue:
		// after a restart the gateway never sends an id twice.
		save := link.Assign(func(id uint8) error { return g.st.SaveNext(n.id, link.NextID(id)) })
		if err := l.Write(g.ctx, p, link.QoS(false), save); err != nil {
			if g.ctx.Err() != nil || errors.Is(err, link.ErrClosed) {
				return
			}
			g.log.Warn("qos-off message dropped", "node", n.id, "err", err)
		}
	}
}

// sleep waits d or until the gateway closes; false means closed.
func (g *Gateway) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-g.ctx.Done():
		return false
	}
}

// introduce subscribes to the node's down topics if this gateway does
// not own every node, announces it to Home Assistant, and publishes its
// state.
func (g *Gateway) introduce(n *nodeState) {
	if g.bus == nil {
		return
	}
	ctx, cancel := context.WithTimeout(g.ctx, 4*g.srv.Timeout())
	defer cancel()
	if len(g.expect) > 0 && !g.expect[n.id] {
		if err := g.bus.Subscribe(ctx, g.topics.Down(n.id), g.topics.DownNoQoS(n.id)); err != nil {
			g.log.Error("MQTT: cannot subscribe to the node's topics", "node", n.id, "err", err)
		}
	}
	if !g.bus.Status().Connected {
		n.state.Lock()
		n.introduced = true // the events and the republisher publish
		n.state.Unlock()
		// The broker's next connection has the republisher publish the
		// state and discovery of every node known by then, this one
		// included: no need to wait for it here (and log a failure per
		// node when the gateway starts before its broker).
		return
	}
	if g.cfg.Discovery.Enabled {
		if err := g.announce(ctx, n.id); err != nil {
			g.log.Warn("MQTT: Home Assistant discovery not published", "node", n.id, "err", err)
		}
	}
	g.publishState(n, true, false)
}

// publishState publishes the node's current state, retained, if it is
// not the one last published (Home Assistant's history records every
// publish: a repeated "up" is noise, a "down" before the first "up" a
// disconnect that never was). The per-node lock and reading the state
// under it keep the last publish right whatever the order of concurrent
// calls. A node that is connecting and was never published is not
// published "down": its Up event publishes "up". first is introduce's
// call (the events' calls wait for it); force publishes even an
// unchanged state, for a broker that may have lost it.
func (g *Gateway) publishState(n *nodeState, first, force bool) {
	if g.bus == nil {
		return
	}
	n.state.Lock()
	defer n.state.Unlock()
	if first {
		n.introduced = true
	} else if !n.introduced {
		return // introduce publishes the state it then reads
	}
	state := "down"
	l, err := g.srv.Lookup(n.id)
	if err == nil && l.Up() {
		state = "up"
	}
	if state == "down" && n.published == "" && n.connecting.Load() {
		return // connecting: its Up event publishes "up"
	}
	if state == n.published && !force {
		return
	}

	ctx, cancel := context.WithTimeout(context.Background(), g.srv.Timeout())
	defer cancel()
	if err := g.publish(ctx, pubState, g.topics.State(n.id), []byte(state), true); err != nil {
		g.log.Warn("MQTT: node state not published", "node", n.id, "state", state, "err", err)
		n.published = "" // unknown: the next call publishes
		return
	}
	n.published = state
}

// configure resumes a node's link from the store and routes its
// messages through deliver.
func (g *Gateway) configure(id string, c *link.Config) error {
	snap, err := g.st.Snapshot(id)
	if err != nil {
		// Starting afresh would send 00 and clear a legacy node's
		// window: refuse the node until its state can be read.
		g.log.Error("store: cannot read the node's saved state; node refused", "node", id, "err", err)
		return fmt.Errorf("gateway: state of node %q: %w", id, err)
	}
	c.Resume = snap
	n := g.nodeConnecting(id, true) // before seen, which makes it too
	g.seen(id)
	c.Deliver = func(ctx context.Context, m link.Message) error { return g.deliver(ctx, n, m) }
	return nil
}

// onEvent publishes node state changes.
func (g *Gateway) onEvent(ev link.Event) {
	if ev.Kind == link.Up || ev.Kind == link.Down {
		g.publishState(g.node(ev.ID), false, false)
	}
	if g.cfg.OnEvent != nil {
		g.cfg.OnEvent(ev)
	}
}
