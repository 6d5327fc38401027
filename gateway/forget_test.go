package gateway_test

import (
	"bufio"
	"context"
	"errors"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tether-iot/tether/gateway"
	"github.com/tether-iot/tether/internal/harness/testutil"
	"github.com/tether-iot/tether/server"
)

// logWatch is a slog handler that signals each record whose message
// contains a text.
type logWatch struct {
	slog.Handler
	text string
	ch   chan slog.Record
}

func (w *logWatch) Handle(ctx context.Context, r slog.Record) error {
	if strings.Contains(r.Message, w.text) {
		select {
		case w.ch <- r:
		default:
		}
	}
	return w.Handler.Handle(ctx, r)
}

func (w *logWatch) WithAttrs(as []slog.Attr) slog.Handler {
	return &logWatch{Handler: w.Handler.WithAttrs(as), text: w.text, ch: w.ch}
}

// TestForget: Forget refuses a node that is up; once it is down, its
// link, queue and retained state go, and it comes back as a new node. A
// typo'd ID's queue is deleted.
func TestForget(t *testing.T) {
	ctx := testCtx(t)
	g := startGateway(t, gwConfig(t, ""))
	if err := g.Send(ctx, "typo", "never read"); err != nil {
		t.Fatal(err)
	}
	if q, _, err := g.Forget(ctx, "typo"); err != nil || q != 1 || g.Queue("typo").Messages != 0 {
		t.Fatalf("Forget(typo) = %d, %v; queue %+v", q, err, g.Queue("typo"))
	}

	m := dialMQTT(t, ctx, mqttURL(g), "tether/n1/state")
	n := dialNode(t, ctx, g.Addr().String(), "n1")
	m.waitPayload(t, ctx, "tether/n1/state", "up")
	if _, _, err := g.Forget(ctx, "n1"); !errors.Is(err, gateway.ErrNodeUp) {
		t.Fatalf("Forget of a node that is up: %v, want ErrNodeUp", err)
	}
	n.Close()
	m.waitPayload(t, ctx, "tether/n1/state", "down")
	if err := g.Send(ctx, "n1", "queued while down"); err != nil {
		t.Fatal(err)
	}
	if q, _, err := g.Forget(ctx, "n1"); err != nil || q != 1 {
		t.Fatalf("Forget(n1) = %d, %v", q, err)
	}
	if _, err := g.Server().Lookup("n1"); !errors.Is(err, server.ErrUnknownNode) {
		t.Errorf("the server still has n1: %v", err)
	}
	// Its retained state is cleared: a new subscriber gets the marker
	// first, no retained "down".
	m2 := dialMQTT(t, ctx, mqttURL(g), "tether/n1/state", "marker")
	m.publish(t, ctx, "marker", "x")
	select {
	case msg := <-m2.msgs:
		if msg.Topic() != "marker" {
			t.Errorf("retained %s = %q after Forget", msg.Topic(), msg.Payload())
		}
	case <-ctx.Done():
		t.Fatal(ctx.Err())
	}
	// It comes back as a new node, without the deleted message.
	n2 := dialNode(t, ctx, g.Addr().String(), "n1")
	if err := n2.WaitUp(ctx); err != nil {
		t.Fatal(err)
	}
	if err := g.Send(ctx, "n1", "after"); err != nil {
		t.Fatal(err)
	}
	n2.expect(t, ctx, "after")
}

// TestForgetIdle: a node not expected, down for nodes.forget_after with
// nothing queued, is forgotten; the store keeps its window, so that a
// repeat of its last message after it comes back is not delivered twice.
func TestForgetIdle(t *testing.T) {
	ctx := testCtx(t)
	cfg := gwConfig(t, gateway.BrokerNone)
	cfg.Nodes.ForgetAfter = gateway.Duration(2 * testT)
	watch := &logWatch{Handler: testutil.Logger().Handler(), text: "node forgotten", ch: make(chan slog.Record, 1)}
	cfg.Logger = slog.New(watch)
	var mu sync.Mutex
	var got []string
	delivered := make(chan struct{}, 10)
	cfg.OnMessage = func(id, p string) {
		mu.Lock()
		got = append(got, p)
		mu.Unlock()
		delivered <- struct{}{}
	}
	g := startGateway(t, cfg)

	// A legacy node: two messages, ACKed, then gone.
	legacy := func(lines ...string) {
		t.Helper()
		c, err := net.Dial("tcp", g.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		c.Write([]byte("w\n"))
		r := bufio.NewReader(c)
		for _, l := range lines {
			c.Write([]byte(l + "\n"))
			for {
				ack, err := r.ReadString('\n')
				if err != nil {
					t.Fatalf("no ACK of %q: %v", l, err)
				}
				if ack == l[:2]+"\n" {
					break
				}
			}
		}
	}
	legacy("00hello", "01second")
	for range 2 {
		<-delivered
	}
	select {
	case <-watch.ch:
	case <-ctx.Done():
		t.Fatal("w not forgotten")
	}
	if _, err := g.Server().Lookup("w"); !errors.Is(err, server.ErrUnknownNode) {
		t.Fatalf("w still known: %v", err)
	}
	// Back mid-sequence, repeating its last message (its ACK was lost,
	// as far as it knows), then a new one.
	legacy("01second", "02third")
	<-delivered
	mu.Lock()
	defer mu.Unlock()
	if strings.Join(got, ",") != "hello,second,third" {
		t.Errorf("delivered %q, want hello, second, third once each", got)
	}
}
