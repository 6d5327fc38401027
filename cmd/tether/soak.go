package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"time"

	"github.com/tether-iot/tether/internal/tools/soak"
	"github.com/tether-iot/tether/server"
)

const soakUsage = `Usage: tether soak [flags]

Runs --nodes simulated nodes against a server, each through its own fault
proxy that injects outages of every kind at random: connections cut (FIN)
or reset (RST), the network gone silent for 1.5T to 3T (no FIN, no RST:
each end must notice by itself), reconnects refused. Nodes and server
exchange qos messages both ways, with wait on and off. At the end each
side tells the other what it sent, and the report gives the messages
each way, lost, duplicated, out of order (wait on), the outages survived
and the time to recover from each (node link down -> up, p50/p99).

The exit status is 1 on any loss, duplicate or out-of-order message, so
that CI can run, for instance:

  tether soak --nodes 20 --outages 300 --timeout 300ms

By default the server runs in this process. To soak a server on another
host, run "tether soak --serve --addr :8123" there and
"tether soak --server HOST:8123 --faults none" here (the fault proxies
forward to this machine's loopback only; make outages yourself, or run
both on the server's host with --server 127.0.0.1:8123).

A live line shows progress on stderr; logs go to stderr too, in slog's
text format (raise --log-level to info to see every state change).

Flags:
`

func runSoak(ctx context.Context, e *env, args []string) error {
	fs := flag.NewFlagSet("soak", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), soakUsage)
		fs.PrintDefaults()
	}
	var (
		cfg    soak.Config
		faults string
		seed   uint64
		serve  bool
		addr   string
		logf   logFlags
		quiet  bool
	)
	fs.IntVar(&cfg.Nodes, "nodes", 50, "how many simulated `nodes`")
	fs.IntVar(&cfg.Outages, "outages", 0, "stop after the nodes have survived this many `outages` in all (0: no limit)")
	fs.DurationVar(&cfg.Duration, "duration", 0, "stop after this `long` (0: no limit; with neither limit, 1m)")
	fs.DurationVar(&cfg.Timeout, "timeout", 300*time.Millisecond, "T, the link timeout of nodes and server (the same on both)")
	fs.DurationVar(&cfg.Interval, "interval", 0, "mean pause between two messages of a stream, per node and side (0: T/2)")
	fs.StringVar(&faults, "faults", "all", "outages to inject: all, none, or a comma-separated `list` of cut, reset, blackhole, refuse")
	fs.DurationVar(&cfg.FaultEvery, "fault-every", 0, "mean `time` a node's link stays up between two faults (0: 2T)")
	fs.Uint64Var(&seed, "seed", 1, "random `seed` for the faults and their timing")
	fs.StringVar(&cfg.Server, "server", "", "soak the server at `host:port`, which must run \"tether soak --serve\" (default: one in this process)")
	fs.DurationVar(&cfg.DrainTimeout, "drain-timeout", 0, "at the end, how long to wait for every message to be acknowledged (0: 20T+10s)")
	fs.BoolVar(&serve, "serve", false, "run only the server side, for soak nodes on other hosts, until interrupted")
	fs.StringVar(&addr, "addr", ":8123", "with --serve, the TCP `address` to listen on")
	logf.register(fs, "error", "log `level` on stderr: debug, info (every node up/down), warn, error")
	fs.BoolVar(&quiet, "quiet", false, "no live progress line")
	if err := parseFlags(e, fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("soak takes no arguments (got %q): did you mean a flag? See tether help soak", fs.Arg(0))
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	live := newLiveOutput(e.stderr)
	log, err := logf.logger(e, live)
	if err != nil {
		return err
	}
	if cfg.Timeout <= 0 {
		return fmt.Errorf("--timeout %v: T must be positive, e.g. --timeout 300ms", cfg.Timeout)
	}
	if serve {
		ln, err := listenTCP(ctx, addr)
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "soak peer serving on %s with T=%v; run \"tether soak --server THIS_HOST:%s --timeout %v\" on the node host; Ctrl-C to stop\n",
			ln.Addr(), cfg.Timeout, portOf(ln.Addr().String()), cfg.Timeout)
		return soak.Serve(ctx, ln, server.Config{Timeout: cfg.Timeout, Logger: log}, cfg.Interval)
	}
	if cfg.Nodes <= 0 {
		return fmt.Errorf("--nodes %d: run at least one node", cfg.Nodes)
	}
	if cfg.Outages < 0 || cfg.Duration < 0 {
		return errors.New("--outages and --duration cannot be negative")
	}
	if !set["outages"] && !set["duration"] {
		cfg.Duration = time.Minute
	}
	if cfg.Faults, err = soak.ParseFaults(faults); err != nil {
		return fmt.Errorf("--faults: %w", err)
	}
	cfg.Seed = seed
	cfg.Logger = log
	if !quiet {
		cfg.Progress = func(p soak.Progress) { live.Status("soak: " + p.String()) }
		if !live.tty {
			cfg.ProgressEvery = 5 * time.Second
		}
	}
	limit := "until interrupted"
	switch {
	case cfg.Outages > 0 && cfg.Duration > 0:
		limit = fmt.Sprintf("until %d outages or %v", cfg.Outages, cfg.Duration)
	case cfg.Outages > 0:
		limit = fmt.Sprintf("until %d outages", cfg.Outages)
	case cfg.Duration > 0:
		limit = fmt.Sprintf("for %v", cfg.Duration)
	}
	where := "an in-process server"
	if cfg.Server != "" {
		where = cfg.Server
	}
	fmt.Fprintf(e.stderr, "soak: %d nodes against %s, T=%v, faults %s, %s (Ctrl-C stops early and reports)\n",
		cfg.Nodes, where, cfg.Timeout, faults, limit)
	r, err := soak.Run(ctx, cfg)
	live.Done()
	if err != nil {
		return err
	}
	r.WriteTo(e.stdout)
	if !r.OK() {
		return fmt.Errorf("soak failed: %s", r.Verdict())
	}
	return nil
}
