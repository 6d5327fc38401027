package gateway

import (
	"errors"
	"strconv"

	"github.com/tether-iot/tether/gateway/internal/bus"
	"github.com/tether-iot/tether/gateway/internal/store"
	"github.com/tether-iot/tether/internal/rarelog"
)

// fromBroker takes a message published on a node's down topic: a qos
// message is stored in the node's queue before it is acknowledged to
// the broker, or dropped (and acknowledged) if the queue is full, or all
// the queues together are; a qos-off message is handed to the node's
// writer, or dropped if too many wait. A message for an ID never seen
// connected, not expected, that the gateway keeps nothing for yet, is
// dropped (and acknowledged) past queue.max_nodes such IDs.
func (g *Gateway) fromBroker(m bus.Message) error {
	if g.fromAdminTopic(m) || g.fromHAStatus(m) {
		return nil
	}
	id, qos, ok := g.topics.parseDown(m.Topic)
	if !ok || !g.Owns(id) {
		return nil
	}
	payload := string(m.Payload)
	if err := g.checkSend(id, payload); err != nil {
		g.drop(g.lookupNode(id), dropInvalid)
		// Rarely: a flood of bad messages must not flood the log.
		if n := g.stats.dropped[dropInvalid].Load(); rarelog.Due(n) {
			g.log.Warn("MQTT message for a node dropped", "topic", strconv.QuoteToASCII(m.Topic), "err", err, "count", n)
		}
		return nil
	}
	if g.stranger(id) {
		// One stranger at a time: the check and the state it makes
		// (below, by g.node) go together.
		g.admitMu.Lock()
		defer g.admitMu.Unlock()
		if g.stranger(id) && !g.roomForStranger() {
			g.dropStranger(id)
			return nil // acknowledged, as a full queue's
		}
	}
	if !qos {
		n := g.node(id)
		select {
		case n.fast <- payload:
			n.kickFast()
		default:
			g.drop(n, dropNoQoSFull)
			if n.fastFull.hit() {
				g.log.Warn("qos-off messages for the node dropped: too many wait; more are dropped until they drain to half",
					"node", id, "max", fastQueue)
			}
		}
		return nil
	}
	o := store.Origin{Client: m.Origin, PacketID: m.PacketID, Dup: m.Dup, Topic: m.Topic}
	_, stored, err := g.st.Enqueue(id, payload, o, g.cfg.Queue.limit())
	if errors.Is(err, store.ErrFull) {
		g.dropFull(g.node(id))
		return nil // acknowledged: the broker must not send it again
	}
	if errors.Is(err, store.ErrStoreFull) {
		g.dropStoreFull(id)
		return nil
	}
	if err != nil {
		return err
	}
	if !stored {
		g.log.Info("MQTT redelivery of a message already queued: ignored", "node", id, "packet_id", m.PacketID)
		return nil
	}
	g.node(id).kick()
	return nil
}
