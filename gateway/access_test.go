package gateway_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/tether-iot/tether/client"
	"github.com/tether-iot/tether/gateway"
	"github.com/tether-iot/tether/internal/harness/pkitest"
	"github.com/tether-iot/tether/internal/harness/testutil"
	"github.com/tether-iot/tether/internal/pki"
	"github.com/tether-iot/tether/link"
)

// claim is an attacker's claim of id, from a loopback address; it
// reports whether the gateway served it (and closes the connection).
func claim(t *testing.T, ctx context.Context, g *gateway.Gateway, from, id string) bool {
	t.Helper()
	conn, err := pkitest.Claim(ctx, g.Addr().String(), from, nil, id)
	if err != nil {
		if !errors.Is(err, pkitest.ErrRefused) {
			t.Fatalf("claim of %s: %v", id, err)
		}
		return false
	}
	conn.Close()
	return true
}

// A Go node provisioned with tether ca's files speaks TLS; once its ID
// has credentials, a plain-TCP claim of it is refused; revoking its
// certificate in the config shuts it out.
func TestGatewayTLSNodes(t *testing.T) {
	ctx := testCtx(t)
	cfg := gwConfig(t, "")
	cfg.TLS.Enabled = true
	g := startGateway(t, cfg)
	ca, err := pki.Open(pki.Dir(cfg.Data)) // made by the gateway on first use
	if err != nil {
		t.Fatal(err)
	}
	is, err := ca.IssueNode("pump1", 0)
	if err != nil {
		t.Fatal(err)
	}
	cert, key, caFile, err := ca.WriteNode(t.TempDir(), is)
	if err != nil {
		t.Fatal(err)
	}
	tc, err := client.LoadTLS(cert, key, caFile)
	if err != nil {
		t.Fatal(err)
	}
	m := dialMQTT(t, ctx, mqttURL(g), "tether/pump1/up")
	c, err := client.Dial(ctx, client.Config{ID: "pump1", Server: g.Addr().String(), Timeout: testT, TLS: tc, Logger: testutil.Logger()})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Write(ctx, "over TLS"); err != nil {
		t.Fatal(err)
	}
	m.waitPayload(t, ctx, "tether/pump1/up", "over TLS")
	c.Close()

	// The CA issued pump1 a certificate: plain TCP is no way in.
	before := g.Server().Stats().PlainRefused
	if claim(t, ctx, g, "127.0.0.1", "pump1") {
		t.Fatal("plain-TCP claim of pump1 served")
	}
	if got := g.Server().Stats().PlainRefused - before; got != 1 {
		t.Fatalf("PlainRefused moved by %d", got)
	}
	// Nor for an ID issued while the gateway runs, never connected.
	if _, err := ca.IssueNode("pump2", 0); err != nil {
		t.Fatal(err)
	}
	if claim(t, ctx, g, "127.0.0.1", "pump2") {
		t.Fatal("plain-TCP claim of pump2 served")
	}
	// Other IDs still speak plain TCP.
	if !claim(t, ctx, g, "127.0.0.1", "legacy") {
		t.Fatal("plain node refused")
	}
	// A denied ID is refused whatever it presents, until approved.
	if err := g.Deny("pump1"); err != nil {
		t.Fatal(err)
	}
	if conn, err := pkitest.Claim(ctx, g.Addr().String(), "", tc, "pump1"); !errors.Is(err, pkitest.ErrRefused) {
		if conn != nil {
			conn.Close()
		}
		t.Fatalf("denied ID with its certificate: %v", err)
	}
	if err := g.Approve("pump1"); err != nil {
		t.Fatal(err)
	}
	conn, err := pkitest.Claim(ctx, g.Addr().String(), "", tc, "pump1")
	if err != nil {
		t.Fatalf("approved again: %v", err)
	}
	conn.Close()
	g.Close()

	// Revoked in the config: refused at the TLS handshake.
	cfg.TLS.RevokedSerials = []string{strings.ToUpper(is.Serial)}
	g = startGateway(t, cfg)
	conn, err = pkitest.Claim(ctx, g.Addr().String(), "", tc, "pump1")
	if !errors.Is(err, pkitest.ErrRefused) {
		if conn != nil {
			conn.Close()
		}
		t.Fatalf("revoked certificate: %v", err)
	}
	if st := g.Server().Stats(); st.CertRevoked != 1 {
		t.Fatalf("stats %+v", st)
	}
}

