package gateway

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/tether-iot/tether/gateway/internal/bus"
	"github.com/tether-iot/tether/gateway/internal/store"
	"github.com/tether-iot/tether/gateway/internal/web"
	"github.com/tether-iot/tether/link"
)

// The up spool (store-and-forward). A message from a node is published
// at once when the broker is connected and nothing of the node's waits
// in its spool: the direct path, unchanged. Otherwise (the broker is not
// connected, a publish fails or takes longer than 4T, or earlier
// messages of the node are still spooled) the message, with the topics
// still owed, is appended to the node's spool in the store, in the same
// transaction as its window, and acknowledged to the node. A drainer
// goroutine per node with a non-empty spool publishes the spool in
// order, removing each message once the broker has accepted every
// publish it owes; it stops when the spool is empty.

// Why a node's message was refused (not acknowledged): the label
// "reason" of tether_nodes_spool_refused_total.
const (
	refuseSpoolFull = iota // its spool held queue.max_up_messages
	refuseStoreFull        // the queues and spools together were at queue.max_total_bytes
	numRefuseReasons
)

var refuseReasons = [numRefuseReasons]string{"spool_full", "store_full"}

// SpoolState is a node's up spool: its messages that the gateway
// acknowledged while the broker could not take them, waiting to be
// published.
type SpoolState struct {
	Messages int   // messages waiting
	Bytes    int64 // their payload bytes
	// Refused counts the node's messages not acknowledged since the
	// gateway started because its spool (or the store) was full.
	Refused uint64
	// Full: the node's messages are being refused (from the first
	// refusal until a message of the node is taken again).
	Full bool
}

// Spool returns the state of node id's up spool. It reads memory only.
func (g *Gateway) Spool(id string) SpoolState {
	d := g.st.UpDepth(id)
	s := SpoolState{Messages: d.Messages, Bytes: d.Bytes}
	if n := g.lookupNode(id); n != nil {
		s.Refused = n.spoolRefused.Load()
		s.Full = n.spoolFull.active()
	}
	return s
}

// spooledOf returns how many messages of node id wait in its spool.
func (g *Gateway) spooledOf(id string) int { return g.st.UpDepth(id).Messages }

// upPubs returns the publishes owed for a message of node id: its up
// topic, then its routes'.
func (g *Gateway) upPubs(id string) []store.Pub {
	routes := g.routes[id]
	pubs := make([]store.Pub, 0, 1+len(routes))
	pubs = append(pubs, store.Pub{Kind: pubUp, Topic: g.topics.Up(id)})
	for _, r := range routes {
		topic := g.topics.DownNoQoS(r.To)
		if r.Reliable() {
			topic = g.topics.Down(r.To)
		}
		pubs = append(pubs, store.Pub{Kind: pubRoute, Topic: topic})
	}
	return pubs
}

// deliver takes a new message from node n: published on its up topic
// and its routes (each accepted by the broker) and its window stored,
// or else spooled with its window; only then is it acknowledged to the
// node (by returning nil). It returns an error (the node repeats the
// message) only if the spool is full or the store fails.
//
// The direct publishes do not stop when the node's socket dies (ctx):
// once the broker has a message, the window is stored too, so that the
// node's repeat is recognised instead of published again. They are
// bounded by 4T, after which the publishes still owed are spooled.
func (g *Gateway) deliver(ctx context.Context, n *nodeState, m link.Message) error {
	if g.bus == nil {
		if err := g.st.SaveWindow(n.id, m.Window); err != nil {
			return err
		}
		g.taken(n, m)
		return nil
	}
	pubs := g.upPubs(n.id)
	// The drainer removes a message only once the broker has it all:
	// with nothing spooled, every earlier message of the node is
	// published, and this one may overtake none.
	if g.st.UpDepth(n.id).Messages == 0 {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 4*g.srv.Timeout())
		defer cancel()
		p := []byte(m.Payload)
		for len(pubs) > 0 && g.tryPublish(ctx, int(pubs[0].Kind), pubs[0].Topic, p) == nil {
			pubs = pubs[1:]
		}
		if len(pubs) == 0 {
			if err := g.st.SaveWindow(n.id, m.Window); err != nil {
				return err
			}
			g.setLast(n.id, m.Payload) // ha.go
			g.taken(n, m)
			return nil
		}
	}
	return g.spool(n, m, pubs)
}

