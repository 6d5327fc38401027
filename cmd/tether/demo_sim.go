package main

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/tether-iot/tether/internal/notify"
	"github.com/tether-iot/tether/internal/tools/demo"
	"github.com/tether-iot/tether/internal/tools/demo/mainapp"
	"github.com/tether-iot/tether/internal/tools/demo/qos"
	"github.com/tether-iot/tether/internal/tools/demo/remote"
)

// runDemoSim runs a demo in one process: server, simulated nodes, and
// with --outages an injector; the qos demos end with a verdict.
func runDemoSim(ctx context.Context, name string, f demoFlags, out *demo.Printer, log *slog.Logger, live *liveOutput) error {
	ids, err := demoIDs(name, f.nodes)
	if err != nil {
		return err
	}
	how := "no outages (add --outages to inject some)"
	if f.outages {
		how = "outages of every kind injected"
	}
	length := "until interrupted"
	if f.duration > 0 {
		length = "for " + f.duration.String()
	}
	out.Say("demo", "%s: server and nodes %v in this process, T=%v, %s, %s", name, ids, f.timeout, how, length)
	sim, err := demo.StartSim(ctx, demo.SimConfig{IDs: ids, Timeout: f.timeout, Out: out, Logger: log})
	if err != nil {
		return err
	}
	defer sim.Close()

	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	if f.duration > 0 {
		runCtx, stop = context.WithTimeout(ctx, f.duration)
		defer stop()
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	goRun := func(fn func()) {
		wg.Add(1)
		go func() { defer wg.Done(); fn() }()
	}

	var sides [2]*qos.Side // node, server
	var chk mainapp.Checks
	switch name {
	case "main":
		goRun(func() { mainapp.Server(runCtx, sim.Server, ids, out, f.interval, &chk) })
		for _, id := range ids {
			goRun(func() { mainapp.Node(runCtx, sim.Nodes[id], out, f.interval, &chk) })
		}
	case "remote":
		runRemoteSim(runCtx, sim, f, out, goRun)
	case "qos", "qos-fast":
		l, err := sim.Server.Node(ctx, qos.ID)
		if err != nil {
			return err
		}
		appCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		defer cancel()
		cfg := qos.Config{Fast: name == "qos-fast", Interval: f.interval, Out: out}
		cfg.Node = true
		sides[0] = qos.Start(appCtx, sim.Nodes[qos.ID], cfg)
		cfg.Node = false
		sides[1] = qos.Start(appCtx, l, cfg)
		defer sides[0].Close()
		defer sides[1].Close()
	}
	in := &demo.Injector{Sim: sim, Out: out, Seed: f.seed}
	if f.outages {
		goRun(func() { in.Run(runCtx) })
		goRun(func() {
			every := time.Second
			if !live.tty {
				every = 5 * time.Second
			}
			t := time.NewTicker(every)
			defer t.Stop()
			defer live.Done()
			for {
				select {
				case <-t.C:
					live.Status(fmt.Sprintf("demo %s  %v  outages survived %d (%s)  nodes up %d/%d",
						name, out.Elapsed().Round(time.Second), sim.Outages(), in.Summary(), sim.Up(), len(ids)))
				case <-runCtx.Done():
					return
				}
			}
		})
	}
	<-runCtx.Done()
	wg.Wait()
	interrupted := ctx.Err() != nil // Ctrl-C, rather than --duration
	outages := outageSummary(sim.Outages(), in.Total(), in.Summary(), f.outages, interrupted)
	switch {
	case name == "main":
		if err := mainVerdict(out, &chk, "the nodes and server apps"); err != nil {
			out.Say("demo", "over: %s", outages)
			return err
		}
		out.Say("demo", "over: %s", outages)
		return nil
	case sides[0] == nil:
		out.Say("demo", "over: %s", outages)
		return nil
	}
	return qosVerdict(context.WithoutCancel(ctx), sides, out, f.timeout, outages, interrupted)
}

// outageSummary says what became of the outages: how many the links
// survived, and how many were still in progress when the demo stopped.
func outageSummary(survived, injected int, kinds string, injecting, interrupted bool) string {
	if !injecting {
		if survived == 0 {
			return "no outages injected (add --outages to inject some), none seen"
		}
		return fmt.Sprintf("no outages injected (add --outages to inject some); the links had %d outages of their own and survived them", survived)
	}
	s := fmt.Sprintf("%d outages survived; %s", survived, kinds)
	if injected > survived {
		when := "when the time was up"
		if interrupted {
			when = "when the demo was interrupted"
		}
		s += fmt.Sprintf("; %d still in progress %s (the links were down, waiting to recover)", injected-survived, when)
	}
	return s
}

// mainVerdict ends the main demo with what its receivers counted: lost
// (a gap below a number that arrived: with qos and wait, order is kept)
// and duplicated.
func mainVerdict(out *demo.Printer, chk *mainapp.Checks, who string) error {
	received, lost, dup := chk.Totals()
	verdict := "PASS"
	if lost+dup > 0 {
		verdict = "FAIL"
	}
	out.Say("VERDICT", "%s: %d lost, %d duplicated; %d messages received by %s", verdict, lost, dup, received, who)
	if verdict != "PASS" {
		return fmt.Errorf("main demo failed: %d lost, %d duplicated", lost, dup)
	}
	return nil
}

// qosVerdict ends both sides of a qos demo and compares what each sent
// with what the other received.
func qosVerdict(ctx context.Context, sides [2]*qos.Side, out *demo.Printer, T time.Duration, outages string, interrupted bool) error {
	why := "time is up"
	if interrupted {
		why = "interrupted"
	}
	out.Say("demo", "%s: both sides stop writing, wait for their last messages to be acknowledged, and compare counts", why)
	ctx, cancel := context.WithTimeout(ctx, 20*T+10*time.Second)
	defer cancel()
	var res [2]qos.Result
	var errs [2]error
	var wg sync.WaitGroup
	for i, s := range sides {
		wg.Add(1)
		go func() { defer wg.Done(); res[i], errs[i] = s.Finish(ctx) }()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return fmt.Errorf("qos demo: %w", err)
		}
	}
	node, srv := res[0], res[1]
	out.Say("node qos", "%s", sides[0].Report())
	out.Say("server", "%s", sides[1].Report())
	lost := node.Lost + srv.Lost
	dup := node.Duplicated + srv.Duplicated
	order := node.OutOfOrder + srv.OutOfOrder
	verdict := "PASS"
	if lost+dup > 0 {
		verdict = "FAIL"
	}
	out.Say("VERDICT", "%s: %d lost, %d duplicated, %d out of order; %s",
		verdict, lost, dup, order, outages)
	out.Say("VERDICT", "node -> server: %d sent, %d received; server -> node: %d sent, %d received",
		node.Sent, srv.Received, srv.Sent, node.Received)
	if verdict != "PASS" {
		return fmt.Errorf("qos demo failed: %d lost, %d duplicated", lost, dup)
	}
	return nil
}