// Approval mode end to end: a new ID is held pending (listed, nothing
// delivered or published) until approved by MQTT or by the admin socket
// (tether nodes approve); denied IDs are not listed; approvals made
// while the gateway is stopped are kept in the store; the pending list
// is bounded.
func TestGatewayApproval(t *testing.T) {
	ctx := testCtx(t)
	cfg := gwConfig(t, "")
	cfg.Nodes.Expect = []string{"known"}
	cfg.Nodes.Approval = true
	cfg.Nodes.MaxPending = 3
	g := startGateway(t, cfg)
	if !claim(t, ctx, g, "127.0.0.1", "known") {
		t.Fatal("an expected node needs no approval")
	}
	m := dialMQTT(t, ctx, mqttURL(g), "tether/newbie/#")

	// newbie keeps trying; it is listed, gets nothing, publishes nothing.
	nb, err := client.Dial(ctx, client.Config{ID: "newbie", Server: g.Addr().String(), Timeout: testT,
		ReconnectDelay: testT / 2, MaxReconnectDelay: testT / 2, Logger: testutil.Logger()})
	if err != nil {
		t.Fatal(err)
	}
	defer nb.Close()
	if claim(t, ctx, g, "127.0.0.3", "newbie") {
		t.Fatal("a new ID was served in approval mode")
	}
	ps := g.Pending()
	if len(ps) != 1 || ps[0].ID != "newbie" || ps[0].Attempts < 1 {
		t.Fatalf("pending %+v", ps)
	}
	if _, err := g.Server().Lookup("newbie"); err == nil {
		t.Fatal("a pending ID has a link")
	}
	// Approved by MQTT.
	m.publish(t, ctx, "tether/$admin/test/approve", "newbie")
	if err := nb.WaitUp(ctx); err != nil {
		t.Fatal(err)
	}
	if err := g.Send(ctx, "newbie", "welcome"); err != nil {
		t.Fatal(err)
	}
	if got, err := nb.ReadLine(ctx); err != nil || got != "welcome" {
		t.Fatalf("got %q, %v", got, err)
	}
	if err := nb.Write(ctx, "let in"); err != nil {
		t.Fatal(err)
	}
	// Nothing was published for newbie before its approval: until its
	// message, only its state "up" (a pending ID would be "down").
	for done := false; !done; {
		select {
		case msg := <-m.msgs:
			switch {
			case msg.Topic() == "tether/newbie/up" && string(msg.Payload()) == "let in":
				done = true
			case msg.Topic() == "tether/newbie/state" && string(msg.Payload()) == "up":
			default:
				t.Fatalf("MQTT: %s %q", msg.Topic(), msg.Payload())
			}
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		}
	}
	if len(g.Pending()) != 0 {
		t.Fatalf("pending %+v", g.Pending())
	}

	// Approved through the admin socket, as tether nodes approve does.
	// (newbie's own attempts, however many, are counted before.)
	before := g.Server().Stats()
	if claim(t, ctx, g, "127.0.0.1", "second") {
		t.Fatal("served")
	}
	ps, err = gateway.ListPending(ctx, cfg.Data)
	if err != nil || len(ps) != 1 || ps[0].ID != "second" {
		t.Fatalf("pending %+v, %v", ps, err)
	}
	if online, err := gateway.ApproveID(ctx, cfg.Data, "second"); err != nil || !online {
		t.Fatalf("approve: online %v, %v", online, err)
	}
	if !claim(t, ctx, g, "127.0.0.1", "second") {
		t.Fatal("approved ID refused")
	}
	// Denied: refused, not listed.
	if online, err := gateway.DenyID(ctx, cfg.Data, "intruder"); err != nil || !online {
		t.Fatalf("deny: online %v, %v", online, err)
	}
	if claim(t, ctx, g, "127.0.0.1", "intruder") || len(g.Pending()) != 0 {
		t.Fatalf("denied ID served or listed: %+v", g.Pending())
	}
	for _, id := range []string{"a", "b", "c", "d", "e"} {
		if claim(t, ctx, g, "127.0.0.1", id) {
			t.Fatalf("%s served", id)
		}
	}
	// Bounded: the IDs claimed least recently are dropped from the list.
	var ids []string
	for _, p := range g.Pending() {
		ids = append(ids, p.ID)
	}
	if got := strings.Join(ids, ","); got != "e,d,c" || g.PendingDropped() != 2 {
		t.Fatalf("pending %s, dropped %d", got, g.PendingDropped())
	}
	st := g.Server().Stats()
	if st.Pending-before.Pending != 6 || st.Refused-before.Refused != 1 {
		t.Fatalf("stats %+v, before %+v", st, before)
	}
	nb.Close()
	g.Close()

	// Approved while the gateway is stopped: kept in the store.
	if _, err := gateway.ListPending(ctx, cfg.Data); !errors.Is(err, gateway.ErrNotRunning) {
		t.Fatalf("pending with no gateway: %v", err)
	}
	if online, err := gateway.ApproveID(ctx, cfg.Data, "offline"); err != nil || online {
		t.Fatalf("approve: online %v, %v", online, err)
	}
	g = startGateway(t, cfg)
	for id, want := range map[string]bool{"offline": true, "second": true, "newbie": true, "intruder": false, "a": false} {
		if got := claim(t, ctx, g, "127.0.0.1", id); got != want {
			t.Errorf("%s after a restart: served %v, want %v", id, got, want)
		}
	}
}

