package bus

import (
	"bytes"
	"errors"
	"sync"
	"sync/atomic"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// guardHook keeps the embedded broker's clients within their bounds: the
// number of subscriptions of a client and of all, the retained messages
// of clients (count and bytes); it names each connection's client for
// the logs, and counts and logs the clients disconnected for an
// oversized packet.
type guardHook struct {
	mqtt.HookBase
	e           *Embedded
	gatewayOnly func(string) bool

	mu       sync.Mutex
	retained map[string]int // clients' retained messages: topic -> payload bytes
	bytes    int

	tooLarge, retainRefused, subsRefused atomic.Uint64
	tooLargeLog, retainLog, subsLog      rateLog
}

func newGuard(e *Embedded, gatewayOnly func(string) bool) *guardHook {
	if gatewayOnly == nil {
		gatewayOnly = func(string) bool { return false }
	}
	return &guardHook{e: e, gatewayOnly: gatewayOnly, retained: make(map[string]int)}
}

func (h *guardHook) ID() string { return "tether-guard" }

func (h *guardHook) Provides(b byte) bool {
	return bytes.Contains([]byte{
		mqtt.OnSessionEstablished,
		mqtt.OnSubscribe,
		mqtt.OnPublish,
		mqtt.OnRetainMessage,
		mqtt.OnDisconnect,
	}, []byte{b})
}

// restored counts the retained messages read from the broker's file as
// clients' (but the gateway's own topics), once the broker has started.
func (h *guardHook) restored() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for topic, pk := range h.e.srv.Topics.Retained.GetAll() {
		if !h.gatewayOnly(topic) {
			h.retained[topic] = len(pk.Payload)
			h.bytes += len(pk.Payload)
		}
	}
}

// OnSessionEstablished names the connection's client, for the logs.
func (h *guardHook) OnSessionEstablished(cl *mqtt.Client, _ packets.Packet) {
	if c, ok := cl.Net.Conn.(*clientConn); ok {
		c.setWho(cl.ID, string(cl.Properties.Username))
	}
}

// OnDisconnect counts and logs a client that sent a packet over the
// maximum packet size (mochi disconnects it before reading the packet).
func (h *guardHook) OnDisconnect(cl *mqtt.Client, err error, _ bool) {
	if !errors.Is(err, packets.ErrPacketTooLarge) {
		return
	}
	h.tooLarge.Add(1)
	if n, ok := h.tooLargeLog.allow(); ok {
		h.e.log.Warn("embedded MQTT broker: client disconnected: it sent a packet larger than mqtt.embedded.max_packet",
			"client", cl.ID, "user", string(cl.Properties.Username), "remote", cl.Net.Remote,
			"max_packet", h.e.srv.Options.Capabilities.MaximumPacketSize, "not_logged_since", n)
	}
}

// OnSubscribe refuses the filters past a client's or the broker's bound
// (each gets a failure return code in the SUBACK).
func (h *guardHook) OnSubscribe(cl *mqtt.Client, pk packets.Packet) packets.Packet {
	if cl.Net.Inline {
		return pk
	}
	have := cl.State.Subscriptions.Len()
	total := atomic.LoadInt64(&h.e.srv.Info.Subscriptions)
	refused := 0
	for i, sub := range pk.Filters {
		if _, ok := cl.State.Subscriptions.Get(sub.Filter); ok {
			continue // a replacement
		}
		if have >= MaxSubscriptions || total >= MaxTotalSubs {
			pk.Filters[i].Filter = "" // not a valid filter: refused
			refused++
			continue
		}
		have++
		total++
	}
	if refused > 0 {
		h.subsRefused.Add(uint64(refused))
		if n, ok := h.subsLog.allow(); ok {
			h.e.log.Warn("embedded MQTT broker: subscriptions refused: too many",
				"client", cl.ID, "user", string(cl.Properties.Username), "refused", refused,
				"max_per_client", MaxSubscriptions, "max_total", MaxTotalSubs, "not_logged_since", n)
		}
	}
	return pk
}

// OnPublish keeps a client's message from being retained past the bound
// of the clients' retained messages: it is delivered, not retained.
func (h *guardHook) OnPublish(cl *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	if cl.Net.Inline || !pk.FixedHeader.Retain || len(pk.Payload) == 0 {
		return pk, nil
	}
	h.mu.Lock()
	old, had := h.retained[pk.TopicName]
	full := (!had && len(h.retained) >= MaxRetained) || h.bytes-old+len(pk.Payload) > MaxRetainedBytes
	h.mu.Unlock()
	if !full {
		return pk, nil
	}
	pk.FixedHeader.Retain = false
	h.retainRefused.Add(1)
	if n, ok := h.retainLog.allow(); ok {
		h.e.log.Warn("embedded MQTT broker: message not retained: the clients' retained messages are at their bound",
			"client", cl.ID, "user", string(cl.Properties.Username), "topic", pk.TopicName,
			"max_messages", MaxRetained, "max_bytes", MaxRetainedBytes, "not_logged_since", n)
	}
	return pk, nil
}

// OnRetainMessage keeps the clients' retained messages' account.
func (h *guardHook) OnRetainMessage(cl *mqtt.Client, pk packets.Packet, _ int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	old, had := h.retained[pk.TopicName]
	if had {
		h.bytes -= old
		delete(h.retained, pk.TopicName)
	}
	if !cl.Net.Inline && len(pk.Payload) > 0 {
		h.retained[pk.TopicName] = len(pk.Payload)
		h.bytes += len(pk.Payload)
	}
}
