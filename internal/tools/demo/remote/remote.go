// Package remote is the remote control demo of micropython-iot
// (iot/remote): node "tx" sends the state of its switch, the server
// forwards it to node "rx", which lights its LED. Both hops use qos off
// for low latency: a change made during an outage is not queued; once the
// link is back, the state at that time is sent.
package remote

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"

	"github.com/tether-iot/tether/client"
	"github.com/tether-iot/tether/internal/tools/demo"
	"github.com/tether-iot/tether/link"
	"github.com/tether-iot/tether/server"
)

// The demo's node IDs.
const (
	TX = "tx"
	RX = "rx"
)

// Switch is the state of the tx node's switch.
type Switch struct {
	mu      sync.Mutex
	on      bool
	changed chan struct{} // buffered 1: a change to send
}

// NewSwitch returns a switch that is off.
func NewSwitch() *Switch { return &Switch{changed: make(chan struct{}, 1)} }

// Set sets the switch.
func (s *Switch) Set(on bool) {
	s.mu.Lock()
	s.on = on
	s.mu.Unlock()
	select {
	case s.changed <- struct{}{}:
	default:
	}
}

// Toggle flips the switch and returns its new state.
func (s *Switch) Toggle() bool {
	s.mu.Lock()
	on := !s.on
	s.mu.Unlock()
	s.Set(on)
	return on
}

func (s *Switch) get() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.on
}

func state(on bool) string {
	if on {
		return "on"
	}
	return "off"
}

// TXNode runs node tx on c until ctx is done: whenever sw changes, it
// sends the switch's state as [0] or [1], with qos off.
func TXNode(ctx context.Context, c *client.Client, sw *Switch, out *demo.Printer) error {
	for {
		select {
		case <-sw.changed:
		case <-ctx.Done():
			return nil
		}
		on := sw.get()
		v := 0
		if on {
			v = 1
		}
		line := fmt.Sprintf("[%d]", v)
		if err := c.Write(ctx, line, link.QoS(false)); err != nil {
			if ctx.Err() != nil || errors.Is(err, link.ErrClosed) {
				return nil // the demo is ending, as RXNode and mainapp see it
			}
			return err
		}
		out.Say("node tx", "switch %s: sent %s", state(on), line)
	}
}

// RXNode runs node rx on c until ctx is done: each state received sets the
// LED, and led (if not nil) is called with it.
func RXNode(ctx context.Context, c *client.Client, out *demo.Printer, led func(on bool)) error {
	for {
		line, err := c.ReadLine(ctx)
		if err != nil {
			return nil
		}
		var v []int
		if err := json.Unmarshal([]byte(line), &v); err != nil || len(v) != 1 {
			out.Say("node rx", "got a line that is not [0] or [1]: %q", line)
			continue
		}
		on := v[0] != 0
		out.Say("node rx", "got %s: LED %s", line, state(on))
		if led != nil {
			led(on)
		}
	}
}

// Server runs the server side on srv until ctx is done: once both nodes
// have connected, every state from tx is forwarded to rx with qos off.
func Server(ctx context.Context, srv *server.Server, out *demo.Printer) error {
	out.Say("server", "awaiting nodes tx and rx")
	if err := srv.Wait(ctx, TX, RX); err != nil {
		return nil
	}
	out.Say("server", "all peers are connected")
	tx, err := srv.Lookup(TX)
	if err != nil {
		return err
	}
	rx, err := srv.Lookup(RX)
	if err != nil {
		return err
	}
	for {
		line, err := tx.ReadLine(ctx)
		if err != nil {
			return nil
		}
		out.Say("server", "got %s from tx, forwarding it to rx", line)
		if err := rx.Write(ctx, line, link.QoS(false)); err != nil {
			return nil
		}
	}
}
