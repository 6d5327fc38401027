package gateway

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/tether-iot/tether/gateway/internal/store"
	"github.com/tether-iot/tether/gateway/internal/web"
	"github.com/tether-iot/tether/link"
)

// ErrQueueFull is returned (wrapped) by Send when the node's durable
// queue is at its bound (Config.Queue): the message was not queued.
var ErrQueueFull = errors.New("the node's queue is full")

// ErrStoreFull is returned (wrapped) by Send when all the durable queues
// together are at Config.Queue.MaxTotalBytes: the message was not
// queued.
var ErrStoreFull = errors.New("the gateway's queues are full (all nodes together)")

// QueueState is a node's durable queue as the gateway sees it.
type QueueState struct {
	Messages int    // messages waiting, the one being written included
	Bytes    int64  // their payload bytes
	Dropped  uint64 // messages for the node dropped since the gateway started, for any reason
	// Full: new messages for the node are being dropped (from the first
	// drop until the queue has drained to half its bounds), or the queue
	// holds Config.Queue.MaxMessages.
	Full bool
}

// Queue returns the state of node id's durable queue. It reads memory
// only.
func (g *Gateway) Queue(id string) QueueState {
	d := g.st.Depth(id)
	q := QueueState{Messages: d.Messages, Bytes: d.Bytes}
	if m := g.cfg.Queue.MaxMessages; m > 0 && d.Messages >= m {
		q.Full = true
	}
	if n := g.lookupNode(id); n != nil {
		q.Dropped = n.dropped.Load()
		q.Full = q.Full || n.full.active()
	}
	return q
}

// webQueue is Queue and Spool for the status page.
func (g *Gateway) webQueue(id string) web.Queue {
	q, s := g.Queue(id), g.Spool(id)
	return web.Queue{Stored: q.Messages, Bytes: q.Bytes, Dropped: q.Dropped, Full: q.Full,
		Spooled: s.Messages, SpooledBytes: s.Bytes, SpoolRefused: s.Refused, SpoolFull: s.Full}
}

// offline returns the nodes that the status page and the per-node
// metrics list even before they connect: those with messages in the
// store (queued or spooled), and the expected ones (the page skips those
// that connected).
func (g *Gateway) offline() []string {
	ids := slices.Concat(g.st.Queues(), g.st.Spools(), g.cfg.Nodes.Expect)
	slices.Sort(ids)
	return slices.Compact(ids)
}

// droppedOf returns how many messages for node id were dropped.
func (g *Gateway) droppedOf(id string) uint64 {
	if n := g.lookupNode(id); n != nil {
		return n.dropped.Load()
	}
	return 0
}

// lookupNode returns the state of node id, or nil: unlike node, it
// starts nothing.
func (g *Gateway) lookupNode(id string) *nodeState {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.nodes[id]
}

// drop counts a message for node id dropped for reason; n may be nil.
func (g *Gateway) drop(n *nodeState, reason int) {
	g.stats.dropped[reason].Add(1)
	if n != nil {
		n.dropped.Add(1)
	}
}

// dropFull drops a message from MQTT that found n's queue full. The
// first drop of an episode is logged; the episode ends (and is logged)
// once the queue has drained to half its bounds.
func (g *Gateway) dropFull(n *nodeState) {
	g.drop(n, dropQueueFull)
	if !n.full.hit() {
		return
	}
	d := g.st.Depth(n.id)
	g.log.Warn("node's queue is full: new messages for it are dropped (and acknowledged to the broker) until it drains to half",
		"node", n.id, "queued", d.Messages, "bytes", d.Bytes,
		"max_messages", g.cfg.Queue.MaxMessages, "max_bytes", g.cfg.Queue.MaxBytes)
	g.drained(n) // in case the node's writer emptied it meanwhile
}

// drained ends n's full episode if its queue has drained to half its
// bounds. The node's writer calls it after each message it removes.
func (g *Gateway) drained(n *nodeState) {
	if !n.full.active() {
		return
	}
	var d store.Depth
	dropped, ended := n.full.end(func() bool {
		d = g.st.Depth(n.id)
		return g.halfEmpty(d)
	})
	if ended {
		g.log.Info("node's queue has room again: new messages for it are queued",
			"node", n.id, "queued", d.Messages, "dropped", dropped)
	}
}

// halfEmpty reports whether a queue of depth d is at most half full.
func (g *Gateway) halfEmpty(d store.Depth) bool {
	q := g.cfg.Queue
	return (q.MaxMessages <= 0 || d.Messages <= q.MaxMessages/2) &&
		(q.MaxBytes <= 0 || d.Bytes <= q.MaxBytes/2)
}

// Send queues payload for node id durably and returns; the node's
// writer delivers it with qos, exactly once, when the node is up. If
// the node's queue is full (Config.Queue) the message is not queued and
// the error wraps ErrQueueFull; if all the queues together are full, it
// wraps ErrStoreFull. Send is not bounded by Config.Queue.MaxNodes.
func (g *Gateway) Send(ctx context.Context, id, payload string) error {
	if err := g.checkSend(id, payload); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	g.mu.Lock()
	closed := g.closed
	g.mu.Unlock()
	if closed {
		return ErrClosed
	}
	_, _, err := g.st.Enqueue(id, payload, store.Origin{}, g.cfg.Queue.limit())
	q := g.cfg.Queue
	if errors.Is(err, store.ErrFull) {
		return fmt.Errorf("gateway: message for %q not queued: %w (queue.max_messages %d, queue.max_bytes %d)", id, ErrQueueFull, q.MaxMessages, q.MaxBytes)
	}
	if errors.Is(err, store.ErrStoreFull) {
		return fmt.Errorf("gateway: message for %q not queued: %w (queue.max_total_bytes %d)", id, ErrStoreFull, q.MaxTotalBytes)
	}
	if err != nil {
		return err
	}
	g.node(id).kick()
	return nil
}

// checkSend rejects a message that could never be written to the node.
func (g *Gateway) checkSend(id, payload string) error {
	if err := checkID(id); err != nil {
		return fmt.Errorf("gateway: %w", err)
	}
	if g.cfg.Nodes.Strict && !g.expect[id] {
		return fmt.Errorf("gateway: node %q is not expected (strict mode): add it to nodes.expect / --expect", id)
	}
	maxLine := g.cfg.MaxLine
	if maxLine == 0 {
		maxLine = link.DefaultMaxLine
	}
	if err := link.CheckPayload(payload, maxLine); err != nil {
		return fmt.Errorf("gateway: message for %q: %w", id, err)
	}
	return nil
}
