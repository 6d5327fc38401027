// Package bus connects the gateway to MQTT: an embedded mochi-mqtt broker
// (NewEmbedded) or an external broker through the Eclipse Paho client
// (Dial). Both give the same two guarantees that the gateway's delivery
// rests on:
//
//   - Publish returns nil only once the broker has accepted the message
//     (QoS 1: PUBACK from an external broker; the embedded broker has
//     handed it to its subscribers' sessions);
//   - the Handler sees each message published on a subscribed topic
//     before the broker is told it was received: an external broker gets
//     the PUBACK only after the Handler returned nil, and the embedded
//     broker runs the Handler before it acknowledges the publisher.
package bus

import (
	"context"
	"errors"
	"strings"
	"time"
)

// ErrNotConnected is returned (wrapped) by TryPublish when the connection
// to the broker is down: nothing was handed to it.
var ErrNotConnected = errors.New("bus: broker not connected")

// ErrUnconfirmed is returned (wrapped) by a publish to an external broker
// when the connection was lost while it waited for the PUBACK: the
// client sent the message again on the next connection (its session),
// but the broker's acceptance is not known. The broker may have it, or
// get it later, or not (if the gateway dies first): publish it again to
// be sure, at the cost of a possible duplicate.
var ErrUnconfirmed = errors.New("bus: connection lost before the broker's PUBACK")

// Message is a message published on a subscribed topic.
type Message struct {
	Topic   string
	Payload []byte
	// Origin names the publisher's session as far as the gateway can
	// tell ("" when it cannot), PacketID its MQTT packet id and Dup the
	// MQTT DUP flag: together they spot a redelivery (see store.Origin).
	Origin   string
	PacketID uint16
	Dup      bool
}

// Handler takes a message on a subscribed topic. Returning nil
// acknowledges it to the broker; an error leaves it unacknowledged, so
// that the broker delivers it again (on the next connection). Handlers
// are called one at a time per broker connection, in order: they must
// return quickly (store the message, do not wait for a node).
type Handler func(Message) error

// Bus is a connection to a broker.
type Bus interface {
	// Publish publishes with QoS 1 and returns once the broker has
	// accepted the message, or ctx ends.
	Publish(ctx context.Context, topic string, payload []byte, retain bool) error
	// TryPublish is Publish (not retained) that does not wait for the
	// connection: while it is down it returns ErrNotConnected at once,
	// having handed nothing to the broker. When ctx ends before the
	// broker's acceptance, the message may still reach the broker (an
	// external broker's client sends it again on the next connection).
	TryPublish(ctx context.Context, topic string, payload []byte) error
	// Subscribe adds topic filters (QoS 1); their messages go to the
	// Handler. It returns once the broker has confirmed them or, while
	// the connection is down, at once: every connection subscribes to
	// all the filters added so far.
	Subscribe(ctx context.Context, filters ...string) error
	// Status says whether the broker is connected, since when, and why
	// not. It reads memory only.
	Status() Status
	// Reconnects reports whether the connection can be lost and made
	// again (an external broker, which may have lost its retained
	// messages meanwhile); the embedded broker's never is.
	Reconnects() bool
	// Close disconnects and waits for the bus's goroutines.
	Close() error
}

// Status is the state of a bus's connection to its broker.
type Status struct {
	Connected bool
	// Since is when the connection came up or went down (or when the
	// bus was made, if it never connected).
	Since time.Time
	// Err, while not connected, is why: the last failed connection
	// attempt's error, or the lost connection's.
	Err error
}

// Match reports whether topic matches the MQTT filter (with + and #).
func Match(filter, topic string) bool {
	if strings.HasPrefix(topic, "$") && !strings.HasPrefix(filter, "$") {
		return false
	}
	f := strings.Split(filter, "/")
	t := strings.Split(topic, "/")
	for i, p := range f {
		if p == "#" {
			return true
		}
		if i >= len(t) {
			return false
		}
		if p != "+" && p != t[i] {
			return false
		}
	}
	return len(f) == len(t)
}
