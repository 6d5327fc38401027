package qos_test

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tether-iot/tether/internal/tools/demo/demotest"

	"github.com/tether-iot/tether/client"
	"github.com/tether-iot/tether/internal/harness/testutil"
	"github.com/tether-iot/tether/internal/tools/demo"
	"github.com/tether-iot/tether/internal/tools/demo/qos"
)

const T = demotest.T // the link timeout

// finish finishes both sides at once, as the demo does.
func finish(ctx context.Context, t *testing.T, node, srv *qos.Side) (qos.Result, qos.Result) {
	t.Helper()
	var res [2]qos.Result
	var errs [2]error
	var wg sync.WaitGroup
	for i, s := range []*qos.Side{node, srv} {
		wg.Go(func() { res[i], errs[i] = s.Finish(ctx) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatalf("Finish: %v", err)
		}
	}
	return res[0], res[1]
}

// TestExactlyOnceThroughOutages runs the qos demos, plain and fast, and
// strikes the node's connection with each kind of outage in turn while
// both sides write. At the end each side has received every message the
// other sent, exactly once (and in order, for the plain demo).
func TestExactlyOnceThroughOutages(t *testing.T) {
	for _, fast := range []bool{false, true} {
		t.Run(map[bool]string{false: "plain", true: "fast"}[fast], func(t *testing.T) {
			t.Parallel()
			ctx := demotest.Context(t)
			st := demotest.NewStory()
			out := demo.NewPrinter(st)
			sim := demotest.StartSim(ctx, t, out, qos.ID)
			l, err := sim.Server.Node(ctx, qos.ID)
			if err != nil {
				t.Fatal(err)
			}
			cfg := qos.Config{Fast: fast, Interval: 40 * time.Millisecond, Report: 200 * time.Millisecond, Out: out}
			cfg.Node = true
			node := qos.Start(ctx, sim.Nodes[qos.ID], cfg)
			defer node.Close()
			cfg.Node = false
			srv := qos.Start(ctx, l, cfg)
			defer srv.Close()

			atNode := regexp.MustCompile(`node qos +got \[\d+,\d+,\d+,\d+\] from the server`)
			atServer := regexp.MustCompile(`server +got \[\d+(,\d+){4}(,\d+,\d+)?\] from the node qos`)
			upAgain := regexp.MustCompile(`node qos +link UP again after`)
			p := sim.Proxies[qos.ID]
			for _, fault := range []func(){
				p.Cut,
				p.Reset,
				func() { p.Blackhole(2 * T) },
				func() { p.Refuse(3 * T); p.Cut() },
			} {
				// Messages flow both ways, then the outage strikes.
				st.Await(ctx, t, atNode, st.Count(atNode)+3)
				st.Await(ctx, t, atServer, st.Count(atServer)+3)
				ups := st.Count(upAgain)
				fault()
				st.Await(ctx, t, upAgain, ups+1)
			}
			st.Await(ctx, t, atNode, st.Count(atNode)+3)
			st.Await(ctx, t, atServer, st.Count(atServer)+3)

			nres, sres := finish(ctx, t, node, srv)
			t.Logf("node's result: %+v", nres)
			t.Logf("server's result: %+v", sres)
			for _, c := range []struct {
				name     string
				from, to qos.Result
			}{{"node -> server", nres, sres}, {"server -> node", sres, nres}} {
				r := c.to
				if r.Lost != 0 || r.Duplicated != 0 || r.Received != c.from.Sent || r.PeerSent != c.from.Sent {
					t.Errorf("%s: %d sent, %d said sent, %d received, %d lost, %d duplicated; want all received once",
						c.name, c.from.Sent, r.PeerSent, r.Received, r.Lost, r.Duplicated)
				}
				if !fast && r.OutOfOrder != 0 {
					t.Errorf("%s: %d out of order with qos and wait", c.name, r.OutOfOrder)
				}
				if c.from.Sent < 15 {
					t.Errorf("%s: only %d messages sent", c.name, c.from.Sent)
				}
			}

			rep := node.Report()
			if m := regexp.MustCompile(`outages (\d+),`).FindStringSubmatch(rep); m == nil || atoi(m[1]) < 4 {
				t.Errorf("node report after 4 outages: %q", rep)
			}
			if n := sim.Outages(); n < 4 {
				t.Errorf("Sim.Outages = %d after 4 outages", n)
			}
			if !fast {
				for _, s := range []*qos.Side{node, srv} {
					if r := s.Report(); !regexp.MustCompile(`duplicates 0 here, 0 at the .*; missed 0 here, 0 at the .*; out of order 0( here, 0 at the .*)?; .* restarts 0$`).MatchString(r) {
						t.Errorf("report after a clean run: %q", r)
					}
				}
			}
			for _, who := range []string{"node qos", "server"} {
				if st.Count(regexp.MustCompile(who+` +REPORT uptime \S+, outages \d+, repeats ignored by the link \d+; duplicates`)) == 0 {
					t.Errorf("%s made no periodic report", who)
				}
			}
			if n := st.Count(regexp.MustCompile(`DUPLICATE|OUT OF ORDER|write failed|not a qos message`)); n != 0 && !fast {
				t.Errorf("%d lines tell of trouble:\n%s", n, st)
			}
		})
	}
}

func atoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}