// taken ends n's refusal episode, if any, keeps m as n's last message
// for the status page, and hands m to OnMessage.
func (g *Gateway) taken(n *nodeState, m link.Message) {
	if g.web != nil {
		last := web.ShownMessage(m.Payload, time.Now())
		n.lastMu.Lock()
		n.last = last
		n.lastMu.Unlock()
	}
	if n.spoolFull.active() {
		if k, ended := n.spoolFull.end(func() bool { return true }); ended {
			g.log.Info("node's messages are taken again", "node", n.id, "refused", k)
		}
	}
	if g.cfg.OnMessage != nil {
		g.cfg.OnMessage(n.id, m.Payload)
	}
}

// spool appends m with the publishes it still owes to n's spool, with
// its window, and starts n's drainer.
func (g *Gateway) spool(n *nodeState, m link.Message, pubs []store.Pub) error {
	_, err := g.st.SpoolUp(n.id, m.Window, store.Up{Payload: m.Payload, Pubs: pubs}, g.cfg.Queue.upLimit())
	switch {
	case errors.Is(err, store.ErrFull):
		return g.refuse(n, refuseSpoolFull)
	case errors.Is(err, store.ErrStoreFull):
		return g.refuse(n, refuseStoreFull)
	case err != nil:
		g.log.Error("store: cannot spool the node's message; not acknowledged", "node", n.id, "err", err)
		return err
	}
	g.stats.spooled.Add(1)
	if g.stats.spooling.hit() {
		g.log.Warn("MQTT: the broker does not take messages now: the nodes' messages are spooled in the store and acknowledged, and published in order once it does",
			"node", n.id, "topic", pubs[0].Topic)
	}
	g.kickDrain(n)
	g.taken(n, m)
	return nil
}

// refuse counts a message of n refused for reason (not acknowledged:
// the node repeats it) and logs the first of an episode.
func (g *Gateway) refuse(n *nodeState, reason int) error {
	g.stats.spoolRefused[reason].Add(1)
	n.spoolRefused.Add(1)
	q := g.cfg.Queue
	if n.spoolFull.hit() {
		g.log.Warn("node's up spool is full: its messages are not acknowledged (the node repeats them; a qos-off message is lost) until one is taken again",
			"node", n.id, "reason", refuseReasons[reason], "spooled", g.st.UpDepth(n.id).Messages,
			"max_up_messages", q.MaxUpMessages, "max_total_bytes", q.MaxTotalBytes)
	}
	if reason == refuseStoreFull {
		return fmt.Errorf("gateway: message of %q not spooled: %w (queue.max_total_bytes %d)", n.id, ErrStoreFull, q.MaxTotalBytes)
	}
	return fmt.Errorf("gateway: message of %q not spooled: %w (queue.max_up_messages %d)", n.id, ErrSpoolFull, q.MaxUpMessages)
}

// ErrSpoolFull is the error (wrapped) that refuses a node's message
// when its up spool is at Config.Queue.MaxUpMessages: the message is not
// acknowledged, and the node repeats it.
var ErrSpoolFull = errors.New("the node's up spool is full")

// tryPublish is publish without waiting for the connection: a broker
// that is not connected is no failure (the message is spooled).
func (g *Gateway) tryPublish(ctx context.Context, kind int, topic string, payload []byte) error {
	err := g.bus.TryPublish(ctx, topic, payload)
	if errors.Is(err, bus.ErrNotConnected) {
		return err
	}
	g.count(kind, topic, err)
	return err
}

