package main

import (
	"context"
	"io"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tether-iot/tether/internal/harness/legacy"
	"github.com/tether-iot/tether/internal/harness/testutil"
)

// storyBuf collects a demo's stdout and tells when a line matching a
// pattern has appeared.
type storyBuf struct {
	mu      sync.Mutex
	b       strings.Builder
	changed chan struct{}
}

func newStoryBuf() *storyBuf { return &storyBuf{changed: make(chan struct{})} }

func (s *storyBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.b.Write(p)
	close(s.changed)
	s.changed = make(chan struct{})
	return len(p), nil
}

func (s *storyBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func (s *storyBuf) await(ctx context.Context, t *testing.T, re *regexp.Regexp) string {
	t.Helper()
	for {
		s.mu.Lock()
		m := re.FindString(s.b.String())
		ch := s.changed
		s.mu.Unlock()
		if m != "" {
			return m
		}
		select {
		case <-ch:
		case <-ctx.Done():
			t.Fatalf("no %v in:\n%s", re, s.String())
		}
	}
}

// serveDemo runs "tether demo NAME --serve" until stop is called, and
// returns its address and its story.
func serveDemo(t *testing.T, ctx context.Context, name string) (addr string, story *storyBuf, stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(ctx)
	story = newStoryBuf()
	done := make(chan struct{})
	go func() {
		defer close(done)
		run(ctx, &env{stdout: story, stderr: io.Discard}, []string{"demo", name, "--serve", "--addr", "127.0.0.1:0", "--timeout", "200ms", "--interval", "200ms"})
	}()
	addr = regexp.MustCompile(`127\.0\.0\.1:\d+`).FindString(story.await(ctx, t, regexp.MustCompile(`server on 127\.0\.0\.1:\d+`)))
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(stop)
	return addr, story, stop
}

// originalNode connects a model of the original micropython-iot client as
// node "qos" and writes lines exactly as c_qos.py or c_qos_fast.py would
// (ujson.dumps: ", " between the numbers).
func originalNode(t *testing.T, ctx context.Context, addr string) *legacy.Node {
	t.Helper()
	n, err := legacy.StartNode(ctx, legacy.NodeConfig{ID: "qos", Addr: addr, Timeout: 200 * time.Millisecond, StartDelay: -1, WiFiDelay: -1, Logger: testutil.Logger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

// TestDemoServeReadsOriginalNodes feeds "tether demo qos --serve" and
// "qos-fast --serve" the original nodes' exact reports and checks where
// the server reads each figure; then a restarted demo server that first
// hears message 3 counts nothing missed.
func TestDemoServeReadsOriginalNodes(t *testing.T) {
	for _, tc := range []struct {
		demo   string
		lines  []string // as the original node writes them
		report string   // what the server's final report must say
	}{
		{"qos", []string{"[0, 1, 41216, 2, 5, 1, 7]", "[1, 1, 41200, 2, 5, 1, 14]", "[2, 1, 41184, 2, 5, 1, 22]"},
			"duplicates 0 here, 2 at the node qos; missed 0 here, 5 at the node qos; out of order 0 here, 1 at the node qos"},
		{"qos-fast", []string{"[0, 1, 41216, 2, 5]", "[1, 1, 41216, 2, 5]", "[2, 1, 41216, 2, 5]"},
			"duplicates 0 here, 2 at the node qos; missed 0 here, 5 at the node qos; out of order 0;"},
	} {
		t.Run(tc.demo, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			addr, story, stop := serveDemo(t, ctx, tc.demo)
			n := originalNode(t, ctx, addr)
			for _, l := range tc.lines {
				if err := n.Write(ctx, l, true, tc.demo == "qos"); err != nil {
					t.Fatal(err)
				}
			}
			story.await(ctx, t, regexp.MustCompile(regexp.QuoteMeta("got "+tc.lines[2])))
			stop()
			rep := story.await(ctx, t, regexp.MustCompile(`server +REPORT .*`))
			if !strings.Contains(rep, tc.report) {
				t.Errorf("report %q\nlacks %q", rep, tc.report)
			}

			// The demo server restarts; the node runs on: its next
			// message is 3.
			addr2, story2, stop2 := serveDemo(t, ctx, tc.demo)
			n2 := originalNode(t, ctx, addr2)
			next := strings.Replace(tc.lines[2], "[2,", "[3,", 1)
			if err := n2.Write(ctx, next, true, true); err != nil {
				t.Fatal(err)
			}
			story2.await(ctx, t, regexp.MustCompile(regexp.QuoteMeta("got "+next)))
			stop2()
			rep = story2.await(ctx, t, regexp.MustCompile(`server +REPORT .*`))
			if !strings.Contains(rep, "missed 0 here") {
				t.Errorf("a restarted server counts the numbers before its first as missed: %q", rep)
			}
		})
	}
}
