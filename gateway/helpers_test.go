package gateway_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/tether-iot/tether/client"
	"github.com/tether-iot/tether/gateway"
	"github.com/tether-iot/tether/internal/harness/testutil"
	"github.com/tether-iot/tether/link"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const testT = 300 * time.Millisecond

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// freePort returns a loopback address that was free a moment ago.
func freePort(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// startMosquitto starts a real mosquitto on a free loopback port, stopped
// at the end of the test, and returns its URL.
func startMosquitto(t *testing.T) string {
	t.Helper()
	return "mqtt://" + startMosquittoConf(t, "allow_anonymous true\n")
}

// startMosquittoConf starts mosquitto with extra config lines for its
// listener and returns its address.
func startMosquittoConf(t *testing.T, extra string) string {
	t.Helper()
	addr := freePort(t)
	runMosquitto(t, addr, extra)
	return addr
}

// runMosquitto starts mosquitto on addr with extra config lines for its
// listener. It is killed by stop, or at the end of the test.
func runMosquitto(t *testing.T, addr, extra string) (stop func()) {
	t.Helper()
	return runMosquittoConf(t, addr, extra+"persistence false\n", false)
}

// runMosquittoPersistent starts mosquitto on addr with its persistence
// file in dir: stop ends it with SIGTERM, so that it saves its sessions
// (subscriptions, queued QoS 1 messages) for the next one started on
// the same dir.
func runMosquittoPersistent(t testing.TB, addr, dir string) (stop func()) {
	t.Helper()
	return runMosquittoConf(t, addr, "allow_anonymous true\npersistence true\npersistence_location "+dir+"/\n", true)
}

func runMosquittoConf(t testing.TB, addr, extra string, term bool) (stop func()) {
	t.Helper()
	bin, err := exec.LookPath("mosquitto")
	if err != nil {
		if _, e := os.Stat("/usr/sbin/mosquitto"); e == nil {
			bin = "/usr/sbin/mosquitto"
		} else {
			t.Fatal("mosquitto not found: install mosquitto (apt-get install mosquitto) or run ./scripts/test")
		}
	}
	_, port, _ := net.SplitHostPort(addr)
	conf := filepath.Join(t.TempDir(), "mosquitto.conf")
	text := fmt.Sprintf("user root\nlistener %s 127.0.0.1\n%slog_dest stderr\nlog_type error\nlog_type warning\nlog_type notice\nlog_type information\n", port, extra)
	if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, "-c", conf)
	if term {
		cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
		cmd.WaitDelay = 10 * time.Second // then killed
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("start mosquitto: %v", err)
	}
	ready := make(chan struct{})
	logDone := make(chan struct{})
	var logMu sync.Mutex
	var logText strings.Builder
	go func() {
		defer close(logDone)
		sc := bufio.NewScanner(stderr)
		once := false
		for sc.Scan() {
			line := sc.Text()
			logMu.Lock()
			logText.WriteString(line + "\n")
			logMu.Unlock()
			if !once && strings.Contains(line, "running") {
				once = true
				close(ready)
			}
		}
		if !once {
			close(ready)
		}
	}()
	var stopOnce sync.Once
	stop = func() {
		stopOnce.Do(func() {
			cancel()
			<-logDone
			_ = cmd.Wait()
		})
	}
	t.Cleanup(stop)
	<-ready
	logMu.Lock()
	ok := strings.Contains(logText.String(), "running")
	logMu.Unlock()
	if !ok {
		t.Fatalf("mosquitto did not start:\n%s", logText.String())
	}
	return stop
}

// gwConfig is a gateway config for tests: loopback, short T, no web.
func gwConfig(t *testing.T, broker string) gateway.Config { return gwConfigB(t, broker) }

func gwConfigB(t testing.TB, broker string) gateway.Config {
	t.Helper()
	off := false
	return gateway.Config{
		Name:    "test",
		Listen:  "127.0.0.1:0",
		Timeout: gateway.Duration(testT),
		Data:    t.TempDir(),
		MQTT:    gateway.MQTTConfig{Broker: broker, Listen: "127.0.0.1:0"},
		Web:     gateway.WebConfig{Enabled: &off},
		Logger:  testutil.Logger(),
	}
}

func startGateway(t *testing.T, cfg gateway.Config) *gateway.Gateway {
	t.Helper()
	return startGatewayB(t, cfg)
}

func startGatewayB(t testing.TB, cfg gateway.Config) *gateway.Gateway {
	t.Helper()
	g, err := gateway.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Start(context.Background()); err != nil {
		g.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close() })
	return g
}

