package adversarial

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tether-iot/tether/gateway"
)

// Attacks on the embedded MQTT broker: a subscriber that stops reading,
// oversized packets, unauthorized writes.

// stall connects a client that subscribes to # with QoS 1 and then reads
// nothing, and a flooder that publishes size-byte messages until count
// are sent or its socket stops taking them (for at most 10 s): more than
// the stalled client's socket and any bounded buffer of the broker hold.
// It returns both (the caller closes them) and how many were published.
func stall(t *testing.T, ctx context.Context, addr string, count, size int) (stalled, flooder *rawMQTT, sent int) {
	t.Helper()
	stalled, rc := dialRaw(t, ctx, addr, rawOptions{ID: "stalled", RecvBuf: 4096, Clean: true})
	if rc != 0 {
		t.Fatalf("stalled client: CONNACK %d", rc)
	}
	if code := stalled.subscribe(t, "#", 1); code != 1 {
		t.Fatalf("stalled client: SUBACK %d, want QoS 1", code)
	}
	flooder, rc = dialRaw(t, ctx, addr, rawOptions{ID: "flooder", Clean: true})
	if rc != 0 {
		t.Fatalf("flooder: CONNACK %d", rc)
	}
	flooder.c.SetWriteDeadline(time.Now().Add(10 * time.Second))
	payload := []byte(strings.Repeat("x", size))
	for ; sent < count; sent++ {
		if err := flooder.publishErr("junk/"+strconv.Itoa(sent%10), payload, false, 0); err != nil {
			t.Logf("flooder: the broker stopped reading after %d messages: %v", sent, err)
			break
		}
	}
	return stalled, flooder, sent
}

// metricValue scrapes the gateway's /metrics for an unlabelled series.
func (h *harness) metricValue(t *testing.T, name string) float64 {
	t.Helper()
	req, _ := http.NewRequestWithContext(h.ctx, "GET", h.webURL+"/metrics", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("scrape: %v", err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("%s: %v", sc.Text(), err)
			}
			return f
		}
	}
	t.Fatalf("no series %s on /metrics", name)
	return 0
}

// TestStalledSubscriber (issue 10.1): an MQTT client subscribes to # with
// QoS 1 and stops reading while another floods 6 MB through the broker
// (120 messages of 50 kB: more than the stalled socket takes; few
// packets, so that the flood costs little CPU). The honest node's messages keep flowing both ways; the stalled
// client is disconnected by the broker, and counted.
func TestStalledSubscriber(t *testing.T) {
	h := start(t, options{})
	var notClosed error
	h.attack(func(ctx context.Context) {
		stalled, flooder, sent := stall(t, ctx, h.mqttAddr, 120, 50_000)
		defer stalled.c.Close()
		defer flooder.c.Close()
		if sent < 120 {
			t.Errorf("the broker took %d of 120 messages from the flooder: it waits on the stalled client", sent)
		}
		// Honest traffic goes on for longer than the pause allowed,
		// with the stalled client still connected, or disconnected by
		// the broker (reading it, below, would end the stall).
		hold(ctx, 8*T)
		notClosed = waitClosedByPeer(stalled.c, 10*time.Second)
	})
	if notClosed != nil {
		t.Errorf("the stalled client was not disconnected: %v", notClosed)
	}
	if v := h.metricValue(t, "tether_mqtt_slow_clients_total"); v < 1 {
		t.Errorf("tether_mqtt_slow_clients_total = %v, want the stalled client counted", v)
	}
	if !strings.Contains(h.logs.text(), "client disconnected: it does not read") {
		t.Errorf("the stalled client's disconnection was not logged:\n%s", h.logs.tail())
	}
}

