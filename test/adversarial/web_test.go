package adversarial

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"golang.org/x/crypto/bcrypt"

	"github.com/tether-iot/tether/client"
	"github.com/tether-iot/tether/gateway"
)

// Attacks on the status page: event stream floods, slow HTTP clients.

// webRequest opens a connection to the status page and writes req.
func (h *harness) webRequest(ctx context.Context, from, req string) (net.Conn, error) {
	addr := strings.TrimPrefix(h.webURL, "http://")
	c, err := dialFrom(ctx, from, addr)
	if err != nil {
		return nil, err
	}
	if _, err := c.Write([]byte(req)); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// hold waits d or until ctx ends.
func hold(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// TestSSEFlood: hundreds of browsers open the event stream and never
// read it while the honest node's traffic makes updates; then they leave.
func TestSSEFlood(t *testing.T) {
	h := start(t, options{})
	host := strings.TrimPrefix(h.webURL, "http://")
	var e errs
	h.attack(func(ctx context.Context) {
		var cs conns
		defer cs.closeAll()
		parallel(4, func(i int) {
			for range 50 {
				c, err := h.webRequest(ctx, source(i), fmt.Sprintf("GET /events HTTP/1.1\r\nHost: %s\r\nAccept: text/event-stream\r\n\r\n", host))
				if err != nil {
					e.add(err)
					return
				}
				cs.add(c)
			}
		})
		hold(ctx, 4*T)
	})
	e.check(t)
}

// TestSlowHTTPClients: slowloris: hundreds of connections that send
// their request headers a byte at a time, and others that request the
// page, the API and the metrics and never read the answers.
func TestSlowHTTPClients(t *testing.T) {
	h := start(t, options{})
	host := strings.TrimPrefix(h.webURL, "http://")
	var e errs
	h.attack(func(ctx context.Context) {
		var cs conns
		defer cs.closeAll()
		parallel(4, func(i int) {
			for k := range 50 {
				req := "GET / HTTP/1.1\r\nHost: " + host + "\r\nX-Slow: "
				if k%2 == 1 {
					path := []string{"/", "/api/status", "/metrics", "/api/nodes"}[k%4]
					req = fmt.Sprintf("GET %s HTTP/1.1\r\nHost: %s\r\n\r\n", path, host)
				}
				c, err := h.webRequest(ctx, source(i), req)
				if err != nil {
					e.add(err)
					return
				}
				cs.add(c)
			}
		})
		for range 4 {
			hold(ctx, T)
			cs.mu.Lock()
			for _, c := range cs.cs {
				c.Write([]byte("a"))
			}
			cs.mu.Unlock()
		}
	})
	e.check(t)
}

// Access to the status page (issue 9): DNS rebinding, password guessing,
// anonymous reads beyond loopback, cross-site actions.

// webToken is the status page's token in the cases that set one.
const webToken = "adversarial-web-token-0123456789"

// withWebToken configures the status page on addr with webToken (and,
// if users is not empty, a users file with one user).
func withWebToken(t *testing.T, addr string, users bool) func(*gateway.Config) {
	dir := t.TempDir()
	tok := filepath.Join(dir, "token")
	if err := os.WriteFile(tok, []byte(webToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var usersFile string
	if users {
		// Cost 8, not the default 10: the test builds with -race, where
		// each check is 20 times slower.
		h, err := bcrypt.GenerateFromPassword([]byte("correct horse battery staple"), 8)
		if err != nil {
			t.Fatal(err)
		}
		usersFile = filepath.Join(dir, "users")
		if err := os.WriteFile(usersFile, []byte("alice:"+string(h)+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return func(c *gateway.Config) {
		c.Web.Addr = addr
		c.Web.TokenFile = tok
		c.Web.UsersFile = usersFile
	}
}

// webClient is an HTTP client whose connections come from the loopback
// address from; close it with CloseIdleConnections.
func webClient(from string) *http.Client {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
	return &http.Client{Transport: &http.Transport{DialContext: d.DialContext}, Timeout: 20 * time.Second}
}

// webCall sends one request to the status page and returns its status
// code (the body is read and dropped; an event stream is not read).
func (h *harness) webCall(ctx context.Context, c *http.Client, method, path, host string, hdr http.Header, body string) (int, error) {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, h.webURL+path, rd)
	if err != nil {
		return 0, err
	}
	if host != "" {
		req.Host = host
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.Header.Get("Content-Type") != "text/event-stream" {
		io.Copy(io.Discard, resp.Body)
	}
	return resp.StatusCode, nil
}

// expectCode runs a request and records an error unless it is answered
// with want.
func (h *harness) expectCode(ctx context.Context, e *errs, c *http.Client, want int, method, path, host string, hdr http.Header, body string) {
	h.expectCodes(ctx, e, c, []int{want}, method, path, host, hdr, body)
}

// expectCodes runs a request and records an error unless it is answered
// with one of want.
func (h *harness) expectCodes(ctx context.Context, e *errs, c *http.Client, want []int, method, path, host string, hdr http.Header, body string) {
	code, err := h.webCall(ctx, c, method, path, host, hdr, body)
	if err != nil {
		e.add(err)
		return
	}
	if !slices.Contains(want, code) {
		e.add(fmt.Errorf("%s %s (Host %q, %v): %d, want %v", method, path, host, hdr, code, want))
	}
}

// TestWebDNSRebinding: pages whose names resolve to 127.0.0.1 ask for
// every route of the status page: each request is refused (403), while
// requests for localhost are served.
func TestWebDNSRebinding(t *testing.T) {
	h := start(t, options{})
	port := h.webURL[strings.LastIndex(h.webURL, ":")+1:]
	var e errs
	h.attack(func(ctx context.Context) {
		parallel(4, func(i int) {
			c := webClient(source(i))
			defer c.CloseIdleConnections()
			for k := range 25 {
				host := []string{"attacker.example", "rebind.attacker.example:" + port, "127.0.0.1.nip.io:" + port, "localhost.attacker.example"}[k%4]
				path := []string{"/", "/api/status", "/api/nodes/" + honestID, "/metrics", "/events"}[k%5]
				h.expectCode(ctx, &e, c, http.StatusForbidden, "GET", path, host, nil, "")
			}
			h.expectCode(ctx, &e, c, http.StatusOK, "GET", "/api/status", "localhost:"+port, nil, "")
		})
	})
	e.check(t)
	if !strings.Contains(h.logs.text(), "status page: request refused") {
		t.Error("refusals not logged")
	}
}

// TestWebBeyondLoopback: the page on every interface with a token and
// users: anonymous reads and wrong tokens are refused at once; a flood
// of wrong passwords (each a bcrypt check) is refused (401, or 503 once
// password checks have used their share of the CPU) without stalling
// the honest node; the token, and a password checked before the flood,
// still work.
func TestWebBeyondLoopback(t *testing.T) {
	h := start(t, options{configure: withWebToken(t, "0.0.0.0:0", true)})
	h.webURL = "http://127.0.0.1" + h.webURL[strings.LastIndex(h.webURL, ":"):]
	auth := func(user, pass string) http.Header {
		r, _ := http.NewRequest("GET", "/", nil)
		r.SetBasicAuth(user, pass)
		return r.Header
	}
	alice := auth("alice", "correct horse battery staple")
	var e errs
	c := webClient(source(0))
	h.expectCode(h.ctx, &e, c, http.StatusOK, "GET", "/api/status", "", alice, "")
	c.CloseIdleConnections()
	h.attack(func(ctx context.Context) {
		parallel(4, func(i int) {
			c := webClient(source(i))
			defer c.CloseIdleConnections()
			for k := range 20 {
				path := []string{"/", "/api/status", "/metrics", "/events"}[k%4]
				h.expectCode(ctx, &e, c, http.StatusUnauthorized, "GET", path, "", nil, "")
				h.expectCode(ctx, &e, c, http.StatusUnauthorized, "GET", path, "", http.Header{"Authorization": {"Bearer " + webToken[:len(webToken)-1] + "x"}}, "")
			}
			for k := range 10 {
				h.expectCodes(ctx, &e, c, []int{http.StatusUnauthorized, http.StatusServiceUnavailable}, "GET", "/api/status", "", auth("alice", fmt.Sprint("guess ", i, k)), "")
			}
			h.expectCode(ctx, &e, c, http.StatusOK, "GET", "/metrics", "", http.Header{"Authorization": {"Bearer " + webToken}}, "")
			h.expectCode(ctx, &e, c, http.StatusOK, "GET", "/api/status", "", alice, "")
		})
	})
	e.check(t)
}

// TestWebCrossSiteActions: another site's page makes the browser post
// messages to the honest node (the browser has the token, or not): every
// post is refused, and the honest node receives nothing but its own
// traffic (the down stream would show a stranger's message).
func TestWebCrossSiteActions(t *testing.T) {
	h := start(t, options{configure: withWebToken(t, "127.0.0.1:0", false)})
	path := "/api/nodes/" + honestID + "/send"
	tok := http.Header{"Authorization": {"Bearer " + webToken}}
	json := http.Header{"Content-Type": {"application/json"}}
	cross := http.Header{"Sec-Fetch-Site": {"cross-site"}, "Origin": {"http://attacker.example"}}
	form := http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}
	join := func(hs ...http.Header) http.Header {
		out := http.Header{}
		for _, h := range hs {
			for k, v := range h {
				out[k] = v
			}
		}
		return out
	}
	var e errs
	h.attack(func(ctx context.Context) {
		parallel(4, func(i int) {
			c := webClient(source(i))
			defer c.CloseIdleConnections()
			for range 10 {
				h.expectCode(ctx, &e, c, http.StatusForbidden, "POST", path, "", join(tok, json, cross), `{"payload":"x1"}`)
				h.expectCode(ctx, &e, c, http.StatusForbidden, "POST", path, "", join(tok, form, cross), "payload=x1")
				h.expectCode(ctx, &e, c, http.StatusForbidden, "POST", path, "", join(tok, json, http.Header{"Origin": {"http://attacker.example"}}), `{"payload":"x1"}`)
				h.expectCode(ctx, &e, c, http.StatusUnauthorized, "POST", path, "", join(json, cross), `{"payload":"x1"}`)
				h.expectCode(ctx, &e, c, http.StatusUnauthorized, "POST", path, "", json, `{"payload":"x1"}`)
				h.expectCode(ctx, &e, c, http.StatusForbidden, "POST", path, "attacker.example", join(tok, json), `{"payload":"x1"}`)
			}
		})
	})
	e.check(t)
}

// TestWebCrossSiteApproval: in approval mode an intruder's ID waits for
// approval while another site's page makes the operator's browser (which
// holds the token) post approvals for it and ask to forget nodes: every
// post is refused, and the intruder stays pending, never served.
func TestWebCrossSiteApproval(t *testing.T) {
	token := withWebToken(t, "127.0.0.1:0", false)
	h := start(t, options{configure: func(c *gateway.Config) {
		token(c)
		c.Nodes.Expect = []string{honestID}
		c.Nodes.Approval = true
	}})
	claimOnce := func(ctx context.Context) {
		c, err := dialFrom(ctx, source(1), h.nodeAddr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.Write([]byte("intruder\n"))
		if err := waitClosedByPeer(c, 10*time.Second); err != nil {
			t.Errorf("intruder's claim: %v", err)
		}
	}
	claimOnce(h.ctx)
	if ps := h.g.Pending(); len(ps) != 1 || ps[0].ID != "intruder" {
		t.Fatalf("pending %+v, want the intruder", ps)
	}
	tok := http.Header{"Authorization": {"Bearer " + webToken}, "Content-Type": {"application/json"}}
	cross := []http.Header{
		{"Sec-Fetch-Site": {"cross-site"}, "Origin": {"http://attacker.example"}},
		{"Sec-Fetch-Site": {"same-site"}, "Origin": {"http://evil.localhost"}},
		{"Origin": {"http://attacker.example"}},
	}
	var e errs
	h.attack(func(ctx context.Context) {
		parallel(4, func(i int) {
			c := webClient(source(i))
			defer c.CloseIdleConnections()
			for k := range 12 {
				hdr := http.Header{}
				for name, v := range tok {
					hdr[name] = v
				}
				for name, v := range cross[k%3] {
					hdr[name] = v
				}
				path := []string{"/api/pending/intruder/approve", "/api/nodes/" + honestID + "/forget", "/api/pending/" + honestID + "/deny"}[k%3]
				h.expectCode(ctx, &e, c, http.StatusForbidden, "POST", path, "", hdr, "{}")
			}
		})
		claimOnce(ctx)
	})
	e.check(t)
	if ps := h.g.Pending(); len(ps) != 1 || ps[0].ID != "intruder" || ps[0].Attempts != 2 {
		t.Errorf("pending after the attack %+v, want the intruder still waiting, 2 attempts", ps)
	}
	if _, err := h.g.Server().Lookup("intruder"); err == nil {
		t.Error("the intruder was served")
	}
}

// TestHostileMessagesOnPage (issue 12, the status page): nodes send the
// longest lines they may, full of markup, a bidirectional override and
// terminal escapes, under look-alike IDs: the page keeps the first 1 KiB
// of each node's last message (not 4 KiB a node), says how long it was,
// and serves it as JSON text under its CSP, while the honest node's
// traffic goes on.
func TestHostileMessagesOnPage(t *testing.T) {
	h := start(t, options{})
	const nodes, each = 20, 5
	payload := func(i, k int) string {
		p := fmt.Sprintf(`<script>alert(%d)</script><img src=x onerror="fetch('//evil')"> `, k) + "\u202e\x1b[2J\x1b]0;owned\x07 "
		return p + strings.Repeat("é<b>", (3900-len(p))/5)
	}
	id := func(i int) string { return fmt.Sprintf("h\u043estile-%02d", i) } // Cyrillic о
	var e errs
	h.attack(func(ctx context.Context) {
		parallel(4, func(w int) {
			for i := w; i < nodes; i += 4 {
				c, err := client.Dial(ctx, client.Config{ID: id(i), Server: h.nodeAddr, Timeout: T, Logger: slog.New(h.logs)})
				if err != nil {
					e.add(err)
					return
				}
				for k := range each {
					if err := c.Write(ctx, payload(i, k)); err != nil {
						e.add(err)
						break
					}
				}
				e.add(c.Drain(ctx))
				c.Close()
			}
		})
	})
	e.check(t)

	c := webClient("127.0.0.1")
	defer c.CloseIdleConnections()
	for i := range nodes {
		var n struct {
			LastMessage *struct {
				Text  string `json:"text"`
				Bytes int    `json:"bytes"`
			} `json:"last_message"`
		}
		resp, err := c.Get(h.webURL + "/api/nodes/" + url.PathEscape(id(i)))
		if err != nil {
			t.Fatal(err)
		}
		err = json.NewDecoder(resp.Body).Decode(&n)
		resp.Body.Close()
		if err != nil {
			t.Fatalf("%s: %v", id(i), err)
		}
		want := payload(i, each-1)
		switch m := n.LastMessage; {
		case m == nil:
			t.Errorf("%s: no last message", id(i))
		case len(m.Text) > 1024 || !utf8.ValidString(m.Text) || !strings.HasPrefix(want, m.Text) || len(m.Text) < 1020:
			t.Errorf("%s: last message of %d bytes shown as %d bytes: want its first 1 KiB, cut at a character", id(i), len(want), len(m.Text))
		case m.Bytes != len(want):
			t.Errorf("%s: last message said to be %d bytes, want %d", id(i), m.Bytes, len(want))
		}
	}
	resp, err := c.Get(h.webURL + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") {
		t.Errorf("the page's CSP %q does not keep scripts to its own", csp)
	}
}
