package gateway_test

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/tether-iot/tether/client"
	"github.com/tether-iot/tether/gateway"
	"github.com/tether-iot/tether/gateway/internal/web"
	"github.com/tether-iot/tether/internal/harness/testutil"
	"github.com/tether-iot/tether/link"
)

// webGet sends a GET for path to the gateway's status page with the
// given Host header (empty: the listener's address) and returns the
// status code and body.
func webGet(t *testing.T, ctx context.Context, g *gateway.Gateway, path, host string) (int, string) {
	t.Helper()
	return webDo(t, ctx, g, "GET", path, host, nil)
}

func webDo(t *testing.T, ctx context.Context, g *gateway.Gateway, method, path, host string, hdr http.Header) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, method, "http://"+loopbackOf(g.WebAddr())+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if host != "" {
		req.Host = host
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.Header.Get("Content-Type") == "text/event-stream" {
		// A stream does not end: its first bytes say enough.
		b := make([]byte, 512)
		n, _ := io.ReadAtLeast(resp.Body, b, 64)
		return resp.StatusCode, string(b[:n])
	}
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// loopbackOf is addr reached over loopback: a listener on all
// interfaces (0.0.0.0, ::) is dialled on 127.0.0.1.
func loopbackOf(addr net.Addr) string {
	ta := addr.(*net.TCPAddr)
	if ta.IP.IsUnspecified() {
		return net.JoinHostPort("127.0.0.1", strconv.Itoa(ta.Port))
	}
	return ta.String()
}

// webOn is cfg with its status page on addr.
func webOn(cfg gateway.Config, addr string) gateway.Config {
	on := true
	cfg.Web.Addr = addr
	cfg.Web.Enabled = &on
	return cfg
}

// apiNodes returns the first page of /api/nodes.
func apiNodes(t *testing.T, webAddr string) []web.Node {
	t.Helper()
	var p web.Page
	getJSON(t, "http://"+webAddr+"/api/nodes", &p)
	return p.Nodes
}

// webToken is a token for tests, and tokenFile writes it to a file.
const webToken = "tether-test-token-0123456789"

func tokenFile(t *testing.T) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "web-token")
	if err := os.WriteFile(f, []byte(webToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

func bearer() http.Header { return http.Header{"Authorization": {"Bearer " + webToken}} }

// TestWebDefaultLoopback: with no address given, the status page, API
// and metrics listen on loopback only (issue 9: they listened on every
// interface, ":8080").
func TestWebDefaultLoopback(t *testing.T) {
	for _, addr := range []string{gateway.DefaultWebAddr} {
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			t.Fatal(err)
		}
		ip := net.ParseIP(host)
		if host != "localhost" && (ip == nil || !ip.IsLoopback()) {
			t.Errorf("DefaultWebAddr = %q: listens beyond loopback, without credentials", addr)
		}
	}
	cfg := gwConfig(t, gateway.BrokerNone)
	cfg.Web = gateway.WebConfig{}
	g, err := gateway.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	if got := g.Config().Web.Addr; got != gateway.DefaultWebAddr {
		t.Errorf("web addr by default = %q, want %q", got, gateway.DefaultWebAddr)
	}
}

// TestWebAnonymousBeyondLoopback: a status page on every interface with
// no credentials and no explicit opt-out does not serve anyone: the
// gateway refuses to start (issue 9: it served node IDs, addresses and
// counters to the whole LAN). With a token it serves only requests that
// carry it (Prometheus's bearer token included); with web.insecure it
// serves anyone and warns.
func TestWebAnonymousBeyondLoopback(t *testing.T) {
	ctx := testCtx(t)
	cfg := webOn(gwConfig(t, gateway.BrokerNone), "0.0.0.0:0")
	g, err := gateway.New(cfg)
	if err == nil {
		err = g.Start(ctx)
		if err == nil {
			n := dialNode(t, ctx, g.Addr().String(), "secret-node")
			_ = n
			code, body := webGet(t, ctx, g, "/api/status", "")
			g.Close()
			t.Fatalf("status page on 0.0.0.0 without credentials: served anonymously: %d %.200s", code, body)
		}
		g.Close()
	}
	t.Logf("refused: %v", err)
	if !strings.Contains(err.Error(), "credentials") && !strings.Contains(err.Error(), "token") {
		t.Errorf("refusal does not say what to do: %v", err)
	}

	cfg.Web.TokenFile = tokenFile(t)
	g = startGateway(t, cfg)
	dialNode(t, ctx, g.Addr().String(), "secret-node")
	if err := g.Server().Wait(ctx, "secret-node"); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/", "/api/status", "/api/nodes", "/api/nodes/secret-node", "/events", "/metrics"} {
		if code, body := webGet(t, ctx, g, path, ""); code != http.StatusUnauthorized {
			t.Errorf("anonymous GET %s on 0.0.0.0 with a token set: %d %.80q, want 401", path, code, body)
		}
		if code, body := webDo(t, ctx, g, "GET", path, "", bearer()); code != http.StatusOK {
			t.Errorf("GET %s with the token: %d %.80q, want 200", path, code, body)
		}
	}
	g.Close()

	rec := newLogRecorder()
	cfg.Web.TokenFile = ""
	cfg.Web.Insecure = true
	cfg.Logger = rec.logger()
	g = startGateway(t, cfg)
	if code, body := webGet(t, ctx, g, "/api/status", ""); code != http.StatusOK {
		t.Errorf("web.insecure: anonymous GET: %d %.80q, want 200", code, body)
	}
	rec.wait(t, ctx, "status page open to anyone who can reach it")
}