// TestStalledSubscriberShutdown (issue 10.1): with a stalled subscriber
// connected, Shutdown ends within its grace period.
func TestStalledSubscriberShutdown(t *testing.T) {
	h := start(t, options{})
	if err := h.up.waitFor(h.ctx, 4); err != nil {
		t.Fatal(err)
	}
	h.stopHonest()
	// 120 messages of 50 kB fill the stalled client's socket; the
	// flooder stops at the first write the broker does not take.
	stalled, flooder, _ := stall(t, h.ctx, h.mqttAddr, 120, 50_000)
	defer stalled.c.Close()
	defer flooder.c.Close()
	grace, cancel := context.WithTimeout(h.ctx, time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- h.g.Shutdown(grace) }()
	// A hang guard, well past the grace period: the shutdown of a
	// gateway with nothing queued takes milliseconds.
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	case <-time.After(10 * time.Second):
		stalled.c.Close() // lets the hung Shutdown end
		<-done
		t.Fatal("Shutdown still running 10 s after its 1 s grace period, with a stalled MQTT subscriber connected")
	}
}

func (m *rawMQTT) publishErr(topic string, payload []byte, retain bool, id uint16) error {
	typ := byte(0x30)
	if retain {
		typ |= 1
	}
	body := appendString(nil, topic)
	if id != 0 {
		typ |= 0x02
		body = append(body, byte(id>>8), byte(id))
	}
	pk := appendLength([]byte{typ}, len(body)+len(payload))
	pk = append(append(pk, body...), payload...)
	_, err := m.c.Write(pk)
	return err
}

