package gateway_test

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/tether-iot/tether/gateway"
)

// TestEmbeddedBridge: with no broker configured the gateway runs its
// own; a node whose ID has MQTT wildcards and separators is escaped,
// its messages are published, messages to it are written (qos and qos
// off), its state is retained and Home Assistant discovers it.
func TestEmbeddedBridge(t *testing.T) {
	ctx := testCtx(t)
	cfg := gwConfig(t, "")
	cfg.Discovery.Enabled = true
	on := true
	cfg.Web = gateway.WebConfig{Addr: "127.0.0.1:0", Enabled: &on}
	g := startGateway(t, cfg)
	app := dialMQTT(t, ctx, mqttURL(g), "tether/#", "homeassistant/#")

	const id = "a/b+#$%"
	esc := gateway.EscapeID(id)
	if esc != "a%2Fb%2B%23%24%25" {
		t.Fatalf("EscapeID(%q) = %q", id, esc)
	}
	n := dialNode(t, ctx, g.Addr().String(), id)

	conf := app.next(t, ctx, "homeassistant/binary_sensor/tether_a_2fb_2b_23_24_25/connectivity/config")
	for _, want := range []string{`"device_class":"connectivity"`, `"state_topic":"tether/` + esc + `/state"`, `"availability":[{"payload_available":"online","payload_not_available":"offline","topic":"tether/$gateway/test/state"}]`} {
		if !strings.Contains(conf, want) {
			t.Errorf("discovery config lacks %s: %s", want, conf)
		}
	}
	app.waitPayload(t, ctx, "tether/"+esc+"/state", "up")

	if err := n.Write(ctx, "hello"); err != nil {
		t.Fatal(err)
	}
	if got := app.next(t, ctx, "tether/"+esc+"/up"); got != "hello" {
		t.Fatalf("up: got %q", got)
	}
	app.publish(t, ctx, "tether/"+esc+"/down", "with qos")
	n.expect(t, ctx, "with qos")
	app.publish(t, ctx, "tether/"+esc+"/down/noqos", "without qos")
	n.expect(t, ctx, "without qos")
	if err := g.Send(ctx, id, "from the API"); err != nil {
		t.Fatal(err)
	}
	n.expect(t, ctx, "from the API")

	// The status page (package web) is wired in: it lists the node.
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+g.WebAddr().String()+"/api/status", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"a/b+#$%"`) {
		t.Errorf("status page: %d %s", resp.StatusCode, body)
	}
	http.DefaultClient.CloseIdleConnections()

	n.Close()
	app.waitPayload(t, ctx, "tether/"+esc+"/state", "down")
}

// TestRestartMidStream runs traffic both ways through a real mosquitto
// and kills the gateway (Close: no drain, no goodbye) in the middle,
// then starts it again on the same store: every message arrives exactly
// once and in order in both directions, and the node never sees the
// gateway restart its sequence. The node takes at most two unread
// messages (RecvQueue), so that the gateway has a message assigned and
// unacknowledged when it dies, and the two streams go in lockstep.
//
// One exception, documented (GATEWAY.md, "Duplicates, direct path"): a
// publish that the broker acknowledges later than 4T fails, the message
// is spooled and published again, and arrives twice in a row. A loaded
// machine makes mosquitto that slow (seen: "got up 13, want up 14"): a
// message may arrive twice in a row only if a gateway logged a failed
// publish of a node's message.
func TestRestartMidStream(t *testing.T) {
	ctx := testCtx(t)
	url := startMosquitto(t)
	cfg := gwConfig(t, url)
	rec := newLogRecorder()
	cfg.Logger = rec.logger()
	g := startGateway(t, cfg)
	cfg.Listen = g.Addr().String() // the restarted gateway takes the same port

	app := dialMQTT(t, ctx, url, "tether/n/up")
	n := dialNodeQueue(t, ctx, g.Addr().String(), "n", 2)
	if err := n.WaitUp(ctx); err != nil {
		t.Fatal(err)
	}

	const count, crashAt = 40, 12
	pub := dialMQTT(t, ctx, url)
	for i := range count {
		pub.publish(t, ctx, "tether/n/down", fmt.Sprintf("down %d", i))
	}
	// Node to MQTT: message i once the node has read down message i.
	ticks := make(chan int, count)
	var wg sync.WaitGroup
	wg.Add(1)
	writeErr := make(chan error, 1)
	go func() {
		defer wg.Done()
		for i := range ticks {
			if err := n.Write(ctx, fmt.Sprintf("up %d", i)); err != nil {
				writeErr <- err
				return
			}
		}
	}()
	defer wg.Wait()
	defer close(ticks)
	for i := range count {
		n.expect(t, ctx, fmt.Sprintf("down %d", i))
		ticks <- i
		if i == crashAt {
			g.Close() // the crash
			g = startGateway(t, cfg)
		}
	}
	for i := 0; i < count; {
		got, want := app.next(t, ctx, "tether/n/up"), fmt.Sprintf("up %d", i)
		if i > 0 && got == fmt.Sprintf("up %d", i-1) {
			failed := rec.find("MQTT: publishes are failing")
			if len(failed) == 0 {
				t.Fatalf("MQTT: %q twice, and no publish failed", got)
			}
			t.Logf("MQTT: %q twice, after a failed publish (%v): the documented duplicate", got, failed[0].attrs)
			continue
		}
		if got != want {
			t.Fatalf("MQTT: got %q, want %q (a message lost or published twice)", got, want)
		}
		i++
	}
	select {
	case err := <-writeErr:
		t.Fatal(err)
	case ev := <-n.restarts:
		t.Fatalf("the node saw the gateway restart its sequence (sent 00 again): %+v", ev)
	default:
	}
	// No duplicate comes after the last message, either way.
	if err := g.Send(ctx, "n", "end"); err != nil {
		t.Fatal(err)
	}
	n.expect(t, ctx, "end")
	if err := n.Write(ctx, "end"); err != nil {
		t.Fatal(err)
	}
	got := app.next(t, ctx, "tether/n/up")
	if last := fmt.Sprintf("up %d", count-1); got == last && len(rec.find("MQTT: publishes are failing")) > 0 {
		t.Logf("MQTT: %q twice, after a failed publish: the documented duplicate", got)
		got = app.next(t, ctx, "tether/n/up")
	}
	if got != "end" {
		t.Fatalf("MQTT: got %q after the last message, want \"end\"", got)
	}
}

// TestTwoGateways: two gateways share one mosquitto, node tx on one and
// node rx on the other; the remote-control route of the seed's demo,
// written as config, delivers across them.
func TestTwoGateways(t *testing.T) {
	ctx := testCtx(t)
	url := startMosquitto(t)
	routes, err := gateway.ParseConfig("routes.yaml", []byte(`
routes:
  - {from: tx, to: rx, qos: false}
  - {from: tx, to: log}
`))
	if err != nil {
		t.Fatal(err)
	}
	ca := gwConfig(t, url)
	ca.Name, ca.Nodes.Expect, ca.Routes = "a", []string{"tx"}, routes.Routes
	cb := gwConfig(t, url)
	cb.Name, cb.Nodes.Expect = "b", []string{"rx", "log"}
	ga := startGateway(t, ca)
	gb := startGateway(t, cb)

	rx := dialNode(t, ctx, gb.Addr().String(), "rx")
	if err := rx.WaitUp(ctx); err != nil {
		t.Fatal(err)
	}
	tx := dialNode(t, ctx, ga.Addr().String(), "tx")
	if err := tx.Write(ctx, "button 1 pressed"); err != nil {
		t.Fatal(err)
	}
	rx.expect(t, ctx, "button 1 pressed")
	// The qos route waits durably on gateway b for node log.
	logNode := dialNode(t, ctx, gb.Addr().String(), "log")
	logNode.expect(t, ctx, "button 1 pressed")
}

// TestStoreLocked: a second gateway on the same data directory fails with
// the gateway's own sentinel, naming the directory.
func TestStoreLocked(t *testing.T) {
	cfg := gwConfig(t, gateway.BrokerNone)
	g, err := gateway.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	_, err = gateway.New(cfg)
	if !errors.Is(err, gateway.ErrStoreLocked) || !strings.Contains(err.Error(), cfg.Data) {
		t.Fatalf("second New on %s: got %v, want ErrStoreLocked naming the directory", cfg.Data, err)
	}
}
