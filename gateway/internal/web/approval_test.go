package web_test

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tether-iot/tether/gateway/internal/web"
)

// approvals is a fake approval list: Config.Pending, Approve, Deny and
// Forget.
type approvals struct {
	mu        sync.Mutex
	pending   []string
	approved  []string
	denied    []string
	forgotten []string
}

func (a *approvals) list() web.Pending {
	a.mu.Lock()
	defer a.mu.Unlock()
	var p web.Pending
	for i, id := range a.pending {
		p.Nodes = append(p.Nodes, web.PendingNode{ID: id, Remote: "192.0.2.7:4000", First: time.Unix(1e9, 0), Last: time.Now(), Attempts: i + 1})
	}
	p.Dropped = 3
	return p
}

func (a *approvals) verdict(to *[]string) func(string) error {
	return func(id string) error {
		if id == "bad id" {
			return errors.New("invalid ID")
		}
		a.mu.Lock()
		defer a.mu.Unlock()
		*to = append(*to, id)
		a.pending = slices.DeleteFunc(a.pending, func(p string) bool { return p == id })
		return nil
	}
}

func (a *approvals) forget(ctx context.Context, id string) (int, int, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if id == "n1" {
		return 0, 0, errors.New("gateway: the node is connected")
	}
	a.forgotten = append(a.forgotten, id)
	return 2, 1, nil
}

func (a *approvals) got() (approved, denied, forgotten []string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.approved), slices.Clone(a.denied), slices.Clone(a.forgotten)
}

func (a *approvals) config(cfg web.Config) web.Config {
	cfg.Pending = a.list
	cfg.Approve = a.verdict(&a.approved)
	cfg.Deny = a.verdict(&a.denied)
	cfg.Forget = a.forget
	return cfg
}

// TestApprovalActions: the approval list is in /api/status and at
// /api/pending; approve, deny and forget are actions: refused without
// credentials configured or given, and cross-site; with the token they
// reach the gateway.
func TestApprovalActions(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	json := http.Header{"Content-Type": {"application/json"}}
	ok := merge(json, bearer(token))

	open := &approvals{pending: []string{"newbie"}}
	o := start(t, 300*time.Millisecond, open.config(web.Config{}))
	for _, path := range []string{"/api/pending/newbie/approve", "/api/pending/newbie/deny", "/api/nodes/newbie/forget"} {
		if code, _, body := do(t, "POST", o.url+path, "", json, "{}"); code != http.StatusForbidden {
			t.Errorf("POST %s, no credentials configured: %d %s, want 403", path, code, body)
		}
	}

	a := &approvals{pending: []string{"newbie", "other", "a/b"}}
	e := start(t, 300*time.Millisecond, a.config(web.Config{Token: token, Offline: func() []string { return []string{"gone"} }}))
	e.dial(t, ctx, "n1")
	var st web.Status
	get(t, e.url+"/api/status?access_token=x", http.StatusUnauthorized, nil)
	_, _, body := do(t, "GET", e.url+"/api/status", "", bearer(token), "")
	if err := jsonUnmarshal(body, &st); err != nil {
		t.Fatal(err)
	}
	if p := st.Pending; p == nil || p.Total != 3 || p.Dropped != 3 || len(p.Nodes) != 3 || p.Nodes[0].ID != "newbie" || p.Nodes[1].Attempts != 2 {
		t.Errorf("status pending = %+v, want newbie, other, a/b; 3 dropped", st.Pending)
	}
	if !slices.Equal(st.Actions, []string{"forget", "approve", "deny"}) || !st.Auth {
		t.Errorf("actions %v auth %v, want forget approve deny, true", st.Actions, st.Auth)
	}
	var p web.Pending
	_, _, body = do(t, "GET", e.url+"/api/pending", "", bearer(token), "")
	if err := jsonUnmarshal(body, &p); err != nil || p.Total != 3 {
		t.Errorf("/api/pending: %s", body)
	}

	cross := http.Header{"Sec-Fetch-Site": {"cross-site"}, "Origin": {"http://attacker.example"}}
	for _, path := range []string{"/api/pending/newbie/approve", "/api/pending/newbie/deny", "/api/nodes/gone/forget"} {
		for name, c := range map[string]struct {
			hdr  http.Header
			body string
			want int
		}{
			"no credentials": {json, "{}", http.StatusUnauthorized},
			"cross-site":     {merge(ok, cross), "{}", http.StatusForbidden},
			"a form":         {merge(bearer(token), http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}), "id=newbie", http.StatusUnsupportedMediaType},
			"not an object":  {ok, "[1]", http.StatusBadRequest},
		} {
			if code, _, body := do(t, "POST", e.url+path, "", c.hdr, c.body); code != c.want {
				t.Errorf("POST %s, %s: %d %s, want %d", path, name, code, body, c.want)
			}
		}
	}
	if ap, de, fo := a.got(); len(ap)+len(de)+len(fo) != 0 {
		t.Fatalf("refused actions reached the gateway: %v %v %v", ap, de, fo)
	}

	for _, c := range []struct {
		path, body string
		want       int
	}{
		{"/api/pending/newbie/approve", "{}", http.StatusOK},
		{"/api/pending/a%2Fb/deny", "", http.StatusOK},
		{"/api/pending/bad%20id/approve", "{}", http.StatusBadRequest},
		{"/api/nodes/gone/forget", `{"why":"typo"}`, http.StatusOK},
		{"/api/nodes/n1/forget", "{}", http.StatusConflict},
		{"/api/nodes/nope/forget", "{}", http.StatusNotFound},
	} {
		if code, _, body := do(t, "POST", e.url+c.path, "", ok, c.body); code != c.want {
			t.Errorf("POST %s: %d %s, want %d", c.path, code, body, c.want)
		}
	}
	ap, de, fo := a.got()
	if !slices.Equal(ap, []string{"newbie"}) || !slices.Equal(de, []string{"a/b"}) || !slices.Equal(fo, []string{"gone"}) {
		t.Errorf("approved %v, denied %v, forgotten %v; want newbie, a/b, gone", ap, de, fo)
	}
	_, _, body = do(t, "GET", e.url+"/api/status", "", bearer(token), "")
	if !strings.Contains(body, `"total": 1`) || strings.Contains(body, `"id": "newbie"`) {
		t.Errorf("status after the verdicts still lists newbie:\n%.400s", body)
	}
}
