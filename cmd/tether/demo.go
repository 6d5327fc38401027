package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/tether-iot/tether/internal/tools/demo"
	"github.com/tether-iot/tether/internal/tools/demo/mainapp"
	"github.com/tether-iot/tether/internal/tools/demo/qos"
	"github.com/tether-iot/tether/internal/tools/demo/remote"
)

const demoUsage = `Usage: tether demo DEMO [flags]

Runs one of the demos of the original micropython-iot project, with
simulated nodes, in this one process (each node talks to the server
through a fault proxy on loopback):

  main      up to four nodes (1-4) exchange a JSON list with their own
            instance of the server application every few seconds, qos on;
            ends with a verdict on what the receivers counted (lost,
            duplicated)
  remote    node tx sends its switch state; the server forwards it to
            node rx, which lights its LED; qos off, for low latency
  qos       node "qos" and the server exchange numbered qos messages and
            report uptime, outages, duplicates, missed and out-of-order
            messages and restarts, on both sides; the server also
            reads the original nodes (c_qos.py, c_qos_fast.py)
  qos-fast  the same with bursts of four concurrent writes without wait

  tether demo qos --outages        watch the link survive every kind of
                                   outage; ends with a verdict such as
                                   "PASS: 0 lost, 0 duplicated, ..."

The same demos split into a server process and node processes, on
different hosts (--timeout must be the same on all of them):

  tether demo main --serve [--addr :8123]          on the server host
  tether demo main --server HOST:8123 --node 1     on each node host (1-4)
  tether demo remote --server HOST:8123 --node tx --switch stdin
  tether demo remote --server HOST:8123 --node rx
  tether demo qos --server HOST:8123               (node ID "qos")

With --switch stdin, node tx reads its switch from stdin: 1 or on, 0 or
off, an empty line toggles. Split processes run until interrupted.

The story is told on stdout; logs go to stderr in slog's text format
(one line per node state change, with node=ID and state=up|down, at the
info level, the default when split).

Flags:
`

type demoFlags struct {
	outages    bool
	duration   time.Duration
	timeout    time.Duration
	interval   time.Duration
	serve      bool
	addr       string
	server     string
	node       string
	nodes      int
	seed       uint64
	log        logFlags
	switchFrom string
	retry      bool
}

var demoNames = []string{"main", "remote", "qos", "qos-fast"}

func runDemo(ctx context.Context, e *env, args []string) error {
	var f demoFlags
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), demoUsage)
		fs.PrintDefaults()
	}
	fs.BoolVar(&f.outages, "outages", false, "in one process: inject outages of every kind (cut, reset, black-hole, refused reconnect), one node at a time")
	fs.DurationVar(&f.duration, "duration", time.Minute, "in one process: how long the demo runs (0: until interrupted)")
	fs.DurationVar(&f.timeout, "timeout", time.Second, "T, the link timeout; the same on server and nodes")
	fs.DurationVar(&f.interval, "interval", 2*time.Second, "pause between two messages of an application")
	fs.BoolVar(&f.serve, "serve", false, "run only the demo's server side, for nodes in other processes")
	fs.StringVar(&f.addr, "addr", ":8123", "with --serve, the TCP `address` to listen on")
	fs.StringVar(&f.server, "server", "", "run only one node, connecting to the demo's server at `host:port`")
	fs.StringVar(&f.node, "node", "", "with --server, which node to run: `ID` 1-4 (main), tx or rx (remote), qos (qos demos; the default)")
	fs.IntVar(&f.nodes, "nodes", 4, "main demo in one process: how many nodes, 1 to 4")
	fs.Uint64Var(&f.seed, "seed", 1, "random `seed` for the outages' timing")
	f.log.register(fs, "", "log `level` on stderr: debug, info, warn, error (default warn in one process, info when split)")
	fs.StringVar(&f.switchFrom, "switch", "sim", "remote demo, node tx: where the switch comes from: sim (flips by itself) or stdin")
	fs.BoolVar(&f.retry, "retry", false, "with --server, keep trying if the server cannot be reached at start-up")

	// The demo's name may come before or after the flags.
	var name string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		name, args = args[0], args[1:]
	}
	if err := parseFlags(e, fs, args); err != nil {
		return err
	}
	rest := fs.Args()
	if name == "" && len(rest) > 0 {
		name, rest = rest[0], rest[1:]
		if err := fs.Parse(rest); err != nil {
			return errUsage
		}
		rest = fs.Args()
	}
	switch {
	case name == "":
		fs.SetOutput(e.stderr)
		fs.Usage()
		return fmt.Errorf("which demo? Choose one of %s, e.g. tether demo main", strings.Join(demoNames, ", "))
	case !slices.Contains(demoNames, name):
		return fmt.Errorf("unknown demo %q: choose one of %s", name, strings.Join(demoNames, ", "))
	case len(rest) > 0:
		return fmt.Errorf("unexpected argument %q after the demo's name: did you mean a flag? See tether help demo", rest[0])
	case f.serve && f.server != "":
		return errors.New("--serve and --server exclude each other: --serve runs the server side, --server HOST:PORT one node")
	case f.timeout <= 0 || f.interval <= 0:
		return errors.New("--timeout and --interval must be positive, e.g. --timeout 1s --interval 2s")
	case f.switchFrom != "sim" && f.switchFrom != "stdin":
		return fmt.Errorf("--switch %q: use sim or stdin", f.switchFrom)
	case f.node != "" && f.server == "":
		return errors.New("--node runs one node, so it needs the server's address: add --server HOST:PORT")
	}
	if f.log.level == "" {
		f.log.level = "warn"
		if f.serve || f.server != "" {
			f.log.level = "info"
		}
	}
	live := newLiveOutput(e.stderr)
	log, err := f.log.logger(e, live)
	if err != nil {
		return err
	}
	out := demo.NewPrinter(live.Above(e.stdout))
	switch {
	case f.serve:
		return runDemoServer(ctx, e, name, f, out, log)
	case f.server != "":
		return runDemoNode(ctx, e, name, f, out, log)
	}
	return runDemoSim(ctx, name, f, out, log, live)
}

// demoIDs returns the node IDs of a demo in one process.
func demoIDs(name string, nodes int) ([]string, error) {
	switch name {
	case "main":
		if nodes < 1 || nodes > len(mainapp.IDs) {
			return nil, fmt.Errorf("--nodes %d: the main demo has 1 to 4 nodes", nodes)
		}
		return mainapp.IDs[:nodes], nil
	case "remote":
		return []string{remote.TX, remote.RX}, nil
	}
	return []string{qos.ID}, nil
}

// quietEnd turns the end of a run by interruption into success.
func quietEnd(ctx context.Context, err error) error {
	if err != nil && ctx.Err() != nil && errors.Is(err, ctx.Err()) {
		return nil
	}
	return err
}
