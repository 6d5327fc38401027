package gateway_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tether-iot/tether/gateway"
	"go.uber.org/goleak"
)

// brokerHeader is the MQTT part of /api/status.
type brokerHeader struct {
	MQTT *struct {
		Name      string `json:"name"`
		Connected bool   `json:"connected"`
		Error     string `json:"error"`
	} `json:"mqtt"`
}

// TestBrokerLate: the gateway starts before its broker (after a power
// cut, say). Start succeeds with one warning; a node's message is
// acknowledged and spooled; the broker's state shows on /metrics and
// the status page. Mosquitto then starts on the configured port: the
// gateway connects in the background, subscribes as Start would have
// (a message on the node's down topic reaches it), publishes its
// retained online state and the node's state, and the spool drains to
// the up topic and to a route's topic: the route's message reaches its
// node on this gateway, so the subscriptions came before the spool's
// publishes (the new broker has no session of the gateway's).
func TestBrokerLate(t *testing.T) {
	ctx := testCtx(t)
	rec := newLogRecorder()
	addr := freePort(t) // nobody listens: connection refused
	url := "mqtt://" + addr
	cfg := gwConfig(t, url)
	cfg.Logger = rec.logger()
	on := true
	cfg.Web = gateway.WebConfig{Addr: "127.0.0.1:0", Enabled: &on}
	cfg.Routes = []gateway.Route{{From: "n", To: "m"}}
	g := startGateway(t, cfg)
	web := g.WebAddr().String()

	w := rec.find("MQTT broker not reachable yet; serving nodes and retrying")
	if len(w) != 1 || w[0].attrs["broker"] != url || !strings.Contains(w[0].attrs["err"], "refused") {
		t.Fatalf("warning at start: %v, want one line with the broker and the error", w)
	}
	if v := metric(t, scrape(t, ctx, web), "tether_mqtt_connected"); v != 0 {
		t.Errorf("tether_mqtt_connected = %v before the broker runs, want 0", v)
	}
	var hd brokerHeader
	getJSON(t, "http://"+web+"/api/status", &hd)
	if hd.MQTT == nil || hd.MQTT.Connected || hd.MQTT.Name != url || !strings.Contains(hd.MQTT.Error, "refused") {
		t.Errorf("/api/status mqtt = %+v, want %s not connected, with the error", hd.MQTT, url)
	}

	n := dialNode(t, ctx, g.Addr().String(), "n")
	routed := dialNode(t, ctx, g.Addr().String(), "m")
	if err := n.Write(ctx, "early"); err != nil {
		t.Fatalf("node's message not acknowledged while the broker was never reached: %v", err)
	}
	if s := g.Spool("n"); s.Messages != 1 {
		t.Fatalf("spool of n = %+v, want the message", s)
	}

	// The application's persistent session must exist before the
	// gateway can connect: it is made on a mosquitto on another port,
	// which saves it for the one started on the gateway's port.
	mqdir := t.TempDir()
	other := freePort(t)
	stop := runMosquittoPersistent(t, other, mqdir)
	app := dialSession(t, ctx, "mqtt://"+other, "late-app", g.Topics().Up("n"))
	app.c.Disconnect(50)
	stop()
	runMosquittoPersistent(t, addr, mqdir)
	app.connectSession(t, ctx, url, "late-app")

	got := map[string][]string{}
	app.take(t, ctx, got, g.Topics().Up("n"), 1)
	if got[g.Topics().Up("n")][0] != "early" {
		t.Fatalf("up topic: %q, want the spooled message", got)
	}
	routed.expect(t, ctx, "early")
	// renew publishes the online state once the subscriptions are
	// confirmed: after it, a message on the down topic reaches the node.
	// (One client per topic: waiting on one topic discards the others'
	// messages, and retained messages come in either order.)
	m := dialMQTT(t, ctx, url, g.Topics().Gateway("test"))
	m.waitPayload(t, ctx, g.Topics().Gateway("test"), "online")
	ms := dialMQTT(t, ctx, url, g.Topics().State("n"))
	ms.waitPayload(t, ctx, g.Topics().State("n"), "up")
	m.publish(t, ctx, g.Topics().Down("n"), "subscribed on the first connection")
	n.expect(t, ctx, "subscribed on the first connection")

	rec.wait(t, ctx, "MQTT: the spooled messages are all published")
	if err := n.Write(ctx, "direct"); err != nil {
		t.Fatal(err)
	}
	app.take(t, ctx, got, g.Topics().Up("n"), 2)
	if got[g.Topics().Up("n")][1] != "direct" {
		t.Fatalf("up topic: %q, want early then direct", got)
	}
	if c := rec.find("MQTT broker connected"); len(c) != 1 {
		t.Errorf("connection logged %d times, want once", len(c))
	}
	if f := rec.find("MQTT broker: reconnection failed; retrying"); len(f) != 0 {
		t.Errorf("the failed attempts before the first connection were logged again: %v", f)
	}
	if v := metric(t, scrape(t, ctx, web), "tether_mqtt_connected"); v != 1 {
		t.Errorf("tether_mqtt_connected = %v once connected, want 1", v)
	}
	hd = brokerHeader{}
	getJSON(t, "http://"+web+"/api/status", &hd)
	if hd.MQTT == nil || !hd.MQTT.Connected || hd.MQTT.Error != "" {
		t.Errorf("/api/status mqtt = %+v, want connected", hd.MQTT)
	}
}

