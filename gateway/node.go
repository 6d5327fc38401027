package gateway

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tether-iot/tether/gateway/internal/store"
	"github.com/tether-iot/tether/gateway/internal/web"
	"github.com/tether-iot/tether/internal/notify"
	"github.com/tether-iot/tether/link"
)

// fastQueue bounds the qos-off messages waiting for a node.
const fastQueue = 64

// nodeState is the gateway's side of one node: its writers.
//
// A node costs no goroutine while it has nothing to write or is down
// (issue 10.2): its writers, runNode for the durable queue and runFast
// for qos-off messages, are started on demand (kick, kickFast: a new
// message, the node's Up event) and end once there is nothing to write
// or the node's link is down; the Down event ends their waits. A qos
// message handed to the link when it went down stays in the link (which
// repeats it on the next socket): the next writer waits for its ACK
// before it removes it from the store.
type nodeState struct {
	g     *Gateway
	id    string
	fast  chan string   // qos-off messages, dropped when full
	ready chan struct{} // closed once introduced on MQTT: the writers wait for it
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

	// Its writers (under wmu).
	wmu      sync.Mutex
	writing  bool               // runNode runs
	again    bool               // kicked while runNode ran: it looks again before ending
	fasting  bool               // runFast runs
	againF   bool               // kicked while runFast ran
	cancelW  context.CancelFunc // ends runNode's wait on the link (Down)
	cancelF  context.CancelFunc // ends runFast's wait on the link (Down)
	inflight *store.Item        // runNode's: handed to the link, its ACK not yet seen
	forgetT  *time.Timer        // forgets the node once down long enough (forget.go)

	// Its last message, for the status page (taken).
	lastMu sync.Mutex
	last   web.Message

	// Its up spool (spool.go).
	upMu         sync.Mutex    // guards draining
	draining     bool          // its drainer runs
	spoolFull    episode       // its messages are refused: the spool is full
	spoolRefused atomic.Uint64 // its messages refused because the spool was full
}

// kick starts the node's queue writer, or makes the running one look
// at the queue again before it ends.
func (n *nodeState) kick() {
	g := n.g
	n.wmu.Lock()
	defer n.wmu.Unlock()
	if n.writing {
		n.again = true
		return
	}
	if !g.addWorker() {
		return // closing
	}
	n.writing = true
	go g.runNode(n)
}

// kickFast starts the node's qos-off writer, or makes the running one
// look at its queue again before it ends.
func (n *nodeState) kickFast() {
	g := n.g
	n.wmu.Lock()
	defer n.wmu.Unlock()
	if n.fasting {
		n.againF = true
		return
	}
	if !g.addWorker() {
		return
	}
	n.fasting = true
	go g.runFast(n)
}

// linkDown ends the writers' waits on the node's link: they end, and
// the node's next Up event starts them again.
func (n *nodeState) linkDown() {
	n.wmu.Lock()
	defer n.wmu.Unlock()
	if n.cancelW != nil {
		n.cancelW()
	}
	if n.cancelF != nil {
		n.cancelF()
	}
}

// addWorker counts a goroutine of the gateway in g.wg, unless the
// gateway is closing (false).
func (g *Gateway) addWorker() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed || g.ctx.Err() != nil {
		return false
	}
	g.wg.Add(1)
	return true
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
		g:     g,
		id:    id,
		fast:  make(chan string, fastQueue),
		ready: make(chan struct{}),
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
	g.wg.Add(1)
	go g.introduceNode(n)
	return n
}

// introduceNode makes the node known on MQTT, once, then lets its
// writers write (and starts the queue writer, for a queue kept in the
// store).
func (g *Gateway) introduceNode(n *nodeState) {
	defer g.wg.Done()
	select {
	case <-g.busSet:
	case <-g.ctx.Done():
		return
	}
	g.introduce(n)
	close(n.ready)
	n.kick()
}

