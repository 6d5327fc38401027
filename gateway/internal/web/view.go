package web

import (
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tether-iot/tether/link"
	"github.com/tether-iot/tether/server"
)

// Query selects one page of the table: the parameters q, state, offset
// and limit of GET /api/status, /api/nodes and /events. Rows are sorted
// by ID, numbers in IDs by value (n2 before n10).
type Query struct {
	// Search keeps the rows whose ID or last address contains it, in any
	// case (parameter q); "" keeps all.
	Search string
	// States keeps the rows in one of these states: "up", "down",
	// "offline" (parameter state, comma-separated); none keeps all.
	States []string
	// Offset is how many matching rows to skip.
	Offset int
	// Limit is the most rows to return; 0 means DefaultPageSize, and it
	// is at most MaxPageSize.
	Limit int
}

// ParseQuery reads a Query from a request's parameters.
func ParseQuery(v url.Values) (Query, error) {
	q := Query{Search: strings.TrimSpace(v.Get("q"))}
	if len(q.Search) > 256 {
		return q, fmt.Errorf("q: %d bytes, at most 256", len(q.Search))
	}
	for s := range strings.SplitSeq(v.Get("state"), ",") {
		switch s = strings.TrimSpace(s); s {
		case "":
		case "up", "down", "offline":
			if !slices.Contains(q.States, s) {
				q.States = append(q.States, s)
			}
		default:
			return q, fmt.Errorf("state %q: write up, down or offline (comma-separated)", s)
		}
	}
	for _, p := range []struct {
		name string
		dst  *int
		max  int
	}{{"offset", &q.Offset, 1 << 30}, {"limit", &q.Limit, MaxPageSize}} {
		s := v.Get(p.name)
		if s == "" {
			continue
		}
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 || n > p.max {
			return q, fmt.Errorf("%s %q: write a count from 0 to %d", p.name, s, p.max)
		}
		*p.dst = n
	}
	if q.Limit == 0 {
		q.Limit = DefaultPageSize
	}
	return q, nil
}

// key identifies the query, for browsers that watch the same page.
func (q Query) key() string {
	return fmt.Sprintf("%q|%s|%d|%d", strings.ToLower(q.Search), strings.Join(q.States, ","), q.Offset, q.Limit)
}

// Page is one page of the table.
type Page struct {
	Total   int    `json:"total"`   // rows in all: the nodes that connected, and the offline ones
	Matched int    `json:"matched"` // rows that match the query
	Offset  int    `json:"offset"`  // matching rows skipped
	Limit   int    `json:"limit"`   // the most rows a page holds
	Nodes   []Node `json:"nodes"`   // the page's rows, sorted by ID
}

// entry is one row of the table before it is read in full.
type entry struct {
	id    string
	st    link.Stats // zero for an offline node
	state string     // "up", "down" or "offline"
}

// table is every row, sorted, with the header's counts: read once per
// refresh and shared by every page.
type table struct {
	srv     *server.Server
	T       time.Duration
	entries []entry
	links   int // entries that are links
	up      int
}

// readTable reads every row of srv and the offline nodes.
func (s *Server) readTable(srv *server.Server) *table {
	tb := &table{srv: srv}
	if srv == nil {
		return tb
	}
	tb.T = srv.Timeout()
	links := srv.Links()
	tb.entries = make([]entry, 0, len(links))
	for _, l := range links {
		st := l.Stats()
		e := entry{id: st.ID, st: st, state: "down"}
		if st.Up {
			e.state = "up"
			tb.up++
		}
		tb.entries = append(tb.entries, e)
	}
	tb.links = len(tb.entries)
	for _, id := range s.offline(srv) {
		tb.entries = append(tb.entries, entry{id: id, state: "offline"})
	}
	slices.SortFunc(tb.entries, func(a, b entry) int { return natCompare(a.id, b.id) })
	return tb
}

// match returns the entries of tb that q selects, all pages together.
func (tb *table) match(q Query) []entry {
	if q.Search == "" && len(q.States) == 0 {
		return tb.entries
	}
	search := strings.ToLower(q.Search)
	var out []entry
	for _, e := range tb.entries {
		if len(q.States) > 0 && !slices.Contains(q.States, e.state) {
			continue
		}
		if search != "" && !strings.Contains(strings.ToLower(e.id), search) && !strings.Contains(strings.ToLower(e.st.Remote), search) {
			continue
		}
		out = append(out, e)
	}
	return out
}

// window returns the entries of q's page among matched.
func (q Query) window(matched []entry) []entry {
	lo := min(q.Offset, len(matched))
	return matched[lo:min(lo+q.Limit, len(matched))]
}

// page reads q's page of tb in full.
func (s *Server) page(tb *table, q Query) Page {
	matched := tb.match(q)
	p := Page{Total: len(tb.entries), Matched: len(matched), Offset: q.Offset, Limit: q.Limit, Nodes: []Node{}}
	for _, e := range q.window(matched) {
		p.Nodes = append(p.Nodes, s.row(e, tb.T))
	}
	return p
}

// row reads e's row in full.
func (s *Server) row(e entry, T time.Duration) Node {
	if e.state == "offline" {
		return s.offlineNode(e.id)
	}
	return s.nodeOf(e.st, T)
}

// natCompare orders IDs as people do: runs of digits by their value
// (n2 before n10), the rest byte by byte; IDs equal so (n01, n1) by
// their bytes.
func natCompare(a, b string) int {
	if c := natural(a, b); c != 0 {
		return c
	}
	return strings.Compare(a, b)
}

func natural(a, b string) int {
	for a != "" && b != "" {
		if isDigit(a[0]) && isDigit(b[0]) {
			da, db := digits(a), digits(b)
			na, nb := strings.TrimLeft(a[:da], "0"), strings.TrimLeft(b[:db], "0")
			if c := len(na) - len(nb); c != 0 {
				return c
			}
			if c := strings.Compare(na, nb); c != 0 {
				return c
			}
			a, b = a[da:], b[db:]
			continue
		}
		if a[0] != b[0] {
			return int(a[0]) - int(b[0])
		}
		a, b = a[1:], b[1:]
	}
	if c := len(a) - len(b); c != 0 {
		return c
	}
	return 0
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func digits(s string) int {
	i := 0
	for i < len(s) && isDigit(s[i]) {
		i++
	}
	return i
}