// node connects a Go node to the gateway; restarts counts the gateway
// restarts it noticed (a new message 00), which must stay 0.
type node struct {
	*client.Client
	restarts chan link.Event
}

func dialNode(t *testing.T, ctx context.Context, addr, id string) *node {
	t.Helper()
	return dialNodeQueue(t, ctx, addr, id, 0)
}

// dialNodeQueue connects a node that holds at most queue unread
// messages (0: the default) and refuses the next until it reads one.
func dialNodeQueue(t *testing.T, ctx context.Context, addr, id string, queue int) *node {
	t.Helper()
	return dialNodeQueueB(t, ctx, addr, id, queue)
}

func dialNodeB(t testing.TB, ctx context.Context, addr, id string) *node {
	t.Helper()
	return dialNodeQueueB(t, ctx, addr, id, 0)
}

func dialNodeQueueB(t testing.TB, ctx context.Context, addr, id string, queue int) *node {
	t.Helper()
	n := &node{restarts: make(chan link.Event, 10)}
	c, err := client.Dial(ctx, client.Config{
		ID: id, Server: addr, Timeout: testT, Logger: testutil.Logger(), RecvQueue: queue,
		OnEvent: func(ev link.Event) {
			if ev.Kind == link.PeerRestart {
				n.restarts <- ev
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	n.Client = c
	t.Cleanup(func() { c.Close() })
	return n
}

func (n *node) expect(t *testing.T, ctx context.Context, want ...string) {
	t.Helper()
	for _, w := range want {
		got, err := n.ReadLine(ctx)
		if err != nil {
			t.Fatalf("node %s: waiting for %q: %v", n.ID(), w, err)
		}
		if got != w {
			t.Fatalf("node %s: got %q, want %q", n.ID(), got, w)
		}
	}
}

// mqttClient is a plain MQTT client: what a user's application is.
type mqttClient struct {
	c    paho.Client
	msgs chan paho.Message
}

func dialMQTT(t *testing.T, ctx context.Context, url string, filters ...string) *mqttClient {
	t.Helper()
	return dialMQTTB(t, ctx, url, filters...)
}

func dialMQTTB(t testing.TB, ctx context.Context, url string, filters ...string) *mqttClient {
	t.Helper()
	m := &mqttClient{msgs: make(chan paho.Message, 1000)}
	url = strings.Replace(url, "mqtt://", "tcp://", 1)
	o := paho.NewClientOptions().AddBroker(url).SetClientID(fmt.Sprintf("test-%d", time.Now().UnixNano())).
		SetOrderMatters(true).SetAutoReconnect(false).
		SetDefaultPublishHandler(func(_ paho.Client, msg paho.Message) { m.msgs <- msg })
	m.c = paho.NewClient(o)
	if err := wait(ctx, m.c.Connect()); err != nil {
		t.Fatalf("test MQTT client: %v", err)
	}
	t.Cleanup(func() { m.c.Disconnect(50) })
	if len(filters) > 0 {
		subs := make(map[string]byte)
		for _, f := range filters {
			subs[f] = 1
		}
		if err := wait(ctx, m.c.SubscribeMultiple(subs, nil)); err != nil {
			t.Fatal(err)
		}
	}
	return m
}

func wait(ctx context.Context, tok paho.Token) error {
	select {
	case <-tok.Done():
		return tok.Error()
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (m *mqttClient) publish(t *testing.T, ctx context.Context, topic, payload string) {
	t.Helper()
	if err := wait(ctx, m.c.Publish(topic, 1, false, payload)); err != nil {
		t.Fatalf("publish %s: %v", topic, err)
	}
}

// next returns the next message on topic, skipping others.
func (m *mqttClient) next(t *testing.T, ctx context.Context, topic string) string {
	t.Helper()
	for {
		select {
		case msg := <-m.msgs:
			if msg.Topic() == topic {
				return string(msg.Payload())
			}
		case <-ctx.Done():
			t.Fatalf("MQTT: nothing on %s: %v", topic, ctx.Err())
		}
	}
}

// waitPayload waits for payload on topic.
func (m *mqttClient) waitPayload(t *testing.T, ctx context.Context, topic, payload string) {
	t.Helper()
	for m.next(t, ctx, topic) != payload {
	}
}

func mqttURL(g *gateway.Gateway) string { return "mqtt://" + g.MQTTAddr().String() }

// newGateway makes and starts a gateway, returning Start's error.
func newGateway(cfg gateway.Config) (*gateway.Gateway, error) {
	g, err := gateway.New(cfg)
	if err != nil {
		return nil, err
	}
	if err := g.Start(context.Background()); err != nil {
		g.Close()
		return nil, err
	}
	return g, nil
}
