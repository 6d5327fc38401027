package gateway_test

import (
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/tether-iot/tether/gateway"
)

// TestEmbeddedAuth (issue 9): "loopback" is the embedded broker's
// listener address. On one beyond loopback (here 0.0.0.0, reached
// through 127.0.0.1: the client's address does not matter) the gateway
// refuses to start without users, starts with mqtt.embedded.insecure
// (and a warning), and with a password file refuses anonymous clients
// and wrong passwords, takes a user's publish on a node's down topic that
// its ACL allows and refuses the others.
func TestEmbeddedAuth(t *testing.T) {
	ctx := testCtx(t)
	cfg := gwConfig(t, "")
	cfg.MQTT.Listen = "0.0.0.0:0"
	if g, err := newGateway(cfg); err == nil {
		g.Close()
		t.Error("the gateway started with its broker open beyond loopback to anonymous clients")
	} else if !strings.Contains(err.Error(), "mqtt.embedded.password_file") {
		t.Errorf("Start: %v; want the remedy (mqtt.embedded.password_file)", err)
	}

	rec := newLogRecorder()
	cfg.Logger = rec.logger()
	cfg.MQTT.Embedded.Insecure = true
	g := startGateway(t, cfg)
	if w := rec.find("embedded MQTT broker: INSECURE: it accepts clients without a password beyond this machine: anyone on the network can read the nodes' messages and command them"); len(w) != 1 {
		t.Errorf("insecure start: %d warnings, want 1", len(w))
	}
	g.Close()

	text, err := gateway.SetMQTTPassword(nil, "app", "right")
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "passwd")
	if err := os.WriteFile(file, text, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg = gwConfig(t, "")
	cfg.MQTT.Listen = "0.0.0.0:0"
	cfg.MQTT.Embedded.PasswordFile = file
	cfg.MQTT.Embedded.ACL = map[string]gateway.ACL{"app": {Write: []string{"tether/+/down"}}}
	g = startGateway(t, cfg)
	_, port, _ := net.SplitHostPort(g.MQTTAddr().String())
	url := "tcp://127.0.0.1:" + port
	connect := func(user, pw string) (paho.Client, error) {
		o := paho.NewClientOptions().AddBroker(url).SetClientID("c-" + user + pw).SetAutoReconnect(false).
			SetUsername(user).SetPassword(pw)
		c := paho.NewClient(o)
		err := wait(ctx, c.Connect())
		if err == nil {
			t.Cleanup(func() { c.Disconnect(50) })
		}
		return c, err
	}
	if _, err := connect("", ""); err == nil {
		t.Error("an anonymous client was accepted on a listener beyond loopback")
	}
	if _, err := connect("app", "wrong"); err == nil {
		t.Error("a wrong password was accepted")
	}
	c, err := connect("app", "right")
	if err != nil {
		t.Fatalf("the right password: %v", err)
	}
	n := dialNode(t, ctx, g.Addr().String(), "n")
	if err := wait(ctx, c.Publish(g.Topics().Down("n"), 1, false, "allowed")); err != nil {
		t.Fatal(err)
	}
	n.expect(t, ctx, "allowed")
	// Not in its ACL: down/noqos. QoS 0: dropped by the broker.
	if err := wait(ctx, c.Publish(g.Topics().DownNoQoS("n"), 0, false, "not allowed")); err != nil {
		t.Fatal(err)
	}
	if err := wait(ctx, c.Publish(g.Topics().Down("n"), 1, false, "after")); err != nil {
		t.Fatal(err)
	}
	n.expect(t, ctx, "after") // and not "not allowed" before it
}

// TestMosquittoReadsOurHashes: a real mosquitto takes the password file
// that tether mqtt passwd writes (the right password logs in, a wrong
// one does not): the format is mosquitto's.
func TestMosquittoReadsOurHashes(t *testing.T) {
	ctx := testCtx(t)
	text, err := gateway.SetMQTTPassword(nil, "app", "right")
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "passwd")
	if err := os.WriteFile(file, text, 0o600); err != nil {
		t.Fatal(err)
	}
	addr := startMosquittoConf(t, "allow_anonymous false\npassword_file "+file+"\n")
	for _, pw := range []string{"right", "wrong"} {
		c := paho.NewClient(paho.NewClientOptions().AddBroker("tcp://" + addr).SetClientID("c-" + pw).
			SetAutoReconnect(false).SetUsername("app").SetPassword(pw))
		err := wait(ctx, c.Connect())
		if (err == nil) != (pw == "right") {
			t.Errorf("mosquitto, password %q: %v", pw, err)
		}
		if err == nil {
			c.Disconnect(50)
		}
	}
}

// TestOnePasswordFile: one password file serves the operators
// everywhere: a file with a line that mosquitto_passwd wrote and one
// that tether mqtt passwd wrote is taken by a real mosquitto, by the
// embedded broker and by the status page (web.users_file), the right
// passwords in, wrong ones out.
func TestOnePasswordFile(t *testing.T) {
	ctx := testCtx(t)
	file := filepath.Join(t.TempDir(), "passwd")
	tool, err := exec.LookPath("mosquitto_passwd")
	if err != nil {
		t.Fatal("mosquitto_passwd not found: install mosquitto (apt-get install mosquitto) or run ./scripts/test")
	}
	if out, err := exec.CommandContext(ctx, tool, "-c", "-b", file, "ops", "from mosquitto").CombinedOutput(); err != nil {
		t.Fatalf("mosquitto_passwd: %v\n%s", err, out)
	}
	text, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if text, err = gateway.SetMQTTPassword(text, "app", "from tether"); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, text, 0o600); err != nil {
		t.Fatal(err)
	}
	users := []struct{ user, right string }{{"ops", "from mosquitto"}, {"app", "from tether"}}

	login := func(url, user, pw string) error {
		c := paho.NewClient(paho.NewClientOptions().AddBroker(url).SetClientID("c-" + user + pw).
			SetAutoReconnect(false).SetUsername(user).SetPassword(pw))
		err := wait(ctx, c.Connect())
		if err == nil {
			c.Disconnect(50)
		}
		return err
	}
	mosq := "tcp://" + startMosquittoConf(t, "allow_anonymous false\npassword_file "+file+"\n")

	cfg := webOn(gwConfig(t, ""), "127.0.0.1:0")
	cfg.MQTT.Embedded.PasswordFile = file
	cfg.Web.UsersFile = file
	g := startGateway(t, cfg)
	embedded := strings.Replace(mqttURL(g), "mqtt://", "tcp://", 1)

	for _, u := range users {
		for _, pw := range []string{u.right, u.right + "!"} {
			ok := pw == u.right
			for _, b := range []struct{ name, url string }{{"mosquitto", mosq}, {"embedded broker", embedded}} {
				if err := login(b.url, u.user, pw); (err == nil) != ok {
					t.Errorf("%s, %s with password %q: %v", b.name, u.user, pw, err)
				}
			}
			hdr := http.Header{}
			req, _ := http.NewRequest("GET", "/", nil)
			req.SetBasicAuth(u.user, pw)
			hdr.Set("Authorization", req.Header.Get("Authorization"))
			want := http.StatusUnauthorized
			if ok {
				want = http.StatusOK
			}
			if code, body := webDo(t, ctx, g, "GET", "/api/status", "", hdr); code != want {
				t.Errorf("status page, %s with password %q: %d %.80q, want %d", u.user, pw, code, body, want)
			}
		}
	}
}