// TestWebCredentialsConfig: a token file that is missing, empty or too
// short, and a users file with a plain password, are refused at start,
// naming the setting.
func TestWebCredentialsConfig(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, c := range []struct {
		web  gateway.WebConfig
		want string
	}{
		{gateway.WebConfig{TokenFile: filepath.Join(dir, "none")}, "web.token_file"},
		{gateway.WebConfig{TokenFile: write("empty", "\n")}, "web.token_file"},
		{gateway.WebConfig{TokenFile: write("short", "abc\n")}, "at least 16"},
		{gateway.WebConfig{UsersFile: write("plain", "alice:secret\n")}, "web.users_file"},
		{gateway.WebConfig{MaxNodeMetrics: -2}, "web.max_node_metrics"},
		{gateway.WebConfig{Hosts: []string{"http://x/"}}, "web.hosts[0]"},
	} {
		cfg := gwConfig(t, gateway.BrokerNone)
		c.web.Addr = "127.0.0.1:0"
		cfg.Web = c.web
		g, err := gateway.New(cfg)
		if err == nil {
			g.Close()
			t.Errorf("%+v accepted", c.web)
			continue
		}
		if !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want it to name %s", c.web, err, c.want)
		}
	}
}

// TestWebSendAction: the page's one action on the gateway (a message to
// a node) is refused without credentials configured, without
// credentials, and to a request that another site makes a browser send;
// with the token, from the page's origin, the node gets the message.
func TestWebSendAction(t *testing.T) {
	ctx := testCtx(t)
	json := http.Header{"Content-Type": {"application/json"}}
	post := func(g *gateway.Gateway, hdr http.Header) (int, string) {
		t.Helper()
		return webPost(t, ctx, g, "/api/nodes/n1/send", hdr, `{"payload":"from the page"}`)
	}
	g := startGateway(t, webOn(gwConfig(t, gateway.BrokerNone), "127.0.0.1:0"))
	if code, body := post(g, json); code != http.StatusForbidden {
		t.Errorf("send, no credentials configured: %d %s, want 403", code, body)
	}
	cfg := webOn(gwConfig(t, gateway.BrokerNone), "127.0.0.1:0")
	cfg.Web.TokenFile = tokenFile(t)
	g = startGateway(t, cfg)
	n := dialNode(t, ctx, g.Addr().String(), "n1")
	if err := g.Server().Wait(ctx, "n1"); err != nil {
		t.Fatal(err)
	}
	origin := "http://" + g.WebAddr().String()
	for name, c := range map[string]struct {
		hdr  http.Header
		want int
	}{
		"no credentials": {json, http.StatusUnauthorized},
		"cross-site":     {merge(json, bearer(), http.Header{"Sec-Fetch-Site": {"cross-site"}, "Origin": {"http://attacker.example"}}), http.StatusForbidden},
		"foreign Origin": {merge(json, bearer(), http.Header{"Origin": {"http://attacker.example"}}), http.StatusForbidden},
		"form, not JSON": {merge(bearer(), http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}), http.StatusUnsupportedMediaType},
		"rebinding host": {merge(json, bearer(), http.Header{"Host": {"attacker.example"}}), http.StatusForbidden},
	} {
		if code, body := post(g, c.hdr); code != c.want {
			t.Errorf("send, %s: %d %s, want %d", name, code, body, c.want)
		}
	}
	if code, body := post(g, merge(json, bearer(), http.Header{"Sec-Fetch-Site": {"same-origin"}, "Origin": {origin}})); code != http.StatusAccepted {
		t.Fatalf("send from the page's origin with the token: %d %s, want 202", code, body)
	}
	n.expect(t, ctx, "from the page")
}

func merge(hs ...http.Header) http.Header {
	out := http.Header{}
	for _, h := range hs {
		for k, v := range h {
			out[k] = append(out[k], v...)
		}
	}
	return out
}

