package bench

import (
	"context"
	"fmt"
	"strconv"
	"time"
)

// aggWriters is how many writers each node runs in the aggregate run
// without wait.
const aggWriters = 8

// throughput is scenario 2: messages per second on one connection (qos
// off, qos with wait, qos without wait) and over many nodes, each next to
// raw TCP and MQTT run the same way.
func (r *runner) throughput(ctx context.Context) error {
	cfg := r.cfg
	w := cfg.Writers
	rates := []Rate{
		{Key: "one_off", Name: "1 connection, qos off", Conns: 1},
		{Key: "one_wait", Name: "1 connection, qos with wait", Conns: 1},
		{Key: "one_nowait", Name: fmt.Sprintf("1 connection, qos without wait, %d writers", w), Conns: 1},
		{Key: "aggregate_qos", Name: fmt.Sprintf("%d nodes, qos with wait", cfg.AggNodes), Conns: cfg.AggNodes},
		{Key: "aggregate_nowait", Name: fmt.Sprintf("%d nodes, qos without wait, %d writers each", cfg.AggNodes, aggWriters), Conns: cfg.AggNodes},
	}

	// Tether.
	ts, err := startTether("127.0.0.1:0", cfg.Timeout, cfg.Logger)
	if err != nil {
		return err
	}
	err = r.tetherRates(ctx, ts, rates)
	ts.close()
	if err != nil {
		return err
	}

	// Raw TCP, counted on the server as Tether is.
	echo, err := startEcho("127.0.0.1:0")
	if err != nil {
		return err
	}
	raw := []struct {
		i           int
		name, mode  string
		conns, wind int
	}{
		{0, "raw TCP line stream", "stream", 1, 0},
		{1, "raw TCP echo, lock-step", "window", 1, 1},
		{2, fmt.Sprintf("raw TCP echo, %d in flight", w), "window", 1, w},
		{3, "raw TCP echo, lock-step on each connection", "window", cfg.AggNodes, 1},
		{4, fmt.Sprintf("raw TCP echo, %d in flight on each connection", aggWriters), "window", cfg.AggNodes, aggWriters},
	}
	for _, b := range raw {
		r.progress("throughput: %s, %d connection(s), %v", b.name, b.conns, cfg.Duration)
		echo.lines.reset()
		spec := LoadSpec{Addr: echo.addr(), Conns: b.conns, Workers: b.wind, Duration: cfg.Duration,
			Size: cfg.Size, Mode: b.mode, PerIP: cfg.PerIP}
		c0, f0 := readCounters("self"), r.farmCounters(ctx)
		if _, err = r.do(ctx, Request{Op: "raw.run", Load: &spec}); err != nil {
			break
		}
		n := float64(echo.lines.count())
		costs := per(c0, readCounters("self"), n)
		rates[b.i].Baselines = append(rates[b.i].Baselines, Baseline{Name: b.name, Value: rate(&echo.lines), Costs: costs,
			NodeCosts: r.farmCosts(ctx, f0, n)})
	}
	echo.close()
	if err != nil {
		return err
	}

	// MQTT QoS 1, counted by the clients (PUBACKs received): mochi-mqtt,
	// then mosquitto.
	bk, err := startBroker(cfg.Logger)
	if err != nil {
		return err
	}
	err = r.mqttRates(ctx, rates, "MQTT QoS 1 via mochi-mqtt", bk.addr, "self")
	bk.close()
	if err != nil {
		return err
	}
	if !r.res.MosquittoSkipped {
		mq, err := startMosquitto(ctx, r.mosquittoBin)
		if err != nil {
			return err
		}
		r.res.Mosquitto = mq.version
		err = r.mqttRates(ctx, rates, mosquittoName, mq.addr, strconv.Itoa(mq.cmd.Process.Pid))
		mq.close()
		if err != nil {
			return err
		}
	}
	for i := range rates {
		q := &rates[i]
		if len(q.Baselines) == 0 {
			continue
		}
		raw := q.Baselines[0].Value
		q.Ratio = div(q.Tether, raw)
		for j := range q.Baselines {
			q.Baselines[j].Ratio = div(q.Baselines[j].Value, raw)
		}
	}
	r.res.Throughput = rates
	return nil
}

// mosquittoName starts the names of mosquitto's figures.
const mosquittoName = "MQTT QoS 1 via mosquitto"

