package metrics_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/tether-iot/tether/client"
	"github.com/tether-iot/tether/gateway/internal/metrics"
	tutil "github.com/tether-iot/tether/internal/harness/testutil"
	"github.com/tether-iot/tether/internal/harness/tethertest"
	"github.com/tether-iot/tether/server"
)

// TestNodeMetrics counts the series of one node at each NodeMetrics
// level, and checks that the fleet series are the same at every level
// and carry no node label.
func TestNodeMetrics(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	const T = 300 * time.Millisecond
	srv, err := server.New(server.Config{Timeout: T, Logger: tutil.Logger()})
	if err != nil {
		t.Fatal(err)
	}
	addr := tethertest.Serve(t, srv)
	a := tethertest.DialUp(t, ctx, client.Config{ID: "a", Server: addr, Timeout: T})
	tethertest.DialUp(t, ctx, client.Config{ID: "b", Server: addr, Timeout: T})
	na, err := srv.Lookup("a")
	if err != nil {
		t.Fatal(err)
	}
	if err := na.Write(ctx, "down"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.ReadLine(ctx); err != nil {
		t.Fatal(err)
	}
	if err := a.Write(ctx, "up"); err != nil {
		t.Fatal(err)
	}
	if _, err := na.ReadLine(ctx); err != nil {
		t.Fatal(err)
	}

	// series returns the number of series of node id and the names of
	// the fleet families (those without a node label).
	series := func(level metrics.NodeMetrics) (int, []string) {
		col := metrics.New(metrics.Config{
			Server:      srv,
			Stored:      func(string) int { return 0 },
			Dropped:     func(string) uint64 { return 0 },
			NodeMetrics: level,
			NoRuntime:   true,
		})
		mfs, err := col.Registry().Gather()
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		var fleet []string
		for _, mf := range mfs {
			perNode := false
			for _, m := range mf.GetMetric() {
				for _, lp := range m.GetLabel() {
					if lp.GetName() == "node" {
						perNode = true
						if lp.GetValue() == "a" {
							n++
						}
					}
				}
			}
			if !perNode {
				if strings.HasPrefix(mf.GetName(), "tether_node_") {
					t.Errorf("%v: family %s has no series", level, mf.GetName())
				}
				fleet = append(fleet, mf.GetName())
			}
		}
		problems, err := testutil.GatherAndLint(col.Registry())
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range problems {
			t.Errorf("%v: lint: %s: %s", level, p.Metric, p.Text)
		}
		return n, fleet
	}

	basic, fleet := series(metrics.NodeBasic)
	if basic != 5 {
		t.Errorf("basic: %d series for node a, want 5", basic)
	}
	if zero, _ := series(0); zero != basic {
		t.Errorf("the zero NodeMetrics gives %d series, want basic's %d", zero, basic)
	}
	full, ffleet := series(metrics.NodeFull)
	// 24 always, plus its last receive time, last ACK round trip and
	// inferred T once known.
	if full < 24 || full > 27 {
		t.Errorf("full: %d series for node a, want 24 to 27", full)
	}
	none, nfleet := series(metrics.NodeNone)
	if none != 0 {
		t.Errorf("none: %d series for node a, want 0", none)
	}
	if strings.Join(fleet, " ") != strings.Join(ffleet, " ") || strings.Join(fleet, " ") != strings.Join(nfleet, " ") {
		t.Errorf("fleet families differ by level:\nbasic %v\nfull  %v\nnone  %v", fleet, ffleet, nfleet)
	}
	t.Logf("series for one node: none %d, basic %d, full %d; fleet families %d", none, basic, full, len(fleet))

	for _, s := range []string{"", "basic", "full", "none"} {
		lv, err := metrics.ParseNodeMetrics(s)
		if err != nil || (s != "" && lv.String() != s) {
			t.Errorf("ParseNodeMetrics(%q) = %v, %v", s, lv, err)
		}
	}
	if _, err := metrics.ParseNodeMetrics("some"); err == nil {
		t.Error("ParseNodeMetrics(some): no error")
	}
}