// runNode writes the node's durable queue, oldest first, one message
// at a time (qos, wait), while the node is up; it ends when the queue is
// empty, or the node is down or was never connected (its Up event or the
// next message starts it again), or the gateway closes. Across the
// gateway's restarts a message keeps the id it was given (store.Assign).
func (g *Gateway) runNode(n *nodeState) {
	defer g.wg.Done()
	select {
	case <-n.ready:
	case <-g.ctx.Done():
		n.endWriter(true)
		return
	}
	for {
		if l, err := g.srv.Lookup(n.id); err == nil {
			ctx, cancel := context.WithCancel(g.ctx)
			n.wmu.Lock()
			n.cancelW = cancel
			n.wmu.Unlock()
			g.writeQueue(ctx, n, l) // checks Up after cancelW is set: see linkDown
			n.wmu.Lock()
			n.cancelW = nil
			n.wmu.Unlock()
			cancel()
			if g.ctx.Err() == nil && l.Up() && g.st.Len(n.id) > 0 {
				continue // a stale Down event ended the wait: go on
			}
		}
		if n.endWriter(g.ctx.Err() != nil) {
			return
		}
	}
}

// endWriter ends runNode unless it was kicked meanwhile (false: look
// again); closing ends it in any case.
func (n *nodeState) endWriter(closing bool) bool {
	n.wmu.Lock()
	defer n.wmu.Unlock()
	if n.again && !closing {
		n.again = false
		return false
	}
	n.writing, n.again = false, false
	return true
}

// writeQueue writes the queue while l is up; it returns when the queue
// is empty, l is down or closed, or ctx ends (the link went down, or the
// gateway is closing).
func (g *Gateway) writeQueue(ctx context.Context, n *nodeState, l *link.Link) {
	for ctx.Err() == nil && l.Up() {
		if it := n.inflight; it != nil {
			// Handed to the link before an outage: the link repeats
			// it; its ACK is the end of the link's queue.
			if err := l.Drain(ctx); err != nil {
				return
			}
			n.inflight = nil
			g.delivered(n, *it)
			continue
		}
		it, ok, err := g.st.Head(n.id)
		if err != nil {
			g.log.Error("store: cannot read the node's queue; retrying", "node", n.id, "err", err)
			if !notify.Sleep(ctx, time.Second) {
				return
			}
			continue
		}
		if !ok {
			return
		}
		var assigned bool
		var opts []link.WriteOption
		if it.Assigned {
			g.log.Info("resending a queued message with the id it had before the restart; the node drops it if it has it", "node", n.id, "id", it.ID)
			seq, was := it.Seq, it.ID
			opts = []link.WriteOption{link.Reuse(it.ID), link.Assign(func(id uint8) error {
				// Called again with a new id if the link restarts its
				// sequence (a new peer on the node's ID): stored, so that
				// a restart of the gateway resends it under that id.
				if id != was {
					if err := g.st.Assign(n.id, seq, id); err != nil {
						return err
					}
				}
				assigned = true
				return nil
			})}
		} else {
			seq := it.Seq
			opts = []link.WriteOption{link.Assign(func(id uint8) error {
				if err := g.st.Assign(n.id, seq, id); err != nil {
					return err
				}
				assigned = true
				return nil
			})}
		}
		err = l.Write(ctx, it.Payload, opts...)
		switch {
		case err == nil:
		case errors.Is(err, link.ErrClosed):
			return // it stays in the store (and in the link until Shutdown drains it)
		case ctx.Err() != nil:
			if assigned {
				it.Assigned, n.inflight = true, &it // in the link: wait for its ACK next time
			}
			return
		case errors.Is(err, link.ErrEmpty), errors.Is(err, link.ErrNewline),
			errors.Is(err, link.ErrTooLong), errors.Is(err, link.ErrNotUTF8):
			g.drop(n, dropInvalid)
			g.log.Error("message can never be written to the node: dropped", "node", n.id, "err", err)
		default:
			g.log.Error("write to node failed; retrying", "node", n.id, "err", err)
			if !notify.Sleep(ctx, time.Second) {
				return
			}
			continue
		}
		g.delivered(n, it)
	}
}