// TestOversizedPackets (issue 10.3): three clients each announce a
// 64 MiB PUBLISH and send it. The broker refuses each at its header,
// before reading or allocating it: the clients are disconnected (their
// writes fail), the process allocates far less than the packets, the
// refusals are counted and logged, and the honest traffic goes on.
func TestOversizedPackets(t *testing.T) {
	h := start(t, options{})
	const size = 64 << 20
	var before, after runtime.MemStats
	var accepted []int
	h.attack(func(ctx context.Context) {
		runtime.ReadMemStats(&before)
		chunk := make([]byte, 1<<20)
		for i := range 3 {
			m, rc := dialRaw(t, ctx, h.mqttAddr, rawOptions{ID: fmt.Sprintf("big%d", i), Clean: true})
			if rc != 0 {
				t.Fatalf("CONNACK %d", rc)
			}
			m.c.SetWriteDeadline(time.Now().Add(20 * time.Second))
			topic := appendString(nil, "junk/big")
			hdr := appendLength([]byte{0x30}, len(topic)+size)
			sent := 0
			if _, err := m.c.Write(append(hdr, topic...)); err == nil {
				for sent < size {
					n, err := m.c.Write(chunk[:min(len(chunk), size-sent)])
					sent += n
					if err != nil {
						break
					}
				}
			}
			if sent == size {
				accepted = append(accepted, i)
			}
			m.c.Close()
		}
		runtime.ReadMemStats(&after)
	})
	if len(accepted) > 0 {
		t.Errorf("the broker read the whole 64 MiB packet of clients %v", accepted)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 32<<20 {
		t.Errorf("%.0f MiB allocated during the attack (3 packets of 64 MiB)", float64(alloc)/(1<<20))
	}
	if v := h.metricValue(t, "tether_mqtt_packets_too_large_total"); v != 3 {
		t.Errorf("tether_mqtt_packets_too_large_total = %v, want 3", v)
	}
	if !strings.Contains(h.logs.text(), "it sent a packet larger than mqtt.embedded.max_packet") {
		t.Errorf("the refusals were not logged:\n%s", h.logs.tail())
	}
}

// passwordFile writes a password file with user:password pairs.
func passwordFile(t *testing.T, pairs ...string) string {
	t.Helper()
	var text []byte
	for i := 0; i < len(pairs); i += 2 {
		var err error
		if text, err = gateway.SetMQTTPassword(text, pairs[i], pairs[i+1]); err != nil {
			t.Fatal(err)
		}
	}
	file := filepath.Join(t.TempDir(), "passwd")
	if err := os.WriteFile(file, text, 0o600); err != nil {
		t.Fatal(err)
	}
	return file
}

// retainedOn subscribes a fresh client to topic and returns its retained
// message, or "" if none comes within 5 s (a hang guard: the broker
// sends it right after the SUBACK).
func retainedOn(t *testing.T, ctx context.Context, addr, topic string) string {
	t.Helper()
	m, _ := dialRaw(t, ctx, addr, rawOptions{ID: "check", Clean: true})
	defer m.c.Close()
	m.subscribe(t, topic, 0)
	m.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, payload, _, err := m.readPublish(t)
	if err != nil {
		return ""
	}
	return string(payload)
}

// TestGatewayTopicsNotWritable (issue 9): a client (here anonymous, on
// the loopback listener) publishes, retained, QoS 0 and QoS 1, on the
// honest node's state and up topics and on the gateway's own state. None
// is taken: the retained states stay the gateway's, the honest
// subscriber sees no forged message (the harness checks its stream), and
// the refusals are counted.
func TestGatewayTopicsNotWritable(t *testing.T) {
	h := start(t, options{})
	topics := h.g.Topics()
	state, gw := topics.State(honestID), topics.Gateway("adversarial")
	h.attack(func(ctx context.Context) {
		m, _ := dialRaw(t, ctx, h.mqttAddr, rawOptions{ID: "forger", Clean: true})
		defer m.c.Close()
		m.publish(t, state, []byte("down"), true, 0)
		m.publish(t, gw, []byte("offline"), true, 0)
		m.publish(t, topics.Up(honestID), []byte("u999999"), false, 0)
		m.publish(t, state, []byte("down"), true, 7) // QoS 1: refused, disconnected
	})
	if got := retainedOn(t, h.ctx, h.mqttAddr, state); got != "up" {
		t.Errorf("retained %s = %q after the forgeries, want the gateway's up", state, got)
	}
	if got := retainedOn(t, h.ctx, h.mqttAddr, gw); got != "online" {
		t.Errorf("retained %s = %q after the forgeries, want the gateway's online", gw, got)
	}
	if v := h.metricValue(t, "tether_mqtt_refused_writes_total"); v < 4 {
		t.Errorf("tether_mqtt_refused_writes_total = %v, want the 4 forgeries", v)
	}
}

// TestReadWithoutRights (issue 9): a user whose ACL lets it read only
// another node's topics subscribes to #, to tether/# and to the honest
// node's up topic: each is refused in the SUBACK, and it gets none of
// the honest messages; its allowed filter is granted.
func TestReadWithoutRights(t *testing.T) {
	file := passwordFile(t, "limited", "pw1")
	h := start(t, options{configure: func(c *gateway.Config) {
		c.MQTT.Embedded.PasswordFile = file
		c.MQTT.Embedded.ACL = map[string]gateway.ACL{"limited": {Read: []string{"tether/other/#"}}}
	}})
	var codes []byte
	var leaked []string
	h.attack(func(ctx context.Context) {
		m, rc := dialRaw(t, ctx, h.mqttAddr, rawOptions{ID: "limited", User: "limited", Password: "pw1", Clean: true})
		if rc != 0 {
			t.Fatalf("limited: CONNACK %d", rc)
		}
		defer m.c.Close()
		for _, f := range []string{"#", "tether/#", h.g.Topics().Up(honestID), "tether/other/up"} {
			codes = append(codes, m.subscribe(t, f, 1))
		}
		// Honest traffic flows meanwhile: none of it may come here.
		hold(ctx, 4*T)
		m.c.SetReadDeadline(time.Now().Add(T))
		for {
			topic, _, _, err := m.readPublish(t)
			if err != nil {
				break
			}
			leaked = append(leaked, topic)
		}
	})
	if want := []byte{0x80, 0x80, 0x80, 1}; string(codes) != string(want) {
		t.Errorf("SUBACK codes %v, want %v (refused, refused, refused, granted)", codes, want)
	}
	if len(leaked) > 0 {
		t.Errorf("the limited user received %d messages, on %v", len(leaked), leaked[:min(5, len(leaked))])
	}
}