// Pins from the config file: a claim from another address is refused.
func TestGatewayPins(t *testing.T) {
	ctx := testCtx(t)
	c, err := gateway.ParseConfig("pins.yaml", []byte(`
nodes:
  allow_from: [127.0.0.0/30]
  pin:
    pump1: [127.0.0.1]
`))
	if err != nil {
		t.Fatal(err)
	}
	cfg := gwConfig(t, "")
	cfg.Nodes = c.Nodes
	g := startGateway(t, cfg)
	for _, tc := range []struct {
		from, id string
		ok       bool
	}{
		{"127.0.0.1", "pump1", true},
		{"127.0.0.2", "pump1", false}, // within allow_from, but pump1 is pinned
		{"127.0.0.2", "other", true},
		{"127.0.0.7", "other", false},
	} {
		if got := claim(t, ctx, g, tc.from, tc.id); got != tc.ok {
			t.Errorf("%s from %s: served %v, want %v", tc.id, tc.from, got, tc.ok)
		}
	}
	if st := g.Server().Stats(); st.PinRefused != 2 {
		t.Fatalf("stats %+v", st)
	}
}

func TestAccessConfigErrors(t *testing.T) {
	for _, text := range []string{
		"nodes:\n  allow_from: [192.168.1.0/33]\n",
		"nodes:\n  pin:\n    a: [not-an-address]\n",
		"nodes:\n  pin:\n    a: []\n",
		"tls:\n  required: true\n",
		"tls:\n  enabled: true\n  revoked_serials: [xyz]\n",
		"tls:\n  enabled: true\n  cert: a.pem\n",
	} {
		if _, err := gateway.ParseConfig("c.yaml", []byte(text)); err == nil {
			t.Errorf("%q: no error", text)
		}
	}
}

// An admitted node's approval outlives its forgetting: a node seen before
// approval mode, or approved, that goes idle for nodes.forget_after is
// forgotten, and served again at its next claim, not held as pending.
func TestApprovalOutlivesForgetting(t *testing.T) {
	ctx := testCtx(t)
	cfg := gwConfig(t, gateway.BrokerNone)
	g := startGateway(t, cfg)
	if !claim(t, ctx, g, "127.0.0.1", "old") { // seen, approval off
		t.Fatal("refused")
	}
	g.Close()

	cfg.Nodes.Approval = true
	cfg.Nodes.ForgetAfter = gateway.Duration(2 * testT)
	watch := &logWatch{Handler: testutil.Logger().Handler(), text: "node forgotten", ch: make(chan slog.Record, 4)}
	cfg.Logger = slog.New(watch)
	g = startGateway(t, cfg)
	if err := g.Approve("new"); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"old", "new"} {
		if !claim(t, ctx, g, "127.0.0.1", id) {
			t.Fatalf("%s refused", id)
		}
	}
	for range 2 {
		select {
		case <-watch.ch:
		case <-ctx.Done():
			t.Fatal("not forgotten")
		}
	}
	for _, id := range []string{"old", "new"} {
		if !claim(t, ctx, g, "127.0.0.1", id) {
			t.Fatalf("%s refused after it was forgotten: %+v", id, g.Pending())
		}
	}
	g.Close()
	g = startGateway(t, cfg)
	for _, id := range []string{"old", "new"} {
		if !claim(t, ctx, g, "127.0.0.1", id) {
			t.Fatalf("%s refused after a restart: %+v", id, g.Pending())
		}
	}
}

// Denying an ID drops the device connected under it now (a stolen node,
// say), not at its next connection; it cannot get back in, and what is
// queued for the ID stays queued.
func TestDenyDropsConnectedNode(t *testing.T) {
	ctx := testCtx(t)
	g := startGateway(t, gwConfig(t, gateway.BrokerNone))
	c, err := client.Dial(ctx, client.Config{ID: "thief", Server: g.Addr().String(), Timeout: testT, Logger: testutil.Logger()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Write(ctx, "hello"); err != nil {
		t.Fatal(err)
	}
	l, err := g.Server().Lookup("thief")
	if err != nil {
		t.Fatal(err)
	}
	events := make(chan link.Event, 16)
	l.Notify(events)
	defer l.Stop(events)
	if err := g.Deny("thief"); err != nil {
		t.Fatal(err)
	}
	// Within T: sooner than any outage detection could explain.
	deadline := time.NewTimer(testT)
	defer deadline.Stop()
	for down := false; !down; {
		select {
		case ev := <-events:
			down = ev.Kind == link.Down
		case <-deadline.C:
			t.Fatal("the denied node is still connected")
		}
	}
	if claim(t, ctx, g, "127.0.0.1", "thief") {
		t.Fatal("the denied ID got back in")
	}
	if err := g.Send(ctx, "thief", "for the real node"); err != nil {
		t.Fatal(err)
	}
	if q := g.Queue("thief"); q.Messages != 1 {
		t.Fatalf("queue of the denied ID: %+v, want the message kept", q)
	}
}
