package web_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tether-iot/tether/gateway/internal/web"
)

func ids(nodes []web.Node) []string {
	out := make([]string, len(nodes))
	for i, n := range nodes {
		out[i] = n.ID
	}
	return out
}

// offIDs returns off-1 ... off-n.
func offIDs(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("off-%d", i+1)
	}
	return out
}

// TestQuery: the API pages, searches and filters by state on the
// server, in natural ID order (n2 before n10).
func TestQuery(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	off := offIDs(250)
	e := start(t, 300*time.Millisecond, web.Config{Offline: func() []string { return off }})
	e.dial(t, ctx, "n10")
	e.takeDown(t, ctx, e.dial(t, ctx, "n2"))
	e.dial(t, ctx, "n1")

	page := func(query string) web.Page {
		t.Helper()
		var p web.Page
		get(t, e.url+"/api/nodes"+query, http.StatusOK, &p)
		return p
	}
	p := page("")
	if p.Total != 253 || p.Matched != 253 || p.Offset != 0 || p.Limit != 100 || len(p.Nodes) != 100 {
		t.Fatalf("default page: total %d matched %d offset %d limit %d, %d rows; want 253, 253, 0, 100, 100", p.Total, p.Matched, p.Offset, p.Limit, len(p.Nodes))
	}
	if got := ids(p.Nodes[:6]); !slices.Equal(got, []string{"n1", "n2", "n10", "off-1", "off-2", "off-3"}) {
		t.Errorf("first rows %v, want n1 n2 n10 off-1 off-2 off-3", got)
	}
	p = page("?offset=5&limit=10")
	if got := ids(p.Nodes); !slices.Equal(got, off[2:12]) || p.Offset != 5 || p.Limit != 10 {
		t.Errorf("offset 5 limit 10: %v (offset %d limit %d), want %v", got, p.Offset, p.Limit, off[2:12])
	}
	p = page("?offset=250&limit=10")
	if got := ids(p.Nodes); !slices.Equal(got, off[247:]) {
		t.Errorf("last page: %v, want %v", got, off[247:])
	}
	if p = page("?offset=1000"); len(p.Nodes) != 0 || p.Matched != 253 {
		t.Errorf("past the end: %d rows, %d matched; want none, 253", len(p.Nodes), p.Matched)
	}
	// off-2, off-20..29, off-200..250
	if p = page("?q=OFF-2&limit=1000"); p.Matched != 62 || len(p.Nodes) != 62 || p.Nodes[0].ID != "off-2" || p.Nodes[61].ID != "off-250" {
		t.Errorf("q=OFF-2: %d matched, %d rows (%v...), want 62 from off-2 to off-250", p.Matched, len(p.Nodes), ids(p.Nodes[:min(3, len(p.Nodes))]))
	}
	if p = page("?q=127.0.0.1"); !slices.Equal(ids(p.Nodes), []string{"n1", "n2", "n10"}) {
		t.Errorf("q=127.0.0.1 (the address): %v, want the three links", ids(p.Nodes))
	}
	for q, want := range map[string][]string{
		"?state=up":                           {"n1", "n10"},
		"?state=down":                         {"n2"},
		"?state=up,down":                      {"n1", "n2", "n10"},
		"?state=down,offline&q=off-1&limit=3": {"off-1", "off-10", "off-11"},
		"?q=nothing":                          {},
	} {
		if got := ids(page(q).Nodes); !slices.Equal(got, want) {
			t.Errorf("%s: %v, want %v", q, got, want)
		}
	}
	if p = page("?state=offline"); p.Matched != 250 {
		t.Errorf("state=offline: %d matched, want 250", p.Matched)
	}
	for _, q := range []string{"?state=sideways", "?limit=1001", "?offset=-1", "?limit=x", "?q=" + strings.Repeat("x", 300)} {
		get(t, e.url+"/api/nodes"+q, http.StatusBadRequest, nil)
		get(t, e.url+"/api/status"+q, http.StatusBadRequest, nil)
		get(t, e.url+"/events"+q, http.StatusBadRequest, nil)
	}
	var st web.Status
	get(t, e.url+"/api/status?q=n1&limit=5", http.StatusOK, &st)
	if st.Total != 253 || st.Matched != 2 || st.Limit != 5 || !slices.Equal(ids(st.Nodes), []string{"n1", "n10"}) || st.NodesUp != 2 || st.NodesDown != 1 || st.NodesOffline != 250 || st.NodesTotal != 253 {
		t.Errorf("/api/status?q=n1: %+v, want n1 and n10 of 253, header 2 up, 1 down, 250 offline of 253", st)
	}
}

// nextUpdate reads the stream's next update.
func nextUpdate(t *testing.T, s *stream) (web.Update, string) {
	t.Helper()
	name, data, err := s.next()
	if err != nil || name != "update" {
		t.Fatalf("event %q, %v; want an update", name, err)
	}
	var up web.Update
	if err := json.Unmarshal(data, &up); err != nil {
		t.Fatal(err)
	}
	return up, string(data)
}

// TestEventsPage: each browser's stream carries its own page only: a
// change on another page sends no row; a node that joins a filtered page
// (down only) comes with the page's new list of IDs.
func TestEventsPage(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	off := offIDs(500)
	e := start(t, 300*time.Millisecond, web.Config{Refresh: time.Hour, Offline: func() []string { return off }})
	a := e.dial(t, ctx, "a")
	b := e.dial(t, ctx, "b")
	z := e.dial(t, ctx, "z")

	first, done1 := subscribeQuery(t, ctx, e.url, "?limit=2")
	defer done1()
	down, done2 := subscribeQuery(t, ctx, e.url, "?state=down")
	defer done2()
	for _, s := range []*stream{first, down} {
		name, data, err := s.next()
		if err != nil || name != "status" {
			t.Fatalf("first event %q, %v; want status", name, err)
		}
		if len(data) > 16<<10 {
			t.Errorf("first status of a page is %d bytes: the whole table?", len(data))
		}
	}

	// z is on neither page: its change sends the header (nodes up), no row.
	e.takeDown(t, ctx, z)
	up, data := nextUpdate(t, first)
	if len(up.Nodes) != 0 || up.IDs != nil || up.NodesUp != 2 || up.Total != 503 || up.Matched != 503 {
		t.Errorf("page a,b after z went down: %s; want no row, 2 up", data)
	}
	// The down page gains z, with its list of IDs.
	up, data = nextUpdate(t, down)
	if !slices.Equal(ids(up.Nodes), []string{"z"}) || !slices.Equal(up.IDs, []string{"z"}) || up.Matched != 1 {
		t.Errorf("down page after z went down: %s; want z's row and ids [z]", data)
	}

	e.takeDown(t, ctx, b)
	up, data = nextUpdate(t, first)
	if !slices.Equal(ids(up.Nodes), []string{"b"}) || up.Nodes[0].Up || up.IDs != nil {
		t.Errorf("page a,b after b went down: %s; want b's row only", data)
	}
	up, data = nextUpdate(t, down)
	if !slices.Equal(ids(up.Nodes), []string{"b"}) || !slices.Equal(up.IDs, []string{"b", "z"}) {
		t.Errorf("down page after b went down: %s; want b's row and ids [b z]", data)
	}
	if len(data) > 16<<10 {
		t.Errorf("an update of one row is %d bytes", len(data))
	}
	_ = a
}
