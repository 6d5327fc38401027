package gateway_test

import (
	"bufio"
	"context"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/tether-iot/tether/internal/harness/testutil"
)

// logRecorder is a slog.Handler that keeps every record's message and
// attributes, so that a test can wait for a log line (and count them)
// instead of polling. It also writes to testutil.Logger.
type logRecorder struct {
	next  slog.Handler
	attrs []slog.Attr
	s     *recorded
}

type recorded struct {
	mu      sync.Mutex
	lines   []logLine
	changed chan struct{} // closed and replaced on each record
}

type logLine struct {
	msg   string
	attrs map[string]string
}

func newLogRecorder() *logRecorder {
	return &logRecorder{next: testutil.Logger().Handler(), s: &recorded{changed: make(chan struct{})}}
}

func (h *logRecorder) Enabled(context.Context, slog.Level) bool { return true }

func (h *logRecorder) Handle(ctx context.Context, r slog.Record) error {
	l := logLine{msg: r.Message, attrs: make(map[string]string)}
	for _, a := range h.attrs {
		l.attrs[a.Key] = a.Value.String()
	}
	r.Attrs(func(a slog.Attr) bool {
		l.attrs[a.Key] = a.Value.String()
		return true
	})
	h.s.mu.Lock()
	h.s.lines = append(h.s.lines, l)
	close(h.s.changed)
	h.s.changed = make(chan struct{})
	h.s.mu.Unlock()
	if h.next.Enabled(ctx, r.Level) {
		return h.next.Handle(ctx, r)
	}
	return nil
}

func (h *logRecorder) WithAttrs(as []slog.Attr) slog.Handler {
	return &logRecorder{next: h.next.WithAttrs(as), attrs: append(append([]slog.Attr(nil), h.attrs...), as...), s: h.s}
}

func (h *logRecorder) WithGroup(name string) slog.Handler {
	return &logRecorder{next: h.next.WithGroup(name), attrs: h.attrs, s: h.s}
}

func (h *logRecorder) logger() *slog.Logger { return slog.New(h) }

// find returns the lines whose message starts with prefix.
func (h *logRecorder) find(prefix string) []logLine {
	h.s.mu.Lock()
	defer h.s.mu.Unlock()
	var out []logLine
	for _, l := range h.s.lines {
		if strings.HasPrefix(l.msg, prefix) {
			out = append(out, l)
		}
	}
	return out
}

// wait waits for a line whose message starts with prefix and returns it.
func (h *logRecorder) wait(t testing.TB, ctx context.Context, prefix string) logLine {
	t.Helper()
	return h.waitMatch(t, ctx, prefix, func(logLine) bool { return true })
}

// waitMatch waits for a line whose message starts with prefix and that
// match accepts, and returns it.
func (h *logRecorder) waitMatch(t testing.TB, ctx context.Context, prefix string, match func(logLine) bool) logLine {
	t.Helper()
	for {
		h.s.mu.Lock()
		for _, l := range h.s.lines {
			if strings.HasPrefix(l.msg, prefix) && match(l) {
				h.s.mu.Unlock()
				return l
			}
		}
		ch := h.s.changed
		h.s.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			t.Fatalf("no log line %q: %v", prefix, ctx.Err())
		}
	}
}

// scrape fetches /metrics from the gateway's web server and returns
// each sample by its name and labels as written, e.g.
// `tether_nodes_stored_messages` or `tether_node_up{node="n"}`.
func scrape(t *testing.T, ctx context.Context, webAddr string) map[string]float64 {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+webAddr+"/metrics", nil)
	req.Header.Set("Accept", "text/plain")
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out := make(map[string]float64)
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("/metrics: bad line %q", line)
		}
		out[line[:i]] = v
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// metric returns the sample key of scrape, failing if it is absent.
func metric(t *testing.T, samples map[string]float64, key string) float64 {
	t.Helper()
	v, ok := samples[key]
	if !ok {
		t.Fatalf("/metrics has no %s", key)
	}
	return v
}
