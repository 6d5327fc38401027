package bus

import (
	"sync"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// retainSync keeps the gateway's retained publishes apart from the scans
// of retained messages that a subscription makes. mochi's TopicsIndex
// writes a topic's retain path under that topic's lock, but scans it for
// a new subscription without (mochi-mqtt/server#200): a retained publish
// racing a wildcard subscription is a data race. The gateway publishes
// retained messages often (states, last messages, discovery configs), so
// a subscription holds mu for reading from OnSubscribe until its packet
// is processed (retained messages sent), and the gateway's retained
// publishes hold it for writing. Neither waits for a client's socket
// (each client's writes go to its own buffer: conn.go), so neither
// holds it long.
type retainSync struct {
	mqtt.HookBase
	mu   sync.RWMutex
	held sync.Map // *mqtt.Client → struct{}: it holds mu.RLock for its SUBSCRIBE
}

func (h *retainSync) ID() string { return "tether-retain-sync" }

func (h *retainSync) Provides(b byte) bool {
	return b == mqtt.OnSubscribe || b == mqtt.OnPacketProcessed
}

// OnSubscribe runs first in mochi's processSubscribe, on the client's
// goroutine; OnPacketProcessed runs once it has returned.
func (h *retainSync) OnSubscribe(cl *mqtt.Client, pk packets.Packet) packets.Packet {
	h.mu.RLock()
	h.held.Store(cl, struct{}{})
	return pk
}

func (h *retainSync) OnPacketProcessed(cl *mqtt.Client, pk packets.Packet, _ error) {
	if pk.FixedHeader.Type != packets.Subscribe {
		return
	}
	if _, ok := h.held.LoadAndDelete(cl); ok {
		h.mu.RUnlock()
	}
}
