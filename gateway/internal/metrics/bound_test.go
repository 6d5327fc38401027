package metrics_test

import (
	"bytes"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/tether-iot/tether/gateway/internal/metrics"
	tutil "github.com/tether-iot/tether/internal/harness/testutil"
	"github.com/tether-iot/tether/server"
)

// TestMaxNodes: past MaxNodes nodes, per-node series go to the priority
// nodes first, then the others in ID order; the rest are counted, and
// a warning is logged once when nodes start being left out.
func TestMaxNodes(t *testing.T) {
	srv, err := server.New(server.Config{Logger: tutil.Logger()})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	ids := []string{"z-honest"}
	for i := range 3000 {
		ids = append(ids, fmt.Sprintf("flood-%04d", i))
	}
	var logs bytes.Buffer
	nodes := func() []string { return ids }
	scrape := func(col *metrics.Collector) (up []string, omitted string) {
		t.Helper()
		mfs, err := col.Registry().Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			switch mf.GetName() {
			case "tether_node_up":
				for _, m := range mf.GetMetric() {
					up = append(up, m.GetLabel()[0].GetValue())
				}
			case "tether_nodes_series_omitted":
				omitted = fmt.Sprint(mf.GetMetric()[0].GetGauge().GetValue())
			}
		}
		return up, omitted
	}

	col := metrics.New(metrics.Config{
		Server: srv, Offline: nodes, NoRuntime: true,
		Stored:   func(string) int { return 1 },
		Priority: func(id string) bool { return id == "z-honest" },
		Logger:   slog.New(slog.NewTextHandler(&logs, nil)),
	})
	up, omitted := scrape(col)
	if len(up) != metrics.DefaultMaxNodes || omitted != "2001" {
		t.Fatalf("default bound: %d nodes with series, %s omitted; want %d, 2001", len(up), omitted, metrics.DefaultMaxNodes)
	}
	if !slices.Contains(up, "z-honest") || !slices.Contains(up, "flood-0000") || slices.Contains(up, "flood-0999") {
		t.Errorf("kept %v...: want the priority node, then the first IDs", up[:5])
	}
	scrape(col)
	if n := strings.Count(logs.String(), "more nodes than the bound"); n != 1 {
		t.Errorf("warned %d times over two scrapes, want once:\n%s", n, logs.String())
	}
	ids = ids[:10]
	if up, omitted = scrape(col); len(up) != 10 || omitted != "0" {
		t.Errorf("after the flood left: %d nodes with series, %s omitted; want 10, 0", len(up), omitted)
	}
	if !strings.Contains(logs.String(), "every node has its per-node series again") {
		t.Errorf("no line when the bound stopped leaving nodes out:\n%s", logs.String())
	}
	// The series stay well-formed (one family each).
	if problems, err := testutil.GatherAndLint(col.Registry()); err != nil || len(problems) > 0 {
		t.Errorf("lint: %v %v", problems, err)
	}

	ids = append(ids, "a", "b", "c")
	for _, c := range []struct {
		max  int
		want int
	}{{-1, 13}, {2, 2}} {
		col := metrics.New(metrics.Config{Server: srv, Offline: nodes, NoRuntime: true, MaxNodes: c.max, Logger: tutil.Logger()})
		if up, _ := scrape(col); len(up) != c.want {
			t.Errorf("MaxNodes %d: %d nodes with series, want %d", c.max, len(up), c.want)
		}
	}
}