// delivered removes a message the node acknowledged from its queue.
func (g *Gateway) delivered(n *nodeState, it store.Item) {
	if err := g.st.Remove(n.id, it.Seq); err != nil {
		// Sent again with the same id after a restart: the node's
		// window drops the repeat.
		g.log.Error("store: cannot remove a delivered message", "node", n.id, "err", err)
	}
	g.drained(n)
	g.storeDrained()
}

// runFast writes the node's qos-off messages once each while it is up;
// it ends when none waits, or the node is down (the rest wait for its Up
// event, up to fastQueue), or the gateway closes.
func (g *Gateway) runFast(n *nodeState) {
	defer g.wg.Done()
	select {
	case <-n.ready:
	case <-g.ctx.Done():
		n.endFast(true)
		return
	}
	for {
		if l, err := g.srv.Lookup(n.id); err == nil {
			ctx, cancel := context.WithCancel(g.ctx)
			n.wmu.Lock()
			n.cancelF = cancel
			n.wmu.Unlock()
			g.writeFast(ctx, n, l)
			n.wmu.Lock()
			n.cancelF = nil
			n.wmu.Unlock()
			cancel()
			if g.ctx.Err() == nil && l.Up() && len(n.fast) > 0 {
				continue
			}
		}
		if n.endFast(g.ctx.Err() != nil) {
			return
		}
	}
}

func (n *nodeState) endFast(closing bool) bool {
	n.wmu.Lock()
	defer n.wmu.Unlock()
	if n.againF && !closing {
		n.againF = false
		return false
	}
	n.fasting, n.againF = false, false
	return true
}

func (g *Gateway) writeFast(ctx context.Context, n *nodeState, l *link.Link) {
	for ctx.Err() == nil && l.Up() {
		var p string
		select {
		case p = <-n.fast:
		default:
			return
		}
		if dropped, ended := n.fastFull.end(func() bool { return len(n.fast) <= fastQueue/2 }); ended {
			g.log.Info("qos-off messages for the node are taken again", "node", n.id, "dropped", dropped)
		}
		// The id is stored before it is used, as for the durable queue:
		// after a restart the gateway never sends an id twice.
		save := link.Assign(func(id uint8) error { return g.st.SaveNext(n.id, link.NextID(id)) })
		if err := l.Write(ctx, p, link.QoS(false), save); err != nil {
			if errors.Is(err, link.ErrClosed) || g.ctx.Err() != nil {
				return
			}
			g.drop(n, dropNoQoSFull)
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
	nc := g.cfg.Nodes.Node(id)
	c.RepeatHorizon, c.Pace = nc.repeatHorizon(), nc.pace()
	c.NoTCPEvidence = nc.TCPEvidence != nil && !*nc.TCPEvidence
	n := g.nodeConnecting(id, true) // before seen, which makes it too
	g.seen(id)
	g.scheduleForget(n) // forgotten if it never comes up (its Up stops it)
	c.Deliver = func(ctx context.Context, m link.Message) error { return g.deliver(ctx, n, m) }
	// The evidence about the node's first message (whether it got our
	// ACK of it, and when) is stored with the window, so that a restart
	// of the gateway keeps telling the node's repeats from its restarts.
	c.OnWindow = func(w link.Window) {
		if err := g.st.SaveWindow(id, w); err != nil {
			g.log.Error("store: cannot save the node's receive window", "node", id, "err", err)
		}
	}
	return nil
}

// onEvent publishes node state changes.
func (g *Gateway) onEvent(ev link.Event) {
	if ev.Kind == link.Up || ev.Kind == link.Down {
		if _, err := g.srv.Lookup(ev.ID); err != nil {
			return // forgotten meanwhile (forget.go)
		}
		n := g.node(ev.ID)
		if ev.Kind == link.Up {
			n.stopForgetTimer()
			n.kick()
			n.kickFast()
		} else {
			n.linkDown()
			g.scheduleForget(n)
		}
		g.publishState(n, false, false)
	}
	if g.cfg.OnEvent != nil {
		g.cfg.OnEvent(ev)
	}
}