// scripted is one side of the qos demo, run for real, facing a peer
// that the test plays by hand on the other end of the link.
// end is one end of the link: a server's *link.Link or a *client.Client.
type end interface {
	qos.Conn
	Drain(ctx context.Context) error
}

type scripted struct {
	side     *qos.Side
	own      end // the side's end of the link
	peer     end
	peerName string                        // the peer, as the side names it
	msg      func(n, dup, miss int) string // a numbered message from the peer
}

// startScripted starts the node side (node) or the server side over a
// Sim, the test playing the other.
func startScripted(ctx context.Context, t *testing.T, sim *demo.Sim, out *demo.Printer, node bool) *scripted {
	t.Helper()
	l, err := sim.Server.Node(ctx, qos.ID)
	if err != nil {
		t.Fatal(err)
	}
	cfg := qos.Config{Node: node, Interval: 20 * time.Millisecond, Report: time.Hour, Out: out}
	s := &scripted{own: l, peer: sim.Nodes[qos.ID], peerName: "node qos"}
	s.msg = func(n, dup, miss int) string { return fmt.Sprintf("[%d,1,100,%d,%d]", n, dup, miss) }
	var conn qos.Conn = l
	if node {
		conn, s.own, s.peer, s.peerName = sim.Nodes[qos.ID], sim.Nodes[qos.ID], l, "server"
		s.msg = func(n, dup, miss int) string { return fmt.Sprintf("[%d,%d,%d,%d]", n, n, dup, miss) }
	}
	s.side = qos.Start(ctx, conn, cfg)
	t.Cleanup(s.side.Close)
	return s
}

// reader reads the peer's end of the link on a goroutine of its own,
// until the test ends, and hands the side's messages to the test.
func (s *scripted) reader(t *testing.T) <-chan string {
	ctx, cancel := context.WithCancel(context.Background())
	lines := make(chan string)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			line, err := s.peer.ReadLine(ctx)
			if err != nil {
				return
			}
			select {
			case lines <- line:
			case <-ctx.Done():
				return
			}
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
	return lines
}

func (s *scripted) write(ctx context.Context, t *testing.T, lines ...string) {
	t.Helper()
	for _, line := range lines {
		if err := s.peer.Write(ctx, line); err != nil {
			t.Fatalf("the peer's write: %v", err)
		}
	}
}

// next returns the side's next message, decoded.
func next(ctx context.Context, t *testing.T, lines <-chan string) []any {
	t.Helper()
	select {
	case line := <-lines:
		var v []any
		if err := json.Unmarshal([]byte(line), &v); err != nil || len(v) < 2 {
			t.Fatalf("the side sent %q", line)
		}
		return v
	case <-ctx.Done():
		t.Fatal("the side sent nothing more")
		return nil
	}
}

