package mainapp_test

import (
	"context"
	"regexp"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/tether-iot/tether/internal/tools/demo/demotest"

	"github.com/tether-iot/tether/internal/tools/demo"
	"github.com/tether-iot/tether/internal/tools/demo/mainapp"
)

const (
	T        = demotest.T            // the link timeout
	interval = 50 * time.Millisecond // between two messages of an application
)

// What the apps narrate: a list received by the server's app for a node
// (connects, count, heap) and by a node from its app (count, the node's
// count, the node's heap).
func fromNode(id string) *regexp.Regexp {
	return regexp.MustCompile(`app ` + id + ` +got  \[(\d+),(\d+),(\d+)\] from node ` + id + `$`)
}

func fromApp(id string) *regexp.Regexp {
	return regexp.MustCompile(`node ` + id + ` +got  \[(\d+),(\d+),(\d+)\] from the server app$`)
}

func ints(m []string) []int {
	v := make([]int, len(m)-1)
	for i, s := range m[1:] {
		v[i], _ = strconv.Atoi(s)
	}
	return v
}

// TestMainDemoThroughOutages runs the main demo with its four nodes and
// strikes all four at once, each with another kind of outage. Each node
// and its app keep exchanging their lists: every list arrives exactly
// once and in order (qos), the node's connects figure shows the
// reconnection, and the app echoes the node's latest count.
func TestMainDemoThroughOutages(t *testing.T) {
	t.Parallel()
	ctx := demotest.Context(t)
	st := demotest.NewStory()
	out := demo.NewPrinter(st)
	ids := mainapp.IDs
	sim := demotest.StartSim(ctx, t, out, ids...)

	runCtx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	errs := make(chan error, len(ids)+1)
	wg.Go(func() { errs <- mainapp.Server(runCtx, sim.Server, ids, out, interval, nil) })
	for _, id := range ids {
		wg.Go(func() { errs <- mainapp.Node(runCtx, sim.Nodes[id], out, interval, nil) })
	}
	defer func() { stop(); wg.Wait() }()

	for _, id := range ids {
		st.Await(ctx, t, fromNode(id), 3)
		st.Await(ctx, t, fromApp(id), 3)
	}
	p := sim.Proxies
	p["1"].Cut()
	p["2"].Reset()
	p["3"].Blackhole(2 * T)
	p["4"].Refuse(3 * T)
	p["4"].Cut()
	for _, id := range ids {
		st.Await(ctx, t, regexp.MustCompile(`node `+id+` +link UP again after`), 1)
		// The node's lists now say it has connected at least twice.
		st.Await(ctx, t, regexp.MustCompile(`app `+id+` +got  \[([2-9]|[1-9]\d+),\d+,\d+\] from node `+id+`$`), 1)
		st.Await(ctx, t, fromApp(id), st.Count(fromApp(id))+3)
	}
	stop()
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("an app failed: %v", err)
		}
	}

	for _, id := range ids {
		got := st.All(fromNode(id))
		sent := st.Count(regexp.MustCompile(`node ` + id + ` +sent \[\d+,\d+,\d+\] to the server app$`))
		if len(got) > sent {
			t.Errorf("app %s got %d lists from node %s, which sent %d", id, len(got), id, sent)
		}
		connects := 0
		for i, m := range got {
			v := ints(m)
			if v[1] != i {
				t.Fatalf("app %s: list %d from node %s has count %d: lost, repeated or out of order\n%s", id, i, id, v[1], st)
			}
			if v[0] < connects {
				t.Errorf("app %s: node %s's connects went down from %d to %d", id, id, connects, v[0])
			}
			connects = v[0]
		}
		if connects < 2 {
			t.Errorf("node %s's last list says %d connects after an outage", id, connects)
		}

		back := st.All(fromApp(id))
		t.Logf("node %s: %d lists to its app, %d back, %d connects", id, len(got), len(back), connects)
		echo := 0
		for i, m := range back {
			v := ints(m)
			if v[0] != i {
				t.Fatalf("node %s: list %d from its app has count %d: lost, repeated or out of order\n%s", id, i, v[0], st)
			}
			if v[1] < echo || v[1] >= len(got) {
				t.Errorf("node %s: its app echoed count %d after %d, having got %d lists", id, v[1], echo, len(got))
			}
			echo = v[1]
		}
	}
}

// TestServerAppSkipsBadLines plays node 1 by hand: the app reports lines
// that are not [connects, count, heap], skips them, and echoes the figures
// of the next good one.
func TestServerAppSkipsBadLines(t *testing.T) {
	t.Parallel()
	ctx := demotest.Context(t)
	st := demotest.NewStory()
	out := demo.NewPrinter(st)
	sim := demotest.StartSim(ctx, t, out, "1")
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- mainapp.Server(runCtx, sim.Server, []string{"1"}, out, interval, nil) }()
	defer func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("Server: %v", err)
		}
	}()

	node := sim.Nodes["1"]
	for _, line := range []string{"hello", "[1,2]", "[1,5,7]"} {
		if err := node.Write(ctx, line); err != nil {
			t.Fatal(err)
		}
	}
	bad := st.Await(ctx, t, regexp.MustCompile(`app 1 +got a line that is not \[connects, count, heap\]: "(.*)"$`), 2)
	if bad[0][1] != "hello" || bad[1][1] != "[1,2]" {
		t.Errorf("bad lines reported: %q, %q", bad[0][1], bad[1][1])
	}
	st.Await(ctx, t, regexp.MustCompile(`app 1 +got  \[1,5,7\] from node 1$`), 1)
	echo := regexp.MustCompile(`^\[\d+,5,7\]$`)
	for {
		line, err := node.ReadLine(ctx)
		if err != nil {
			t.Fatalf("the app never echoed count 5 and heap 7: %v\n%s", err, st)
		}
		if echo.MatchString(line) {
			break
		}
	}
}

// TestAppsEndQuietly checks that the apps end without error when their
// run ends: the server's while it still awaits a node, a node's when its
// link is closed.
func TestAppsEndQuietly(t *testing.T) {
	t.Parallel()
	ctx := demotest.Context(t)
	st := demotest.NewStory()
	out := demo.NewPrinter(st)
	sim := demotest.StartSim(ctx, t, out, "1")

	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- mainapp.Server(runCtx, sim.Server, []string{"9"}, out, interval, nil) }()
	st.Await(ctx, t, regexp.MustCompile(`app 9 +awaiting node 9$`), 1)
	stop()
	if err := <-done; err != nil {
		t.Errorf("Server ended with %v, want nil", err)
	}

	sim.Nodes["1"].Close()
	if err := mainapp.Node(ctx, sim.Nodes["1"], out, interval, nil); err != nil {
		t.Errorf("Node on a closed link ended with %v, want nil", err)
	}
}