// TestCloseNeverConnected: a gateway whose broker never came closes
// at once (Close, or Shutdown, which has no offline state to publish),
// leaving no goroutine behind.
func TestCloseNeverConnected(t *testing.T) {
	before := goleak.IgnoreCurrent()
	for _, shutdown := range []bool{false, true} {
		cfg := gwConfig(t, "mqtt://"+freePort(t))
		cfg.Nodes.Expect = []string{"a", "b"}
		g, err := newGateway(cfg)
		if err != nil {
			t.Fatalf("Start with no broker: %v", err)
		}
		closed := make(chan struct{})
		go func() {
			defer close(closed)
			if shutdown {
				ctx, cancel := context.WithTimeout(context.Background(), time.Second)
				defer cancel()
				g.Shutdown(ctx)
			} else {
				g.Close()
			}
		}()
		// A hang guard, not a timing assertion.
		select {
		case <-closed:
		case <-time.After(20 * time.Second):
			t.Fatalf("shutdown %v: the gateway did not close while its broker was never reached", shutdown)
		}
	}
	goleak.VerifyNone(t, before)
}

// TestBrokerFailFast: errors that retrying cannot cure still fail Start
// at once, with a hint: a wrong password, no user name (not
// authorized), a CA file that does not exist; and with
// mqtt.require_first_connection, any failure, a refused connection
// included.
func TestBrokerFailFast(t *testing.T) {
	dir := t.TempDir()
	passwd := filepath.Join(dir, "passwd")
	if err := os.WriteFile(passwd, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mosquitto_passwd", "-b", passwd, "gw", "s3cret").CombinedOutput(); err != nil {
		t.Fatalf("mosquitto_passwd (install mosquitto: apt-get install mosquitto): %v: %s", err, out)
	}
	addr := startMosquittoConf(t, "allow_anonymous false\npassword_file "+passwd+"\n")
	for _, tc := range []struct {
		name   string
		change func(*gateway.Config)
		want   []string // in the error
	}{
		{"wrong password", func(c *gateway.Config) { c.MQTT.Username, c.MQTT.Password = "gw", "wrong" },
			[]string{"check mqtt.username and mqtt.password"}},
		{"no user name", func(c *gateway.Config) {}, []string{"check mqtt.username and mqtt.password"}},
		{"CA file missing", func(c *gateway.Config) {
			c.MQTT.Broker = "mqtts://" + addr
			c.MQTT.TLS.CA = filepath.Join(dir, "nothing.pem")
		}, []string{"mqtt.tls.ca", "nothing.pem"}},
		{"required first connection refused", func(c *gateway.Config) {
			c.MQTT.Broker = "mqtt://" + freePort(t)
			c.MQTT.RequireFirstConnection = true
		}, []string{"refused", "is the broker running?"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := gwConfig(t, "mqtt://"+addr)
			tc.change(&cfg)
			g, err := newGateway(cfg)
			if err == nil {
				g.Close()
				t.Fatal("the gateway started")
			}
			t.Logf("Start: %v", err)
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
	// The right password: it starts (the broker above does run).
	cfg := gwConfig(t, "mqtt://"+addr)
	cfg.MQTT.Username, cfg.MQTT.Password = "gw", "s3cret"
	startGateway(t, cfg)
}

// TestBrokerRefusesLater: the gateway started before its broker, which
// then refuses its password: a running gateway cannot fail, so it logs
// the refusal as an error, with the hint, once, and goes on retrying.
func TestBrokerRefusesLater(t *testing.T) {
	ctx := testCtx(t)
	dir := t.TempDir()
	passwd := filepath.Join(dir, "passwd")
	if err := os.WriteFile(passwd, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mosquitto_passwd", "-b", passwd, "gw", "s3cret").CombinedOutput(); err != nil {
		t.Fatalf("mosquitto_passwd (install mosquitto: apt-get install mosquitto): %v: %s", err, out)
	}
	rec := newLogRecorder()
	addr := freePort(t)
	cfg := gwConfig(t, "mqtt://"+addr)
	cfg.Logger = rec.logger()
	cfg.MQTT.Username, cfg.MQTT.Password = "gw", "wrong"
	g := startGateway(t, cfg)
	runMosquitto(t, addr, "allow_anonymous false\npassword_file "+passwd+"\n")
	refusal := rec.wait(t, ctx, "MQTT broker refused the connection; retrying, but this needs fixing")
	if refusal.attrs["hint"] != "check mqtt.username and mqtt.password" {
		t.Errorf("refusal logged with hint %q, want what to check", refusal.attrs["hint"])
	}
	// The next refusal (the same error) is logged at debug level only.
	rec.waitMatch(t, ctx, "MQTT broker: reconnection failed", func(l logLine) bool {
		return l.attrs["err"] == refusal.attrs["err"]
	})
	if n := len(rec.find("MQTT broker refused the connection")); n != 1 {
		t.Errorf("refusal logged %d times, want once", n)
	}
	if st := g.MQTTStatus(); st.Connected || st.Err == nil {
		t.Errorf("MQTTStatus = %+v, want not connected, with the refusal", st)
	}
}