// runRemoteSim runs the remote control demo's apps, with a switch that
// flips by itself and the latency of each flip measured at the LED.
func runRemoteSim(ctx context.Context, sim *demo.Sim, f demoFlags, out *demo.Printer, goRun func(func())) {
	sw := remote.NewSwitch()
	var mu sync.Mutex
	var flipped time.Time
	var want bool
	led := func(on bool) {
		mu.Lock()
		defer mu.Unlock()
		if on == want && !flipped.IsZero() {
			out.Say("node rx", "the LED follows the switch %v after it flipped", time.Since(flipped).Round(100*time.Microsecond))
		}
	}
	goRun(func() { remote.Server(ctx, sim.Server, out) })
	goRun(func() { remote.TXNode(ctx, sim.Nodes[remote.TX], sw, out) })
	goRun(func() { remote.RXNode(ctx, sim.Nodes[remote.RX], out, led) })
	goRun(func() {
		rng := rand.New(rand.NewPCG(f.seed, 3))
		for {
			if !notify.Sleep(ctx, time.Second+time.Duration(rng.Int64N(int64(2*time.Second)))) {
				return
			}
			mu.Lock()
			want = !want
			flipped = time.Now()
			mu.Unlock()
			sw.Set(want)
			out.Say("switch", "flipped %s", map[bool]string{true: "on", false: "off"}[want])
		}
	})
}
