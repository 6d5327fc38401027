package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"strings"

	"github.com/tether-iot/tether/internal/tools/bench"
)

// farmEnv marks a child started as a node farm, for test binaries that
// re-execute themselves (see bench_test.go).
const farmEnv = "TETHER_BENCH_NODE_FARM"

func runBench(ctx context.Context, e *env, args []string) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	var (
		cfg       bench.Config
		nodes     = fs.String("nodes", "process", "where the simulated nodes run: `process` (a child process, so that server figures are the server's alone) or inprocess")
		jsonOut   = fs.String("json", "", "write the figures as JSON to `FILE`")
		mdOut     = fs.String("md", "", "write the Markdown table to `FILE` too")
		hist      = fs.String("hist", "", "draw the latency histogram to `FILE` (SVG)")
		only      = fs.String("only", "", "run only these comma-separated scenarios: latency, throughput, scale")
		scale     = fs.String("scale", "", "comma-separated numbers of idle nodes for scenarios 3-5 (default 100,1000,10000; quick 20,100)")
		cpuProf   = fs.String("cpuprofile", "", "write a CPU profile of the server process to `FILE`")
		heapProf  = fs.String("heapprofile", "", "write a heap profile of the server process, taken while the most nodes are idle, to `FILE`")
		idleProf  = fs.String("idleprofile", "", "write a CPU profile of the server process during the idle window of the most nodes to `FILE`")
		stormProf = fs.String("stormprofile", "", "write a CPU profile of the server process over the reconnect storm of the most nodes to `FILE`")
		nodeFarm  = fs.Bool("node-farm", false, "internal: serve as the node farm of a parent bench on stdin/stdout")
		quiet     = fs.Bool("q", false, "no progress on stderr")
		showTable = fs.Bool("table", true, "print the Markdown table on stdout")
	)
	fs.BoolVar(&cfg.Quick, "quick", false, "run every scenario small: seconds, not minutes")
	fs.DurationVar(&cfg.Timeout, "T", 0, "the link timeout T (default 2s)")
	fs.IntVar(&cfg.Samples, "samples", 0, "round trips per latency figure (default 20000; quick 500)")
	fs.DurationVar(&cfg.Duration, "duration", 0, "length of each throughput run (default 5s; quick 1s)")
	fs.IntVar(&cfg.Writers, "writers", 0, "writers sharing one connection for qos without wait (default 16)")
	fs.IntVar(&cfg.AggNodes, "agg-nodes", 0, "nodes of the aggregate throughput run (default 1000; quick 50)")
	fs.DurationVar(&cfg.Idle, "idle", 0, "idle window of scenario 3 (default 60s; quick 2s)")
	fs.DurationVar(&cfg.ReconnectDelay, "reconnect-delay", 0, "the nodes' wait before reconnecting, not counted in the storm (default 2T; quick 200ms)")
	fs.IntVar(&cfg.Size, "size", 0, "payload bytes per message (default 32)")
	fs.StringVar(&cfg.Mosquitto, "mosquitto", "", "the mosquitto `binary` of the second MQTT baseline (default: on the PATH or /usr/sbin/mosquitto); if there is none, that baseline is skipped with a line saying so")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `Usage: tether bench [flags]

Runs the performance scenarios and prints one Markdown table, every figure
next to its baseline measured in the same run:
  1 latency of one node: qos round trip and one-way, against a raw TCP
    line echo and MQTT QoS 1 (embedded mochi-mqtt broker and, when
    installed, mosquitto; Paho client);
  2 throughput: one connection (qos off, with wait, without wait) and
    many nodes at once;
  3 N idle nodes: server memory per node, CPU, spurious outages (and
    mosquitto's memory and CPU for N idle MQTT clients);
  4 reconnect storm: the server restarted under N nodes;
  5 how 3 and 4 grow with N.

Flags:
`)
		fs.PrintDefaults()
	}
	if err := parseFlags(e, fs, args); err != nil {
		return err
	}
	if *nodeFarm {
		return bench.ServeFarm(ctx, e.stdin, e.stdout)
	}
	if *scale != "" {
		for f := range strings.SplitSeq(*scale, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || n < 1 {
				fmt.Fprintf(e.stderr, "tether bench: bad -scale %q\n", *scale)
				return errUsage
			}
			cfg.Scale = append(cfg.Scale, n)
		}
	}
	if *only != "" {
		for f := range strings.SplitSeq(*only, ",") {
			switch f = strings.TrimSpace(f); f {
			case "latency", "throughput", "scale":
				cfg.Only = append(cfg.Only, f)
			default:
				fmt.Fprintf(e.stderr, "tether bench: bad -only %q\n", f)
				return errUsage
			}
		}
	}
	switch *nodes {
	case "process":
		cfg.NewFarm = startFarmProcess
	case "inprocess":
	default:
		fmt.Fprintf(e.stderr, "tether bench: -nodes must be process or inprocess, not %q\n", *nodes)
		return errUsage
	}
	if !*quiet {
		cfg.Progress = e.stderr
	}
	if *heapProf != "" || *idleProf != "" {
		biggest := 0
		for _, n := range cfg.Scale {
			biggest = max(biggest, n)
		}
		var prof *os.File
		cfg.AtIdle = func(n int, end bool) {
			if n < biggest {
				return
			}
			if err := profileIdle(*heapProf, *idleProf, end, &prof); err != nil {
				fmt.Fprintf(e.stderr, "tether bench: profile: %v\n", err)
			}
		}
	}
	if *stormProf != "" {
		biggest := 0
		for _, n := range cfg.Scale {
			biggest = max(biggest, n)
		}
		var prof *os.File
		cfg.AtStorm = func(n int, end bool) {
			if n < biggest {
				return
			}
			if err := profileIdle("", *stormProf, end, &prof); err != nil {
				fmt.Fprintf(e.stderr, "tether bench: profile: %v\n", err)
			}
		}
	}
	if *cpuProf != "" {
		f, err := os.Create(*cpuProf)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			f.Close()
			return err
		}
		defer func() {
			pprof.StopCPUProfile()
			f.Close()
		}()
	}
	res, err := bench.Run(ctx, cfg)
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	res.Command = "tether bench " + strings.Join(args, " ")
	md := res.Markdown()
	if *showTable {
		fmt.Fprint(e.stdout, md)
	}
	if *mdOut != "" {
		if err := os.WriteFile(*mdOut, []byte(md), 0o644); err != nil {
			return err
		}
	}
	if *jsonOut != "" {
		b, err := res.JSON()
		if err != nil {
			return err
		}
		if err := os.WriteFile(*jsonOut, append(b, '\n'), 0o644); err != nil {
			return err
		}
	}
	if *hist != "" {
		if err := writeHistogram(res, *hist); err != nil {
			return err
		}
	}
	return nil
}

// startFarmProcess re-executes this program as a node farm.
func startFarmProcess(ctx context.Context) (bench.Farm, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("node farm: %w", err)
	}
	cmd := exec.Command(exe, "bench", "--node-farm")
	cmd.Env = append(os.Environ(), farmEnv+"=1")
	return bench.StartProcFarm(cmd)
}

// profileIdle writes the heap profile and starts the CPU profile at the
// start of the idle window, and stops the CPU profile at its end.
func profileIdle(heap, cpu string, end bool, prof **os.File) error {
	if end {
		if *prof != nil {
			pprof.StopCPUProfile()
			err := (*prof).Close()
			*prof = nil
			return err
		}
		return nil
	}
	if heap != "" {
		if err := writeHeapProfile(heap); err != nil {
			return err
		}
	}
	if cpu != "" {
		f, err := os.Create(cpu)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			f.Close()
			return err
		}
		*prof = f
	}
	return nil
}

func writeHeapProfile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func writeHistogram(res *bench.Result, path string) error {
	if !strings.EqualFold(filepath.Ext(path), ".svg") {
		return fmt.Errorf("bench: -hist %s: the file must end in .svg (the histogram is SVG)", path)
	}
	return os.WriteFile(path, res.HistogramSVG(), 0o644)
}
