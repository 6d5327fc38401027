package bus

import (
	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// guardHook keeps the embedded broker's clients within their bounds.
type guardHook struct {
	mqtt.HookBase
	e *Embedded
}

func (h *guardHook) ID() string { return "tether-guard" }

func (h *guardHook) Provides(b byte) bool {
	return b == mqtt.OnSessionEstablished
}

// OnSessionEstablished names the connection's client, for the logs.
func (h *guardHook) OnSessionEstablished(cl *mqtt.Client, _ packets.Packet) {
	if c, ok := cl.Net.Conn.(*clientConn); ok {
		c.setWho(cl.ID, string(cl.Properties.Username))
	}
}
