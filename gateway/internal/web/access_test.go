package web_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"golang.org/x/crypto/bcrypt"

	"github.com/tether-iot/tether/gateway/internal/web"
	"github.com/tether-iot/tether/internal/passwd"
)

const token = "0123456789abcdef-test-token"

// do sends a request and returns its status code, headers and body.
func do(t *testing.T, method, url, host string, hdr http.Header, body string) (int, http.Header, string) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
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
		return resp.StatusCode, resp.Header, ""
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, string(b)
}

func bearer(tok string) http.Header { return http.Header{"Authorization": {"Bearer " + tok}} }

func basic(user, pass string) http.Header {
	r, _ := http.NewRequest("GET", "/", nil)
	r.SetBasicAuth(user, pass)
	return http.Header{"Authorization": r.Header["Authorization"]}
}

// merge returns the union of headers.
func merge(hs ...http.Header) http.Header {
	out := http.Header{}
	for _, h := range hs {
		for k, v := range h {
			out[k] = append(out[k], v...)
		}
	}
	return out
}

func users(t *testing.T, lines ...string) *passwd.File {
	t.Helper()
	f, err := passwd.Parse(strings.NewReader(strings.Join(lines, "\n")))
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// TestCredentials: with a token and users, every route needs one of
// them; Prometheus's bearer token and a browser's Basic authentication
// (the token as the password, or a user's password) are accepted; each
// refusal is a 401 that asks for Basic authentication, and is counted.
func TestCredentials(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	// The cheapest cost: the test checks dozens of wrong passwords.
	h, err := bcrypt.GenerateFromPassword([]byte("wonderland"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	e := start(t, 300*time.Millisecond, web.Config{Token: token, Users: users(t, "alice:"+string(h))})
	e.dial(t, ctx, "n1")
	for _, path := range []string{"/", "/app.js", "/api/status", "/api/nodes", "/api/nodes/n1", "/events", "/metrics"} {
		for name, hdr := range map[string]http.Header{
			"none":             nil,
			"wrong bearer":     bearer(token + "x"),
			"wrong password":   basic("alice", "looking-glass"),
			"unknown user":     basic("mallory", "wonderland"),
			"token too short":  bearer(token[:10]),
			"bearer, no token": {"Authorization": {"Bearer"}},
		} {
			code, h, body := do(t, "GET", e.url+path, "", hdr, "")
			if code != http.StatusUnauthorized {
				t.Errorf("GET %s with %s: %d %.80q, want 401", path, name, code, body)
			}
			if !strings.HasPrefix(h.Get("WWW-Authenticate"), "Basic ") {
				t.Errorf("GET %s with %s: WWW-Authenticate %q, want Basic", path, name, h.Values("WWW-Authenticate"))
			}
		}
		for name, hdr := range map[string]http.Header{
			"bearer":            bearer(token),
			"token as password": basic("", token),
			"user":              basic("alice", "wonderland"),
		} {
			if code, _, body := do(t, "GET", e.url+path, "", hdr, ""); code != http.StatusOK {
				t.Errorf("GET %s with %s: %d %.200s, want 200", path, name, code, body)
			}
		}
	}
	// A user's password is checked once, then remembered: a second
	// request does not pay bcrypt again (not timed: it must just pass).
	if code, _, _ := do(t, "GET", e.url+"/api/status", "", basic("alice", "wonderland"), ""); code != http.StatusOK {
		t.Errorf("second request of alice: %d", code)
	}
	if err := testutil.ScrapeAndCompare(e.url+"/metrics", nil, "tether_web_refused_total"); err == nil {
		t.Error("anonymous scrape passed")
	}
	_, _, body := do(t, "GET", e.url+"/metrics", "", bearer(token), "")
	// 7 paths × 6 bad credentials, and the anonymous scrape.
	if !strings.Contains(body, `tether_web_refused_total{reason="credentials"} 43`) {
		t.Errorf("/metrics: refusals not counted (want 43 credentials):\n%s", grep(body, "tether_web_refused_total"))
	}
}

func grep(s, substr string) string {
	var out []string
	for line := range strings.SplitSeq(s, "\n") {
		if strings.Contains(line, substr) {
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
}

// TestHost: on a loopback address only localhost names, loopback
// addresses and the configured names are served: a DNS-rebinding page
// whose name resolves to 127.0.0.1 is refused (403, counted), even with
// the right credentials.
func TestHost(t *testing.T) {
	e := start(t, 300*time.Millisecond, web.Config{Hosts: []string{"Tether.Example.NET."}})
	port := e.url[strings.LastIndex(e.url, ":")+1:]
	for _, host := range []string{"attacker.example", "attacker.example:" + port, "localhost.attacker.example:" + port,
		"127.0.0.1.nip.io", "192.168.1.10:" + port, "[fe80::1]:" + port, "tether.example.net.attacker.example", "0.0.0.0:" + port} {
		for _, path := range []string{"/", "/api/status", "/events", "/metrics"} {
			if code, _, body := do(t, "GET", e.url+path, host, nil, ""); code != http.StatusForbidden {
				t.Errorf("GET %s with Host %s: %d %.80q, want 403", path, host, code, body)
			}
		}
	}
	for _, host := range []string{"localhost", "localhost:" + port, "LocalHost.:" + port, "tether.localhost:" + port,
		"127.0.0.1:" + port, "127.1.2.3", "[::1]:" + port, "tether.example.net:" + port, "TETHER.example.net"} {
		if code, _, body := do(t, "GET", e.url+"/api/status", host, nil, ""); code != http.StatusOK {
			t.Errorf("GET /api/status with Host %s: %d %.80q, want 200", host, code, body)
		}
	}
	_, _, body := do(t, "GET", e.url+"/metrics", "", nil, "")
	if !strings.Contains(body, `tether_web_refused_total{reason="host"} 32`) {
		t.Errorf("/metrics: refusals not counted (want 32 host):\n%s", grep(body, "tether_web_refused_total"))
	}
}

// sendRecorder is a Config.Send that records what it is given.
type sendRecorder struct {
	mu  sync.Mutex
	got []string
}

func (s *sendRecorder) send(ctx context.Context, id, payload string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if payload == "fail" {
		return errors.New("queue full")
	}
	s.got = append(s.got, id+"\t"+payload)
	return nil
}

func (s *sendRecorder) sent() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.got...)
}

// TestSendAction: sending to a node from the page is an action: refused
// without credentials configured, without credentials given, to a
// request that another site makes a browser send (form or fetch), and
// to a body that is not JSON; accepted from the page's own origin or
// from a client that is not a browser.
func TestSendAction(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	json := http.Header{"Content-Type": {"application/json"}}
	const body = `{"payload":"hello"}`

	// No credentials configured: actions are refused, reads are not.
	var rec sendRecorder
	open := start(t, 300*time.Millisecond, web.Config{Send: rec.send})
	open.dial(t, ctx, "n1")
	if code, _, msg := do(t, "POST", open.url+"/api/nodes/n1/send", "", json, body); code != http.StatusForbidden || !strings.Contains(msg, "credentials") {
		t.Errorf("send without credentials configured: %d %s, want 403 saying credentials are needed", code, msg)
	}
	var st web.Status
	get(t, open.url+"/api/status", http.StatusOK, &st)
	if st.Auth || len(st.Actions) != 1 || st.Actions[0] != "send" {
		t.Errorf("status: auth %v, actions %v; want false, [send]", st.Auth, st.Actions)
	}

	e := start(t, 300*time.Millisecond, web.Config{Token: token, Send: rec.send})
	e.dial(t, ctx, "n1")
	e.dial(t, ctx, "a/b")
	url := e.url + "/api/nodes/n1/send"
	origin := e.url
	for name, c := range map[string]struct {
		hdr  http.Header
		body string
		want int
	}{
		"no credentials":       {json, body, http.StatusUnauthorized},
		"wrong token":          {merge(json, bearer(token+"!")), body, http.StatusUnauthorized},
		"cross-site form":      {merge(bearer(token), http.Header{"Content-Type": {"application/x-www-form-urlencoded"}, "Sec-Fetch-Site": {"cross-site"}, "Origin": {"http://attacker.example"}}), "payload=hello", http.StatusForbidden},
		"cross-site fetch":     {merge(json, bearer(token), http.Header{"Sec-Fetch-Site": {"cross-site"}, "Origin": {"http://attacker.example"}}), body, http.StatusForbidden},
		"same-site subdomain":  {merge(json, bearer(token), http.Header{"Sec-Fetch-Site": {"same-site"}, "Origin": {"http://evil.localhost"}}), body, http.StatusForbidden},
		"foreign Origin":       {merge(json, bearer(token), http.Header{"Origin": {"http://attacker.example"}}), body, http.StatusForbidden},
		"text/plain":           {merge(bearer(token), http.Header{"Content-Type": {"text/plain"}}), body, http.StatusUnsupportedMediaType},
		"not JSON":             {merge(json, bearer(token)), "hello", http.StatusBadRequest},
		"empty payload":        {merge(json, bearer(token)), `{"payload":""}`, http.StatusBadRequest},
		"too long":             {merge(json, bearer(token)), `{"payload":"` + strings.Repeat("x", 4097) + `"}`, http.StatusBadRequest},
		"send fails":           {merge(json, bearer(token)), `{"payload":"fail"}`, http.StatusConflict},
		"page's own origin":    {merge(json, basic("", token), http.Header{"Sec-Fetch-Site": {"same-origin"}, "Origin": {origin}}), body, http.StatusAccepted},
		"a client, no browser": {merge(json, bearer(token)), body, http.StatusAccepted},
	} {
		if code, _, msg := do(t, "POST", url, "", c.hdr, c.body); code != c.want {
			t.Errorf("%s: %d %s, want %d", name, code, msg, c.want)
		}
	}
	if code, _, msg := do(t, "POST", e.url+"/api/nodes/nope/send", "", merge(json, bearer(token)), body); code != http.StatusNotFound {
		t.Errorf("send to an unknown node: %d %s, want 404", code, msg)
	}
	if code, _, msg := do(t, "POST", e.url+"/api/nodes/a%2Fb/send", "", merge(json, bearer(token)), `{"payload":"slash"}`); code != http.StatusAccepted {
		t.Errorf("send to a/b: %d %s, want 202", code, msg)
	}
	if got, want := rec.sent(), []string{"n1\thello", "n1\thello", "a/b\tslash"}; strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("sent %q, want %q", got, want)
	}
	_, _, m := do(t, "GET", e.url+"/metrics", "", bearer(token), "")
	for _, want := range []string{`reason="cross_origin"} 4`, `reason="credentials"} 2`, `reason="content_type"} 1`} {
		if !strings.Contains(m, want) {
			t.Errorf("/metrics lacks tether_web_refused_total{%s:\n%s", want, grep(m, "tether_web_refused_total"))
		}
	}
}

// logBuffer is a slog handler's output, safe for concurrent use.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestListenerBeyondLoopback: Serve refuses a listener on every
// interface without credentials; with Insecure it serves and warns; with
// a token it serves only with the token.
func TestListenerBeyondLoopback(t *testing.T) {
	listen := func() net.Listener {
		ln, err := net.Listen("tcp", "0.0.0.0:0")
		if err != nil {
			t.Fatal(err)
		}
		return ln
	}
	url := func(ln net.Listener) string {
		return "http://127.0.0.1:" + strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	}

	ws, err := web.New(web.Config{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	ln := listen()
	if err := ws.CheckListener(ln.Addr()); !errors.Is(err, web.ErrNoCredentials) {
		t.Errorf("CheckListener(%v) = %v, want ErrNoCredentials", ln.Addr(), err)
	}
	if err := ws.Serve(context.Background(), ln); !errors.Is(err, web.ErrNoCredentials) || !strings.Contains(err.Error(), "insecure") {
		t.Errorf("Serve on %v without credentials: %v, want ErrNoCredentials saying what to do", ln.Addr(), err)
	}
	if _, err := net.Dial("tcp", strings.TrimPrefix(url(ln), "http://")); err == nil {
		t.Error("the refused listener still accepts")
	}

	for _, c := range []struct {
		name string
		cfg  web.Config
		anon int
		warn bool
	}{
		{"insecure", web.Config{Insecure: true}, http.StatusOK, true},
		{"token", web.Config{Token: token}, http.StatusUnauthorized, false},
	} {
		var logs logBuffer
		c.cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))
		ws, err := web.New(c.cfg)
		if err != nil {
			t.Fatal(err)
		}
		ln := listen()
		done := make(chan error, 1)
		go func() { done <- ws.Serve(context.Background(), ln) }()
		if code, _, body := do(t, "GET", url(ln)+"/api/status", "", nil, ""); code != c.anon {
			t.Errorf("%s: anonymous GET: %d %.80q, want %d", c.name, code, body, c.anon)
		}
		if code, _, _ := do(t, "GET", url(ln)+"/api/status", "", bearer(token), ""); c.cfg.Token != "" && code != http.StatusOK {
			t.Errorf("%s: GET with the token: %d, want 200", c.name, code)
		}
		ws.Close()
		if err := <-done; !errors.Is(err, web.ErrServerClosed) {
			t.Errorf("%s: Serve: %v", c.name, err)
		}
		if got := strings.Contains(logs.String(), "open to anyone"); got != c.warn {
			t.Errorf("%s: warning logged %v, want %v:\n%s", c.name, got, c.warn, logs.String())
		}
	}

	for _, cfg := range []web.Config{{Token: "short"}, {Token: token + " x"}, {Hosts: []string{"a/b"}}, {MaxPayload: -1}} {
		if ws, err := web.New(cfg); err == nil {
			ws.Close()
			t.Errorf("New(%+v) accepted", cfg)
		}
	}
}

// TestPasswordBudget: a flood of wrong passwords may spend a bounded
// share of the CPU on bcrypt: past it the guesses are refused at once
// (503, Retry-After, counted as busy) without a check, while a password
// checked before and the token still pass.
func TestPasswordBudget(t *testing.T) {
	h, err := bcrypt.GenerateFromPassword([]byte("wonderland"), 8)
	if err != nil {
		t.Fatal(err)
	}
	e := start(t, 300*time.Millisecond, web.Config{Token: token, Users: users(t, "alice:"+string(h))})
	if code, _, _ := do(t, "GET", e.url+"/api/status", "", basic("alice", "wonderland"), ""); code != http.StatusOK {
		t.Fatalf("alice before the flood: %d", code)
	}
	// Cost 8 is about 15 ms a check here (much more under -race): up to
	// 400 guesses, until three were refused without a check.
	busy, guesses := 0, 0
	for i := 0; i < 400 && busy < 3; i++ {
		guesses++
		code, hdr, body := do(t, "GET", e.url+"/api/status", "", basic("alice", fmt.Sprint("guess ", i)), "")
		switch code {
		case http.StatusUnauthorized:
		case http.StatusServiceUnavailable:
			busy++
			if hdr.Get("Retry-After") == "" {
				t.Errorf("503 without Retry-After: %s", body)
			}
		default:
			t.Fatalf("guess %d: %d %s", i, code, body)
		}
	}
	if busy == 0 {
		t.Errorf("%d checks at bcrypt cost 8 were all made: no budget", guesses)
	}
	for name, hdr := range map[string]http.Header{"alice (remembered)": basic("alice", "wonderland"), "token": bearer(token)} {
		if code, _, body := do(t, "GET", e.url+"/api/status", "", hdr, ""); code != http.StatusOK {
			t.Errorf("%s after the flood: %d %s", name, code, body)
		}
	}
	_, _, m := do(t, "GET", e.url+"/metrics", "", bearer(token), "")
	if want := fmt.Sprintf(`tether_web_refused_total{reason="busy"} %d`, busy); !strings.Contains(m, want) {
		t.Errorf("/metrics lacks %s:\n%s", want, grep(m, "tether_web_refused_total"))
	}
	t.Logf("%d of %d wrong passwords refused without a check", busy, guesses)
}

func jsonUnmarshal(s string, v any) error { return json.Unmarshal([]byte(s), v) }
