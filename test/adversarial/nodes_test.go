package adversarial

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// Attacks on the node port: bad lines, silent sockets, churn, malformed
// ACKs, a node that never reads.

// attackerIDs are the few IDs the attacks on the node port use: a flood
// of new IDs is an attack of its own (flood_test.go).
func attackerID(i int) string { return fmt.Sprintf("mallory%d", i%4) }

// TestBadLines: attackers with valid IDs send every kind of bad line
// (too long, not UTF-8, not hex, binary, an unterminated megabyte), each
// on its own connection, four at a time.
func TestBadLines(t *testing.T) {
	h := start(t, options{})
	bad := [][]byte{
		append(bytes.Repeat([]byte("L"), 10_000), '\n'),
		[]byte("01\xff\xfe\xfd\n"),
		[]byte("zz not hex\n"),
		[]byte("\x00\x01\x02\x03\n"),
		[]byte("g1payload\n"),
		[]byte("0\n"),
		[]byte("\r\r\r\n"),
		bytes.Repeat([]byte{0xff}, 1<<20), // no LF at all
	}
	var e errs
	h.attack(func(ctx context.Context) {
		parallel(4, func(i int) {
			for round := range 5 {
				c, err := dialFrom(ctx, source(i), h.nodeAddr)
				if err != nil {
					e.add(err)
					return
				}
				c.Write([]byte(attackerID(i) + "\n"))
				for _, b := range bad {
					if _, err := c.Write(b); err != nil {
						break // closed by the server: fine
					}
				}
				_ = round
				c.Close()
			}
		})
	})
	e.check(t)
	st := h.g.Server().Stats()
	t.Logf("server stats: %+v", st)
}

// TestSilentSockets: hundreds of connections that never send their ID,
// and a few that send it and then nothing; the server closes each within
// its handshake timeout (T) or link timeout (T).
func TestSilentSockets(t *testing.T) {
	h := start(t, options{})
	var e errs
	h.attack(func(ctx context.Context) {
		var cs conns
		defer cs.closeAll()
		parallel(8, func(i int) {
			for range 40 {
				c, err := dialFrom(ctx, source(i), h.nodeAddr)
				if err != nil {
					e.add(err)
					return
				}
				cs.add(c)
			}
		})
		for i := range 4 {
			c, err := dialFrom(ctx, source(i), h.nodeAddr)
			if err != nil {
				e.add(err)
				continue
			}
			c.Write([]byte(attackerID(i) + "\n"))
			cs.add(c)
		}
		cs.mu.Lock()
		all := append([]net.Conn(nil), cs.cs...)
		cs.mu.Unlock()
		parallel(len(all), func(i int) { e.add(waitClosedByPeer(all[i], 10*T)) })
	})
	e.check(t)
	st := h.g.Server().Stats()
	t.Logf("server stats: %+v", st)
	if st.HandshakeTimeout == 0 {
		t.Error("no handshake timeout counted")
	}
}

// TestChurn: connections that give an ID, perhaps half a line, and close
// at once, hundreds of times on a few IDs.
func TestChurn(t *testing.T) {
	h := start(t, options{})
	var e errs
	h.attack(func(ctx context.Context) {
		parallel(4, func(i int) {
			for round := range 60 {
				c, err := dialFrom(ctx, source(i), h.nodeAddr)
				if err != nil {
					e.add(err)
					return
				}
				switch round % 3 {
				case 0:
					c.Write([]byte(attackerID(i) + "\n"))
				case 1:
					c.Write([]byte(attackerID(i) + "\n00half a li"))
				case 2:
					c.Write([]byte(attackerID(i)[:3]))
				}
				c.Close()
			}
		})
	})
	e.check(t)
	t.Logf("server stats: %+v", h.g.Server().Stats())
}

// TestMalformedACKs: a node with messages pending ACKs ids never sent,
// sends ACK-like lines that are not ACKs, and floods ACKs; the gateway
// keeps repeating its messages to it and serves the honest node.
func TestMalformedACKs(t *testing.T) {
	h := start(t, options{})
	const id = "acker"
	pub := h.attackerMQTT(t)
	var e errs
	h.attack(func(ctx context.Context) {
		for i := range 5 {
			if err := waitToken(ctx, pub.Publish(h.g.Topics().Down(id), 1, false, fmt.Sprintf("m%d", i))); err != nil {
				e.add(err)
			}
		}
		c, err := dialFrom(ctx, source(1), h.nodeAddr)
		if err != nil {
			e.add(err)
			return
		}
		defer c.Close()
		var b strings.Builder
		b.WriteString(id + "\n")
		for _, l := range []string{"ff", "7f", "00", "0", "0g", " 1", "1 ", "-1", "0x", "FF", "fF"} {
			b.WriteString(l + "\n")
		}
		for range 20_000 {
			b.WriteString("7e\n")
		}
		if _, err := c.Write([]byte(b.String())); err != nil {
			e.add(err)
		}
		// Stay a few T, reading what the gateway repeats, then leave.
		c.SetReadDeadline(time.Now().Add(3 * T))
		buf := make([]byte, 4096)
		for {
			if _, err := c.Read(buf); err != nil {
				break
			}
		}
	})
	e.check(t)
}

// TestNodeNeverReads: a node that connects and never reads while
// hundreds of kilobytes are published for it: its writes block, the
// gateway's writer of that node waits, and no other node notices.
func TestNodeNeverReads(t *testing.T) {
	h := start(t, options{})
	const id = "sink"
	pub := h.attackerMQTT(t)
	var e errs
	h.attack(func(ctx context.Context) {
		c, err := dialFrom(ctx, source(2), h.nodeAddr)
		if err != nil {
			e.add(err)
			return
		}
		defer c.Close()
		c.Write([]byte(id + "\n00hello\n"))
		payload := strings.Repeat("x", 3000)
		for i := range 300 {
			tok := pub.Publish(h.g.Topics().Down(id), 1, false, fmt.Sprintf("%d %s", i, payload))
			if err := waitToken(ctx, tok); err != nil {
				e.add(err)
				return
			}
		}
		// Keep not reading for a few T.
		t := time.NewTimer(3 * T)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
		}
	})
	e.check(t)
}

// attackerMQTT connects an MQTT client that the attack uses to publish.
func (h *harness) attackerMQTT(t *testing.T) paho.Client {
	t.Helper()
	o := paho.NewClientOptions().AddBroker("tcp://" + h.mqttAddr).
		SetClientID(fmt.Sprintf("attacker-%d", time.Now().UnixNano())).
		SetAutoReconnect(false).SetCleanSession(true)
	c := paho.NewClient(o)
	if err := waitToken(h.ctx, c.Connect()); err != nil {
		t.Fatalf("attacker MQTT client: %v", err)
	}
	t.Cleanup(func() { c.Disconnect(50) })
	return c
}