func sides(t *testing.T, f func(t *testing.T, node bool)) {
	for _, node := range []bool{false, true} {
		t.Run(map[bool]string{false: "server", true: "node"}[node], func(t *testing.T) {
			t.Parallel()
			f(t, node)
		})
	}
}

// TestDuplicatesAreReported feeds each side, in turn, a duplicate, a
// message out of order, a gap and lines that are not qos messages, and
// checks that the side reports each (so that the clean run above cannot
// pass by counting nothing), tells its peer its own figures, and ends
// with a Result that counts them.
func TestDuplicatesAreReported(t *testing.T) {
	sides(t, func(t *testing.T, node bool) {
		ctx := demotest.Context(t)
		st := demotest.NewStory()
		out := demo.NewPrinter(st)
		sim := demotest.StartSim(ctx, t, out, qos.ID)
		s := startScripted(ctx, t, sim, out, node)
		lines := s.reader(t)
		who := regexp.QuoteMeta(map[bool]string{false: "server", true: "node qos"}[node])
		got := func(rest string) *regexp.Regexp {
			return regexp.MustCompile(who + ` +got ` + rest + `$`)
		}

		s.write(ctx, t, s.msg(0, 0, 0), s.msg(1, 0, 0), s.msg(1, 0, 0), s.msg(3, 0, 0), s.msg(2, 7, 9), "hello", `["x",1]`)
		st.Await(ctx, t, got(regexp.QuoteMeta(s.msg(1, 0, 0))+` from the `+s.peerName+`: a DUPLICATE of message 1`), 1)
		st.Await(ctx, t, got(regexp.QuoteMeta(s.msg(2, 7, 9))+` from the `+s.peerName+`: message 2, OUT OF ORDER`), 1)
		st.Await(ctx, t, got(`a line that is not a qos message: "hello"`), 1)
		st.Await(ctx, t, got(`a message without a number: "\[\\"x\\",1\]"`), 1)

		want := fmt.Sprintf("duplicates 1 here, 7 at the %s; missed 0 here, 9 at the %s; out of order 1; %s restarts 0", s.peerName, s.peerName, s.peerName)
		if r := s.side.Report(); !strings.HasSuffix(r, want) {
			t.Errorf("Report = %q, want it to end with %q", r, want)
		}

		// The side's messages carry its own figures, for the peer to
		// report: 1 duplicate, 0 missed, once 2 has arrived.
		seen := make(map[int]int)
		for {
			v := next(ctx, t, lines)
			n, _ := v[0].(float64)
			seen[int(n)]++
			dup, _ := v[len(v)-2].(float64)
			miss, _ := v[len(v)-1].(float64)
			if dup == 1 && miss == 0 {
				break
			}
		}

		// The peer says it sent 6: 4 and 5 never came.
		s.write(ctx, t, `["end",6]`)
		type finished struct {
			res qos.Result
			err error
		}
		fin := make(chan finished, 1)
		go func() { r, err := s.side.Finish(ctx); fin <- finished{r, err} }()
		var sent int
		for {
			v := next(ctx, t, lines)
			if v[0] == "end" {
				f, _ := v[1].(float64)
				sent = int(f)
				break
			}
			n, _ := v[0].(float64)
			seen[int(n)]++
		}
		for n := range sent {
			if seen[n] != 1 {
				t.Errorf("the side's message %d arrived %d times", n, seen[n])
			}
		}
		if len(seen) != sent {
			t.Errorf("%d distinct messages arrived from the side, which says it sent %d", len(seen), sent)
		}
		f := <-fin
		if f.err != nil {
			t.Fatalf("Finish: %v", f.err)
		}
		if w := (qos.Result{Sent: uint64(sent), PeerSent: 6, Received: 4, Lost: 2, Duplicated: 1, OutOfOrder: 1}); f.res != w {
			t.Errorf("Result = %+v, want %+v", f.res, w)
		}
	})
}

