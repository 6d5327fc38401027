package demo_test

import (
	"fmt"
	"regexp"
	"testing"

	"github.com/tether-iot/tether/internal/tools/demo/demotest"

	"github.com/tether-iot/tether/client"
	"github.com/tether-iot/tether/internal/harness/faultnet"
	"github.com/tether-iot/tether/internal/harness/lagprobe"
	"github.com/tether-iot/tether/internal/harness/testutil"
	"github.com/tether-iot/tether/internal/tools/demo"
)

// T is the link timeout of the tests: short, so that outages end fast.
const T = demotest.T

// TestSimRecoversFromOutages runs two nodes through the Sim's proxies,
// cuts one and resets the other, and checks that messages flow both ways
// before, during (qos, delivered once the node is back) and after, and
// that the Sim narrates and counts each outage.
// (Run by lagprobe.Retry: an outage that a stall of the process made,
// with T = 300 ms, voids an attempt.)
func TestSimRecoversFromOutages(t *testing.T) {
	t.Parallel()
	lagprobe.Retry(t, 5, func() {
		ctx := demotest.Context(t)
		st := demotest.NewStory()
		sim := demotest.StartSim(ctx, t, demo.NewPrinter(st), "a", "b")
		if sim.T != T {
			t.Errorf("Sim.T = %v, want %v", sim.T, T)
		}
		for _, id := range []string{"a", "b"} {
			st.Await(ctx, t, regexp.MustCompile(`node `+id+` +link up$`), 1)
		}
		if n := sim.Up(); n != 2 {
			t.Fatalf("Up = %d with both nodes up, want 2", n)
		}

		for i, tc := range []struct {
			id    string
			fault func(*faultnet.Proxy)
		}{
			{"a", (*faultnet.Proxy).Cut},
			{"b", (*faultnet.Proxy).Reset},
		} {
			node := sim.Nodes[tc.id]
			srv, err := sim.Server.Node(ctx, tc.id)
			if err != nil {
				t.Fatal(err)
			}
			if err := node.Write(ctx, "hello from "+tc.id); err != nil {
				t.Fatal(err)
			}
			if line, err := srv.ReadLine(ctx); err != nil || line != "hello from "+tc.id {
				t.Fatalf("server read %q, %v; want the node's hello", line, err)
			}

			tc.fault(sim.Proxies[tc.id])
			st.Await(ctx, t, regexp.MustCompile(`node `+tc.id+` +link DOWN: .+; reconnecting after 300ms$`), 1)
			st.Await(ctx, t, regexp.MustCompile(`server +node `+tc.id+`'s link down: `), 1)
			// Written during the outage: qos delivers it once the node is back.
			if err := srv.Write(ctx, "while you were away"); err != nil {
				t.Fatal(err)
			}
			if line, err := node.ReadLine(ctx); err != nil || line != "while you were away" {
				t.Fatalf("node %s read %q, %v after the outage", tc.id, line, err)
			}
			st.Await(ctx, t, regexp.MustCompile(`node `+tc.id+` +link UP again after \S+ \(reconnects so far: [1-9]\d*\)$`), 1)
			if n := sim.Outages(); n != i+1 {
				lagprobe.VoidIfStalled(t, T, T/4, fmt.Sprintf("after outage %d: Outages = %d", i+1, n))
				t.Errorf("after outage %d: Outages = %d", i+1, n)
			}
		}
		if n := sim.Up(); n != 2 {
			lagprobe.VoidIfStalled(t, T, T/4, fmt.Sprintf("Up = %d once both nodes are back, want 2", n))
			t.Errorf("Up = %d once both nodes are back, want 2", n)
		}
		if n := st.Count(regexp.MustCompile(`link DOWN`)); n != 2 {
			lagprobe.VoidIfStalled(t, T, T/4, fmt.Sprintf("%d DOWN lines for two outages", n))
			t.Errorf("%d DOWN lines for two outages:\n%s", n, st)
		}
	})
}

// TestSimNarratesNodeRestart replaces a node by a new process, as it
// were (a new client with the same ID): the server tells the restart
// from an outage and the Sim narrates it.
func TestSimNarratesNodeRestart(t *testing.T) {
	t.Parallel()
	ctx := demotest.Context(t)
	st := demotest.NewStory()
	sim := demotest.StartSim(ctx, t, demo.NewPrinter(st), "a")
	srv, err := sim.Server.Node(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	if err := sim.Nodes["a"].Write(ctx, "first life"); err != nil {
		t.Fatal(err)
	}
	if line, err := srv.ReadLine(ctx); err != nil || line != "first life" {
		t.Fatalf("server read %q, %v", line, err)
	}
	sim.Nodes["a"].Close()

	c, err := client.Dial(ctx, client.Config{ID: "a", Server: sim.Proxies["a"].Addr(), Timeout: T, ReconnectDelay: T, Logger: testutil.Logger()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Write(ctx, "second life"); err != nil {
		t.Fatal(err)
	}
	if line, err := srv.ReadLine(ctx); err != nil || line != "second life" {
		t.Fatalf("server read %q, %v", line, err)
	}
	st.Await(ctx, t, regexp.MustCompile(`server +node a restarted \(its message ids began again at 00\)$`), 1)
}

// TestStartSimFails checks that a Sim that cannot start says why and
// leaves nothing running (goleak would tell).
func TestStartSimFails(t *testing.T) {
	_, err := demo.StartSim(t.Context(), demo.SimConfig{IDs: []string{"a", ""}, Timeout: T, Logger: testutil.Logger()})
	if err == nil {
		t.Fatal("StartSim with an empty node ID succeeded")
	}
}
