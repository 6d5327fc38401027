package qos_test

import (
	"context"
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tether-iot/tether/internal/tools/demo"
	"github.com/tether-iot/tether/internal/tools/demo/demotest"
	"github.com/tether-iot/tether/internal/tools/demo/qos"
	"github.com/tether-iot/tether/link"
)

// fakeConn is one end of the link fed with the exact lines an original
// micropython-iot peer sends.
type fakeConn struct {
	in  chan string
	out chan string
}

func newFake() *fakeConn { return &fakeConn{in: make(chan string), out: make(chan string, 16)} }

func (f *fakeConn) Write(ctx context.Context, line string, opts ...link.WriteOption) error {
	select {
	case f.out <- line:
	default:
	}
	return nil
}

func (f *fakeConn) ReadLine(ctx context.Context) (string, error) {
	select {
	case l := <-f.in:
		return l, nil
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

func (f *fakeConn) Connects() int     { return 1 }
func (f *fakeConn) Stats() link.Stats { return link.Stats{} }

// feed gives the side lines and waits until it has printed each.
func feed(ctx context.Context, t *testing.T, st *demotest.Story, f *fakeConn, lines ...string) {
	t.Helper()
	for _, l := range lines {
		re := regexp.MustCompile(regexp.QuoteMeta("got " + l))
		n := st.Count(re)
		f.in <- l
		st.Await(ctx, t, re, n+1)
	}
}

func startFake(t *testing.T, node, fast bool) (context.Context, *demotest.Story, *fakeConn, *qos.Side) {
	ctx := demotest.Context(t)
	st := demotest.NewStory()
	f := newFake()
	s := qos.Start(ctx, f, qos.Config{Node: node, Fast: fast, Interval: time.Hour, Report: time.Hour, Out: demo.NewPrinter(st)})
	t.Cleanup(s.Close)
	return ctx, st, f, s
}

// TestOriginalNodeLayouts: the demo server reads each original node's
// report where the original server does. c_qos.py sends [n, connects,
// mem_free, dupe, miss, oord, uptime] (s_qos_cp.py reads data[3..6]);
// c_qos_fast.py sends [n, connects, mem_free, dupes, missing]
// (s_qos_fast.py reads data[3] and data[4]).
func TestOriginalNodeLayouts(t *testing.T) {
	for _, tc := range []struct {
		name, line, want string
	}{
		{"c_qos", "[0, 1, 41216, 2, 5, 1, 120]", "duplicates 0 here, 2 at the node qos; missed 0 here, 5 at the node qos; out of order 0 here, 1 at the node qos"},
		{"c_qos_fast", "[0, 1, 41216, 2, 5]", "duplicates 0 here, 2 at the node qos; missed 0 here, 5 at the node qos"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, st, f, s := startFake(t, false, tc.name == "c_qos_fast")
			feed(ctx, t, st, f, tc.line)
			if r := s.Report(); !strings.Contains(r, tc.want) {
				t.Errorf("report %q\nlacks %q", r, tc.want)
			}
		})
	}
}

// TestOriginalServerLayout: the original servers send [n, count]; the
// demo node reads it (no remote figures) and counts nothing missed.
func TestOriginalServerLayout(t *testing.T) {
	ctx, st, f, s := startFake(t, true, false)
	feed(ctx, t, st, f, "[0, 0]", "[1, 1]", "[2, 2]")
	if r := s.Report(); !strings.Contains(r, "duplicates 0 here, 0 at the server; missed 0 here, 0 at the server") {
		t.Errorf("report %q", r)
	}
}

// TestNodeSendsOriginalLayout: the demo node sends c_qos.py's seven
// fields (s_qos_cp.py reads data[3..6]) and, fast, c_qos_fast.py's five.
func TestNodeSendsOriginalLayout(t *testing.T) {
	for _, fast := range []bool{false, true} {
		_, _, f, _ := startFake(t, true, fast)
		var v []int
		if err := json.Unmarshal([]byte(<-f.out), &v); err != nil {
			t.Fatal(err)
		}
		want := map[bool]int{false: 7, true: 5}[fast]
		if len(v) != want {
			t.Errorf("fast=%v: the node sent %v, want %d fields", fast, v, want)
		}
	}
}

// TestRestartedServerMissesNothing: a demo server started while the node
// runs (it restarted) first hears message 57: the 57 before it went to
// its previous life, and are not missed.
func TestRestartedServerMissesNothing(t *testing.T) {
	ctx, st, f, s := startFake(t, false, false)
	feed(ctx, t, st, f, "[57, 3, 40000, 0, 0, 0, 400]", "[58, 3, 40000, 0, 0, 0, 407]")
	if r := s.Report(); !strings.Contains(r, "missed 0 here") {
		t.Errorf("report %q", r)
	}
	feed(ctx, t, st, f, "[60, 3, 40000, 0, 0, 0, 421]")
	if r := s.Report(); !strings.Contains(r, "missed 1 here") {
		t.Errorf("a gap after the first: report %q", r)
	}
}
