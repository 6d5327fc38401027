package main

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"math"
	"os"
	"os/exec"
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

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// TestBenchNoMosquitto: without mosquitto the bench runs and says, on
// stderr and in the JSON, that its baseline was skipped.
func TestBenchNoMosquitto(t *testing.T) {
	dir := t.TempDir()
	jsonFile := filepath.Join(dir, "bench.json")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	args := []string{"bench", "--quick", "--nodes", "inprocess", "--only", "latency",
		"--samples", "50", "--mosquitto", filepath.Join(dir, "no-such-mosquitto"), "--json", jsonFile}
	e := &env{stdin: strings.NewReader(""), stdout: &stdout, stderr: &stderr}
	if err := run(ctx, e, args); err != nil {
		t.Fatalf("tether bench: %v\nstderr:\n%s", err, stderr.String())
	}
	if !strings.Contains(stderr.String(), "mosquitto baseline SKIPPED: mosquitto is not installed") {
		t.Errorf("no skip line on stderr:\n%s", stderr.String())
	}
	if !strings.Contains(stdout.String(), "MQTT QoS 1 via mosquitto: skipped") {
		t.Errorf("no skip row in the table:\n%s", stdout.String())
	}
	b, err := os.ReadFile(jsonFile)
	if err != nil {
		t.Fatal(err)
	}
	var res map[string]any
	if err := json.Unmarshal(b, &res); err != nil {
		t.Fatal(err)
	}
	if res["mosquitto_skipped"] != true {
		t.Errorf("JSON mosquitto_skipped = %v, want true", res["mosquitto_skipped"])
	}
	if _, ok := res["mosquitto_qos1_p50_us"]; ok {
		t.Errorf("JSON has mosquitto_qos1_p50_us = %v for a skipped baseline", res["mosquitto_qos1_p50_us"])
	}
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
			// Every headline figure also as a ratio to its raw baseline.
			for _, key := range []string{"qos_rtt_p50_us_ratio", "qos_rtt_p99_us_ratio", "mqtt_qos1_p50_us_ratio",
				"idle_bytes_per_node_ratio", "storm_seconds_ratio", "aggregate_qos_msgs_per_s_ratio"} {
				if _, ok := res[key].(float64); !ok {
					t.Errorf("JSON %s = %v, want a number", key, res[key])
				}
			}
			// mosquitto, when installed (scripts/test installs it), beside
			// mochi-mqtt; otherwise a clear skip.
			if _, err := exec.LookPath("mosquitto"); err == nil || fileExists("/usr/sbin/mosquitto") {
				for _, key := range []string{"mosquitto_qos1_p50_us", "mosquitto_qos1_msgs_per_s",
					"mosquitto_qos1_p50_us_ratio", "mosquitto_qos1_msgs_per_s_ratio"} {
					v, ok := res[key].(float64)
					if !ok || v <= 0 || math.IsNaN(v) || math.IsInf(v, 0) {
						t.Errorf("JSON %s = %v, want a positive number", key, res[key])
					}
				}
				if !strings.Contains(stdout.String(), "mosquitto + Paho") || !strings.Contains(stdout.String(), "MQTT QoS 1 via mosquitto, lock-step") {
					t.Errorf("table lacks mosquitto's rows:\n%s", stdout.String())
				}
			} else if res["mosquitto_skipped"] != true || !strings.Contains(stderr.String(), "mosquitto baseline SKIPPED") {
				t.Errorf("mosquitto absent, but no skip recorded: mosquitto_skipped %v; stderr:\n%s", res["mosquitto_skipped"], stderr.String())
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