// mqttRates measures an MQTT broker at addr, run by process pid,
// lock-step and with as many publishers as Config.Writers, as baselines
// of rates 1 and 2.
func (r *runner) mqttRates(ctx context.Context, rates []Rate, broker, addr, pid string) error {
	cfg := r.cfg
	for _, b := range []struct{ i, workers int }{{1, 1}, {2, cfg.Writers}} {
		name := broker + ", lock-step"
		if b.workers > 1 {
			name = fmt.Sprintf("%s, %d publishers", broker, b.workers)
		}
		r.progress("throughput: %s, %v", name, cfg.Duration)
		spec := LoadSpec{Addr: addr, Conns: 1, Workers: b.workers, Duration: cfg.Duration, Size: cfg.Size}
		c0, f0 := readCounters(pid), r.farmCounters(ctx)
		resp, err := r.do(ctx, Request{Op: "mqtt.run", Load: &spec})
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		costs := per(c0, readCounters(pid), float64(resp.Count))
		v := float64(resp.Count) / time.Duration(resp.Elapsed).Seconds()
		rates[b.i].Baselines = append(rates[b.i].Baselines, Baseline{Name: name, Value: v, Costs: costs,
			NodeCosts: r.farmCosts(ctx, f0, float64(resp.Count))})
	}
	return nil
}

func (r *runner) tetherRates(ctx context.Context, ts *tetherServer, rates []Rate) error {
	cfg := r.cfg
	one := func(i int, spec LoadSpec) error {
		r.progress("throughput: Tether %s, %v", rates[i].Name, cfg.Duration)
		ts.delivered.reset()
		c0, f0 := readCounters("self"), r.farmCounters(ctx)
		resp, err := r.do(ctx, Request{Op: "nodes.write", Load: &spec})
		if err != nil {
			return err
		}
		ok, err := r.waitFor(ctx, "deliveries", &ts.delivered, resp.Count)
		if err != nil {
			return err
		}
		rates[i].Costs = per(c0, readCounters("self"), float64(resp.Count))
		rates[i].NodeCosts = r.farmCosts(ctx, f0, float64(resp.Count))
		if !ok {
			return fmt.Errorf("%s: %d messages written, %d delivered", rates[i].Name, resp.Count, ts.delivered.count())
		}
		rates[i].Tether = rate(&ts.delivered)
		r.progress("throughput: Tether %s: %.0f msg/s", rates[i].Name, rates[i].Tether)
		return nil
	}
	nodes := func(n int) error {
		_, err := r.do(ctx, Request{Op: "nodes.start", Nodes: &NodesSpec{Addr: ts.addr(), N: n, Timeout: cfg.Timeout, PerIP: cfg.PerIP}})
		return err
	}
	stop := func() error {
		_, err := r.do(ctx, Request{Op: "nodes.stop"})
		return err
	}
	base := LoadSpec{Conns: 1, Workers: 1, Duration: cfg.Duration, Size: cfg.Size}
	if err := nodes(1); err != nil {
		return err
	}
	for i, mode := range []string{"off", "wait", "nowait"} {
		spec := base
		spec.Mode = mode
		if mode == "nowait" {
			spec.Workers = cfg.Writers
		}
		if err := one(i, spec); err != nil {
			stop()
			return err
		}
	}
	if err := stop(); err != nil {
		return err
	}
	r.progress("throughput: connecting %d nodes", cfg.AggNodes)
	if err := nodes(cfg.AggNodes); err != nil {
		return err
	}
	spec := base
	spec.Mode, spec.Conns = "wait", cfg.AggNodes
	err := one(3, spec)
	if err == nil {
		spec.Mode, spec.Workers = "nowait", aggWriters
		err = one(4, spec)
	}
	if serr := stop(); err == nil {
		err = serr
	}
	return err
}

// farmCounters reads the farm process's counters, if it is a process of
// its own (in-process, they would be the server's too).
func (r *runner) farmCounters(ctx context.Context) *counters {
	if !r.res.ServerOnly {
		return nil
	}
	resp, err := r.do(ctx, Request{Op: "usage"})
	if err != nil || resp.Usage == nil {
		return nil
	}
	return &resp.Usage.Counters
}

// farmCosts is the farm's costs per message since c0 (zero if unknown).
func (r *runner) farmCosts(ctx context.Context, c0 *counters, msgs float64) Costs {
	if c0 == nil {
		return Costs{}
	}
	c1 := r.farmCounters(ctx)
	if c1 == nil {
		return Costs{}
	}
	return per(*c0, *c1, msgs)
}

// rate is a gauge's events per second between its first and last.
func rate(g *gauge) float64 {
	n, d := g.count(), g.span()
	if n < 2 || d <= 0 {
		return 0
	}
	return float64(n-1) / d.Seconds()
}
