package main

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/tether-iot/tether/internal/tools/bench"
)

// init makes this test binary a node farm when the bench re-executes it
// (in the real binary, "tether bench --node-farm" does the same).
func init() {
	if os.Getenv(farmEnv) != "1" {
		return
	}
	if err := bench.ServeFarm(context.Background(), os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "node farm:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// TestBenchQuick is a smoke run of the bench with tiny N, nodes in a
// child process and in-process: it checks that every scenario runs and
// reports sane figures, not how fast they are.
func TestBenchQuick(t *testing.T) {
	for _, mode := range []string{"process", "inprocess"} {
		t.Run(mode, func(t *testing.T) {
			dir := t.TempDir()
			jsonFile := filepath.Join(dir, "bench.json")
			svgFile := filepath.Join(dir, "hist.svg")
			mdFile := filepath.Join(dir, "bench.md")
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			var stdout, stderr bytes.Buffer
			args := []string{"bench", "--quick", "--nodes", mode,
				"--samples", "50", "--duration", "150ms", "--agg-nodes", "6",
				"--scale", "6", "--idle", "300ms", "--reconnect-delay", "50ms",
				"--json", jsonFile, "--hist", svgFile, "--md", mdFile}
			e := &env{stdin: strings.NewReader(""), stdout: &stdout, stderr: &stderr}
			if err := run(ctx, e, args); err != nil {
				t.Fatalf("tether bench: %v\nstderr:\n%s", err, stderr.String())
			}

			b, err := os.ReadFile(jsonFile)
			if err != nil {
				t.Fatal(err)
			}
			var res map[string]any
			if err := json.Unmarshal(b, &res); err != nil {
				t.Fatalf("JSON: %v", err)
			}
			for _, key := range []string{"raw_echo_p50_us", "qos_rtt_p50_us", "qos_rtt_p99_us",
				"mqtt_qos1_p50_us", "idle_nodes", "idle_bytes_per_node", "storm_nodes",
				"storm_seconds", "aggregate_qos_msgs_per_s"} {
				v, ok := res[key].(float64)
				if !ok || v == 0 || math.IsNaN(v) || math.IsInf(v, 0) {
					t.Errorf("JSON %s = %v, want a non-zero number", key, res[key])
				}
			}
			if v, ok := res["idle_cpu_percent"].(float64); !ok || v < 0 || v > 100*float64(runtime.NumCPU()) {
				t.Errorf("JSON idle_cpu_percent = %v, want a percentage", res["idle_cpu_percent"])
			}
			if res["idle_nodes"] != 6.0 || res["storm_nodes"] != 6.0 {
				t.Errorf("idle_nodes %v, storm_nodes %v, want 6", res["idle_nodes"], res["storm_nodes"])
			}
			wantMode := map[string]string{"process": "subprocess", "inprocess": "in-process"}[mode]
			if res["nodes_mode"] != wantMode {
				t.Errorf("nodes_mode %v, want %s", res["nodes_mode"], wantMode)
			}

			md, err := os.ReadFile(mdFile)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(md, stdout.Bytes()) {
				t.Error("the -md file differs from the table on stdout")
			}
			for _, want := range []string{"| # | scenario |", "raw TCP line echo", "MQTT QoS 1", "storm, 6 nodes", "idle, 6 nodes"} {
				if !strings.Contains(stdout.String(), want) {
					t.Errorf("table lacks %q:\n%s", want, stdout.String())
				}
			}
			if !strings.Contains(stderr.String(), "bench [") {
				t.Errorf("no progress on stderr:\n%s", stderr.String())
			}
			svg, err := os.ReadFile(svgFile)
			if err != nil {
				t.Fatal(err)
			}
			if err := xml.Unmarshal(svg, new(struct{})); err != nil {
				t.Errorf("histogram SVG is not XML: %v", err)
			}
		})
	}
}
