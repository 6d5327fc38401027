package web_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tether-iot/tether/gateway/internal/web"
)

// stream reads server-sent events.
type stream struct {
	sc *bufio.Scanner
}

// next returns the next event's name and data, or io.EOF when the stream
// ends. Comments and the retry field are skipped.
func (s *stream) next() (name string, data []byte, err error) {
	for s.sc.Scan() {
		line := s.sc.Text()
		switch {
		case line == "":
			if name != "" {
				return name, data, nil
			}
		case strings.HasPrefix(line, "event: "):
			name = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			data = []byte(strings.TrimPrefix(line, "data: "))
		}
	}
	if err := s.sc.Err(); err != nil {
		return "", nil, err
	}
	return "", nil, io.EOF
}

func subscribe(t *testing.T, ctx context.Context, url string) (*stream, func()) {
	t.Helper()
	return subscribeQuery(t, ctx, url, "")
}

// subscribeQuery opens the event stream of the page that query
// (?q=...&state=...) selects.
func subscribeQuery(t *testing.T, ctx context.Context, url, query string) (*stream, func()) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url+"/events"+query, nil)
	if err != nil {
		t.Fatal(err)
	}
	tr := &http.Transport{}
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != http.StatusOK || ct != "text/event-stream" {
		t.Fatalf("GET /events: %s, %q", resp.Status, ct)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	return &stream{sc: sc}, func() {
		resp.Body.Close()
		tr.CloseIdleConnections()
	}
}

// TestEventsDown: a browser's event stream gets the row of a node that
// went down, pushed by the server's event: the periodic refresh is set
// far beyond the test's deadline, so only the event can bring it.
func TestEventsDown(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	e := start(t, 300*time.Millisecond, web.Config{Refresh: time.Hour})
	e.dial(t, ctx, "a")
	b := e.dial(t, ctx, "b")

	s, done := subscribe(t, ctx, e.url)
	defer done()
	name, data, err := s.next()
	if err != nil || name != "status" {
		t.Fatalf("first event: %q, %v; want status", name, err)
	}
	var st web.Status
	if err := json.Unmarshal(data, &st); err != nil {
		t.Fatal(err)
	}
	if len(st.Nodes) != 2 || !st.Nodes[0].Up || !st.Nodes[1].Up || st.NodesUp != 2 {
		t.Fatalf("status: %s, want a and b up", data)
	}

	down := e.takeDown(t, ctx, b)
	for {
		name, data, err := s.next()
		if err != nil {
			t.Fatalf("no update with b down: %v", err)
		}
		if name != "update" {
			t.Fatalf("event %q, want update", name)
		}
		got := time.Now()
		var up web.Update
		if err := json.Unmarshal(data, &up); err != nil {
			t.Fatal(err)
		}
		i := len(up.Nodes) - 1
		if i < 0 || up.Nodes[i].ID != "b" || up.Nodes[i].Up {
			continue // an earlier change
		}
		if up.NodesUp != 1 || up.NodesTotal != 2 {
			t.Errorf("update header: %d/%d up, want 1/2", up.NodesUp, up.NodesTotal)
		}
		var sawDown bool
		for _, ev := range up.Events {
			sawDown = sawDown || ev.ID == "b" && ev.Kind == "down" && ev.Reason != ""
		}
		if !sawDown {
			t.Errorf("update without b's down event: %s", data)
		}
		t.Logf("b's row came down the stream %v after the server noticed", got.Sub(down.Time))
		break
	}

	// Close ends the stream.
	e.web.Close()
	for {
		if _, _, err := s.next(); err != nil {
			if ctx.Err() != nil {
				t.Fatalf("stream not ended by Close: %v", err)
			}
			break
		}
	}
}