// kickDrain starts n's drainer unless it runs or the gateway is closed.
// It is called after each append: the drainer, which stops only when it
// finds the spool empty under n.upMu, then sees the new message.
func (g *Gateway) kickDrain(n *nodeState) {
	n.upMu.Lock()
	defer n.upMu.Unlock()
	if n.draining {
		return
	}
	g.mu.Lock()
	closed := g.closed
	if !closed {
		g.wg.Add(1)
	}
	g.mu.Unlock()
	if closed {
		return // the spool waits in the store for the next start
	}
	n.draining = true
	go g.drain(n)
}

// drain publishes n's spool in order, each message on every topic it
// owes, and removes it once the broker has accepted them all; it
// returns when the spool is empty or the gateway closes. Publishes wait
// for the broker's connection, whose coming back wakes them.
func (g *Gateway) drain(n *nodeState) {
	defer g.wg.Done()
	stop := func() {
		n.upMu.Lock()
		n.draining = false
		n.upMu.Unlock()
	}
	// done counts the publishes of message seq that the broker has
	// accepted: a failure resumes with the next one. (After a restart a
	// message is published on all its topics again.)
	var seq uint64
	done := 0
	for {
		u, ok, err := g.st.UpHead(n.id)
		if err != nil {
			g.log.Error("store: cannot read the node's up spool; retrying", "node", n.id, "err", err)
			if !g.sleep(time.Second) {
				stop()
				return
			}
			continue
		}
		if !ok {
			n.upMu.Lock()
			if g.st.UpDepth(n.id).Messages == 0 {
				n.draining = false
				n.upMu.Unlock()
				g.spoolEmptied()
				return
			}
			n.upMu.Unlock()
			continue
		}
		if u.Seq != seq {
			seq, done = u.Seq, 0
		}
		p := []byte(u.Payload)
		for done < len(u.Pubs) {
			pb := u.Pubs[done]
			kind := int(pb.Kind)
			if kind >= numPubKinds {
				kind = pubRoute
			}
			if err := g.publish(g.ctx, kind, pb.Topic, p, false); err != nil {
				if g.ctx.Err() != nil || errors.Is(err, bus.ErrClosed) {
					stop()
					return // it stays spooled for the next start
				}
				if errors.Is(err, bus.ErrUnconfirmed) {
					continue // published again: at least once
				}
				if !g.sleep(time.Second) {
					stop()
					return
				}
				continue
			}
			done++
		}
		g.setLast(n.id, u.Payload) // ha.go (again after a restart: harmless, retained)
		if err := g.st.RemoveUp(n.id, u.Seq); err != nil {
			g.log.Error("store: cannot remove a published message from the node's up spool; retrying", "node", n.id, "err", err)
			if !g.sleep(time.Second) {
				stop()
				return
			}
			continue
		}
		g.storeDrained()
	}
}

// spoolEmptied ends the spooling episode once every spool is empty.
func (g *Gateway) spoolEmptied() {
	if _, ended := g.stats.spooling.end(func() bool { return g.st.UpTotal().Messages == 0 }); ended {
		g.log.Info("MQTT: the spooled messages are all published")
	}
}

// startSpools starts a drainer for each node whose spool the store
// kept from a previous run.
func (g *Gateway) startSpools() {
	ids := g.st.Spools()
	if len(ids) == 0 {
		return
	}
	t := g.st.UpTotal()
	if g.bus == nil {
		g.log.Warn("messages from nodes spooled for MQTT stay in the store: no broker (mqtt.broker none)", "nodes", len(ids), "spooled", t.Messages)
		return
	}
	g.log.Info("publishing the messages from nodes spooled before the restart", "nodes", len(ids), "spooled", t.Messages)
	g.stats.spooling.hit()
	for _, id := range ids {
		g.kickDrain(g.node(id))
	}
}