// TestWebHostCheck: a page on loopback answers only requests for
// localhost names and loopback IPs: a DNS-rebinding page (Host: its own
// name, resolved to 127.0.0.1) gets nothing (issue 9: it got the whole
// status).
func TestWebHostCheck(t *testing.T) {
	ctx := testCtx(t)
	g := startGateway(t, webOn(gwConfig(t, gateway.BrokerNone), "127.0.0.1:0"))
	dialNode(t, ctx, g.Addr().String(), "n1")
	port := strconv.Itoa(g.WebAddr().(*net.TCPAddr).Port)
	for _, host := range []string{"attacker.example:" + port, "attacker.example", "127.0.0.1.nip.io:" + port, "localhost.attacker.example:" + port, "192.168.1.10:" + port} {
		for _, path := range []string{"/api/status", "/metrics", "/", "/events"} {
			code, body := webGet(t, ctx, g, path, host)
			if code == http.StatusOK {
				t.Errorf("GET %s with Host %s: %d (served: %.80q)", path, host, code, body)
			}
		}
	}
	for _, host := range []string{"", "localhost:" + port, "127.0.0.1:" + port, "LOCALHOST:" + port, "localhost"} {
		if code, body := webGet(t, ctx, g, "/api/status", host); code != http.StatusOK {
			t.Errorf("GET /api/status with Host %q: %d %s, want 200", host, code, body)
		}
	}
}

// webPost POSTs body to path.
func webPost(t *testing.T, ctx context.Context, g *gateway.Gateway, path string, hdr http.Header, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, "POST", "http://"+loopbackOf(g.WebAddr())+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		if k == "Host" {
			req.Host = v[0]
			continue
		}
		req.Header[k] = v
	}
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestWebApproval: in approval mode the page lists a new ID and lets it
// in: refused cross-site or without the token (it stays pending), then
// approved with the token (the node gets in); forgetting it is refused
// while it is up and done once it is down.
func TestWebApproval(t *testing.T) {
	ctx := testCtx(t)
	cfg := webOn(gwConfig(t, gateway.BrokerNone), "127.0.0.1:0")
	cfg.Nodes.Expect = []string{"known"}
	cfg.Nodes.Approval = true
	cfg.Web.TokenFile = tokenFile(t)
	g := startGateway(t, cfg)
	if claim(t, ctx, g, "127.0.0.3", "newbie") {
		t.Fatal("a new ID was served in approval mode")
	}
	var st web.Status
	code, body := webDo(t, ctx, g, "GET", "/api/status", "", bearer())
	if err := json.Unmarshal([]byte(body), &st); err != nil || code != http.StatusOK {
		t.Fatalf("/api/status: %d %v %.200s", code, err, body)
	}
	if st.Pending == nil || st.Pending.Total != 1 || st.Pending.Nodes[0].ID != "newbie" || !strings.HasPrefix(st.Pending.Nodes[0].Remote, "127.0.0.3:") {
		t.Fatalf("pending on the page: %+v, want newbie from 127.0.0.3", st.Pending)
	}
	jsonCT := http.Header{"Content-Type": {"application/json"}}
	for name, c := range map[string]struct {
		hdr  http.Header
		want int
	}{
		"no credentials": {jsonCT, http.StatusUnauthorized},
		"cross-site":     {merge(jsonCT, bearer(), http.Header{"Sec-Fetch-Site": {"cross-site"}, "Origin": {"http://attacker.example"}}), http.StatusForbidden},
		"rebinding host": {merge(jsonCT, bearer(), http.Header{"Host": {"attacker.example"}}), http.StatusForbidden},
	} {
		if code, body := webPost(t, ctx, g, "/api/pending/newbie/approve", c.hdr, "{}"); code != c.want {
			t.Errorf("approve, %s: %d %s, want %d", name, code, body, c.want)
		}
	}
	if ps := g.Pending(); len(ps) != 1 {
		t.Fatalf("after refused approvals: pending %+v", ps)
	}

	nb, err := client.Dial(ctx, client.Config{ID: "newbie", Server: g.Addr().String(), Timeout: testT,
		ReconnectDelay: testT / 2, MaxReconnectDelay: testT / 2, Logger: testutil.Logger()})
	if err != nil {
		t.Fatal(err)
	}
	defer nb.Close()
	if code, body := webPost(t, ctx, g, "/api/pending/newbie/approve", merge(jsonCT, bearer()), "{}"); code != http.StatusOK {
		t.Fatalf("approve with the token: %d %s", code, body)
	}
	if err := nb.WaitUp(ctx); err != nil {
		t.Fatal(err)
	}
	if err := g.Server().Wait(ctx, "newbie"); err != nil {
		t.Fatal(err)
	}
	if code, body := webPost(t, ctx, g, "/api/nodes/newbie/forget", merge(jsonCT, bearer()), "{}"); code != http.StatusConflict {
		t.Errorf("forget an up node: %d %s, want 409", code, body)
	}
	l, err := g.Server().Lookup("newbie")
	if err != nil {
		t.Fatal(err)
	}
	evs := make(chan link.Event, 16)
	l.Notify(evs)
	nb.Close()
	for down := false; !down; {
		select {
		case ev := <-evs:
			down = ev.Kind == link.Down
		case <-ctx.Done():
			t.Fatalf("newbie not down: %v", ctx.Err())
		}
	}
	l.Stop(evs)
	if code, body := webPost(t, ctx, g, "/api/nodes/newbie/forget", merge(jsonCT, bearer()), "{}"); code != http.StatusOK {
		t.Fatalf("forget a down node: %d %s", code, body)
	}
	if _, err := g.Server().Lookup("newbie"); err == nil {
		t.Error("newbie still has a link after it was forgotten")
	}
}