// TestDuplicateOfFirstMessage feeds each side message 0 twice: the second
// is a duplicate, as any other, and not a restart of the peer (which
// would clear the count and hide the duplicate from the verdict).
func TestDuplicateOfFirstMessage(t *testing.T) {
	sides(t, func(t *testing.T, node bool) {
		ctx := demotest.Context(t)
		st := demotest.NewStory()
		out := demo.NewPrinter(st)
		sim := demotest.StartSim(ctx, t, out, qos.ID)
		s := startScripted(ctx, t, sim, out, node)
		s.write(ctx, t, s.msg(0, 0, 0), s.msg(1, 0, 0), s.msg(0, 0, 0))
		who := regexp.QuoteMeta(map[bool]string{false: "server", true: "node qos"}[node])
		st.Await(ctx, t, regexp.MustCompile(who+` +got \S+ from the `+s.peerName+`: a DUPLICATE of message 0$`), 1)
		want := fmt.Sprintf("duplicates 1 here, 0 at the %s; missed 0 here, 0 at the %s; out of order 0; %s restarts 0", s.peerName, s.peerName, s.peerName)
		if r := s.side.Report(); !strings.HasSuffix(r, want) {
			t.Errorf("Report = %q, want it to end with %q", r, want)
		}
	})
}

// TestPeerRestartIsCounted replaces the node by a new one (a new client
// with the same ID, as when the board reboots), which numbers its
// messages from 0 again: the server side counts a restart and starts its
// checks afresh, finding no duplicate.
func TestPeerRestartIsCounted(t *testing.T) {
	t.Parallel()
	ctx := demotest.Context(t)
	st := demotest.NewStory()
	out := demo.NewPrinter(st)
	sim := demotest.StartSim(ctx, t, out, qos.ID)
	s := startScripted(ctx, t, sim, out, false)
	s.write(ctx, t, s.msg(0, 0, 0), s.msg(1, 0, 0), s.msg(2, 0, 0))
	fromNode := regexp.MustCompile(`server +got \S+ from the node qos$`)
	st.Await(ctx, t, fromNode, 3)

	sim.Nodes[qos.ID].Close()
	c, err := client.Dial(ctx, client.Config{ID: qos.ID, Server: sim.Proxies[qos.ID].Addr(), Timeout: T, ReconnectDelay: T, Logger: testutil.Logger()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for n := range 2 {
		if err := c.Write(ctx, s.msg(n, 0, 0)); err != nil {
			t.Fatal(err)
		}
	}
	st.Await(ctx, t, fromNode, 5)
	if r := s.side.Report(); !strings.HasSuffix(r, "duplicates 0 here, 0 at the node qos; missed 0 here, 0 at the node qos; out of order 0; node qos restarts 1") {
		t.Errorf("Report after the node restarted: %q", r)
	}
}

// TestFinishWithoutPeerEnd checks that Finish gives up, with an error,
// when the peer never says how many messages it sent.
func TestFinishWithoutPeerEnd(t *testing.T) {
	t.Parallel()
	ctx := demotest.Context(t)
	out := demo.NewPrinter(demotest.NewStory())
	sim := demotest.StartSim(ctx, t, out, qos.ID)
	s := startScripted(ctx, t, sim, out, false)
	lines := s.reader(t)
	fctx, cancel := context.WithCancel(ctx)
	errc := make(chan error, 1)
	go func() { _, err := s.side.Finish(fctx); errc <- err }()
	for v := next(ctx, t, lines); v[0] != "end"; v = next(ctx, t, lines) {
	}
	// Once its end is acknowledged, the side waits for the peer's, in vain.
	if err := s.own.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := <-errc; err == nil || !strings.Contains(err.Error(), "did not say how many messages it sent") {
		t.Errorf("Finish = %v, want an error saying the peer did not tell", err)
	}
}
