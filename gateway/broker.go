package gateway

import (
	"github.com/tether-iot/tether/gateway/bus"
	"github.com/tether-iot/tether/gateway/store"
)

// fromBroker takes a message published on a node's down topic: a qos
// message is stored in the node's queue before it is acknowledged to
// the broker; a qos-off message is handed to the node's writer, or
// dropped if too many wait.
func (g *Gateway) fromBroker(m bus.Message) error {
	id, qos, ok := g.topics.parseDown(m.Topic)
	if !ok || !g.Owns(id) {
		return nil
	}
	payload := string(m.Payload)
	if err := g.checkSend(id, payload); err != nil {
		g.log.Warn("MQTT message for a node dropped", "topic", m.Topic, "err", err)
		return nil
	}
	if !qos {
		select {
		case g.node(id).fast <- payload:
		default:
			g.log.Warn("qos-off message dropped: too many wait for the node", "node", id, "max", fastQueue)
		}
		return nil
	}
	_, stored, err := g.st.Enqueue(id, payload, store.Origin{Client: m.Origin, PacketID: m.PacketID, Dup: m.Dup, Topic: m.Topic})
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
