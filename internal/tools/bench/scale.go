package bench

import (
	"context"
	"fmt"
	"strconv"
	"time"
)

// scale runs scenarios 3 and 4 at n nodes: the server's cost per idle
// node, its CPU while idle, outages while idle, then a restart storm;
// and the same on raw TCP connections.
func (r *runner) scale(ctx context.Context, n int) (ScalePoint, error) {
	p := ScalePoint{N: n}
	if err := r.rawIdle(ctx, &p); err != nil {
		return p, fmt.Errorf("raw baseline: %w", err)
	}
	if !r.res.MosquittoSkipped {
		if err := r.mosquittoIdle(ctx, &p); err != nil {
			return p, fmt.Errorf("mosquitto baseline: %w", err)
		}
	}
	if err := r.idle(ctx, &p); err != nil {
		return p, err
	}
	if err := r.rawStorm(ctx, &p); err != nil {
		return p, fmt.Errorf("raw storm: %w", err)
	}
	p.BytesPerNodeRatio = div(p.BytesPerNode, p.RawBytesPerNode)
	p.RSSPerNodeRatio = div(p.RSSPerNode, p.RawRSSPerNode)
	p.IdleCPURatio = div(p.IdleCPUPercent, p.RawCPUPercent)
	p.StormRatio = div(p.StormSeconds, p.RawStormSeconds)
	p.MosquittoRSSPerNodeRatio = div(p.MosquittoRSSPerNode, p.RawRSSPerNode)
	p.MosquittoCPURatio = div(p.MosquittoCPUPercent, p.RawCPUPercent)
	r.progress("scale %d: %.0f B/node (heap+stacks), RSS %.0f B/node, idle CPU %.1f%%, downs %d/%d, storm %.2f s (raw %.2f s)",
		n, p.BytesPerNode, p.RSSPerNode, p.IdleCPUPercent, p.ServerDowns, p.NodeDowns, p.StormSeconds, p.RawStormSeconds)
	return p, nil
}

// idle measures n idle Tether nodes, then restarts the server under them.
func (r *runner) idle(ctx context.Context, p *ScalePoint) error {
	cfg, n := r.cfg, p.N
	ts, err := startTether("127.0.0.1:0", cfg.Timeout, cfg.Logger)
	if err != nil {
		return err
	}
	defer func() { ts.close() }()
	if err := r.pause(ctx, "settle", r.settle()); err != nil {
		return err
	}
	before := readUsage(true)
	r.progress("scale %d: connecting %d nodes", n, n)
	t0 := time.Now()
	_, err = r.do(ctx, Request{Op: "nodes.start", Nodes: &NodesSpec{Addr: ts.addr(), N: n,
		Timeout: cfg.Timeout, ReconnectDelay: cfg.ReconnectDelay, PerIP: cfg.PerIP}})
	if err != nil {
		return err
	}
	defer r.do(context.WithoutCancel(ctx), Request{Op: "nodes.stop"})
	if ok, err := r.waitFor(ctx, "nodes up", &ts.ups, int64(n)); err != nil || !ok {
		return cmp(err, fmt.Errorf("only %d of %d nodes up", ts.ups.count(), n))
	}
	p.ConnectSeconds = time.Since(t0).Seconds()
	// Let the connections settle: handshakes done, first keepalives and
	// write pauses over.
	if err := r.pause(ctx, "settle", r.settle()); err != nil {
		return err
	}
	after := readUsage(true)
	fn := float64(n)
	p.HeapPerNode = float64(after.HeapAlloc-before.HeapAlloc) / fn
	p.StackPerNode = float64(after.StackInuse-before.StackInuse) / fn
	p.BytesPerNode = p.HeapPerNode + p.StackPerNode
	p.RSSPerNode = float64(after.RSS-before.RSS) / fn
	p.GoroutinesPerNode = float64(after.Goroutines-before.Goroutines) / fn
	if cfg.AtIdle != nil {
		cfg.AtIdle(n, false)
	}

	r.progress("scale %d: idle for %v", n, cfg.Idle)
	downs0 := ts.downs.count()
	ev0, err := r.do(ctx, Request{Op: "nodes.events"})
	if err != nil {
		return err
	}
	fu0, err := r.do(ctx, Request{Op: "usage"})
	if err != nil {
		return err
	}
	c0 := readCounters("self")
	u0, s0 := cpuSplit()
	w0 := time.Now()
	if err := r.pause(ctx, fmt.Sprintf("scale %d idle", n), cfg.Idle); err != nil {
		return err
	}
	u1, s1 := cpuSplit()
	wall := time.Since(w0)
	p.IdleCosts = per(c0, readCounters("self"), float64(n)*wall.Seconds()/(cfg.Timeout/4).Seconds())
	if cfg.AtIdle != nil {
		cfg.AtIdle(n, true)
	}
	fu1, err := r.do(ctx, Request{Op: "usage"})
	if err != nil {
		return err
	}
	ev1, err := r.do(ctx, Request{Op: "nodes.events"})
	if err != nil {
		return err
	}
	p.IdleSeconds = wall.Seconds()
	p.IdleCPUPercent = 100 * (u1 - u0 + s1 - s0).Seconds() / wall.Seconds()
	p.IdleSysPercent = 100 * (s1 - s0).Seconds() / wall.Seconds()
	if r.res.ServerOnly {
		p.FarmCPUPercent = 100 * (fu1.Usage.CPU - fu0.Usage.CPU).Seconds() / wall.Seconds()
	}
	p.ServerDowns = ts.downs.count() - downs0
	p.NodeDowns = ev1.Downs - ev0.Downs

	// Scenario 4: a new server on the same port while every node queues a
	// qos message.
	addr := ts.addr()
	r.progress("scale %d: restarting the server (storm)", n)
	if cfg.AtStorm != nil {
		cfg.AtStorm(n, false)
	}
	closing := time.Now()
	ts.close()
	p.StormCloseSeconds = time.Since(closing).Seconds()
	drops0 := listenDrops()
	ts, err = startTether(addr, cfg.Timeout, cfg.Logger)
	if err != nil {
		return fmt.Errorf("restart on %s: %w", addr, err)
	}
	if _, err := r.do(ctx, Request{Op: "nodes.queue", Queue: 1}); err != nil {
		return err
	}
	upOK, err := r.waitFor(ctx, "storm: nodes up", &ts.ups, int64(n))
	if err != nil {
		return err
	}
	delOK, err := r.waitFor(ctx, "storm: queued messages delivered", &ts.delivered, int64(n))
	if cfg.AtStorm != nil {
		cfg.AtStorm(n, true)
	}
	if err != nil {
		return err
	}
	if drops0 >= 0 {
		p.StormListenDrops = listenDrops() - drops0
	}
	p.StormUp, p.StormDelivered = ts.ups.count(), ts.delivered.count()
	var span time.Duration
	p.StormAccepts, span = ts.ln.span()
	p.StormAcceptSeconds = span.Seconds()
	p.StormComplete = upOK && delOK
	if first, ok := ts.ln.firstAt(); ok {
		end := ts.ups.lastAt()
		if d := ts.delivered.lastAt(); d.After(end) {
			end = d
		}
		p.StormSeconds = end.Sub(first).Seconds()
	}
	return nil
}

// rawIdle measures n idle raw TCP connections echoing keepalives every
// T/4: the least a server in Go can spend on n nodes.
func (r *runner) rawIdle(ctx context.Context, p *ScalePoint) error {
	cfg, n := r.cfg, p.N
	echo, err := startEcho("127.0.0.1:0")
	if err != nil {
		return err
	}
	defer echo.close()
	if err := r.pause(ctx, "settle", r.settle()); err != nil {
		return err
	}
	before := readUsage(true)
	r.progress("scale %d: raw TCP baseline, %d connections", n, n)
	_, err = r.do(ctx, Request{Op: "raw.hold", Hold: &HoldSpec{Addr: echo.addr(), N: n, Keepalive: cfg.Timeout / 4, PerIP: cfg.PerIP}})
	if err != nil {
		return err
	}
	defer r.do(context.WithoutCancel(ctx), Request{Op: "raw.release"})
	if ok, err := r.waitFor(ctx, "raw connections", &echo.accepted, int64(n)); err != nil || !ok {
		return cmp(err, fmt.Errorf("only %d of %d raw connections accepted", echo.accepted.count(), n))
	}
	if err := r.pause(ctx, "settle", r.settle()); err != nil {
		return err
	}
	after := readUsage(true)
	fn := float64(n)
	p.RawBytesPerNode = float64(after.HeapAlloc-before.HeapAlloc+after.StackInuse-before.StackInuse) / fn
	p.RawRSSPerNode = float64(after.RSS-before.RSS) / fn
	window := r.baselineWindow()
	c0 := readCounters("self")
	u0, s0 := cpuSplit()
	w0 := time.Now()
	if err := r.pause(ctx, "raw idle", window); err != nil {
		return err
	}
	u1, s1 := cpuSplit()
	wall := time.Since(w0).Seconds()
	p.RawIdleCosts = per(c0, readCounters("self"), float64(n)*wall/(cfg.Timeout/4).Seconds())
	p.RawCPUPercent = 100 * (u1 - u0 + s1 - s0).Seconds() / wall
	p.RawSysPercent = 100 * (s1 - s0).Seconds() / wall
	return nil
}

// mosquittoIdle measures n idle MQTT clients on mosquitto, each with a
// keepalive of T (rounded up to whole seconds): what the C broker spends
// per idle client, in memory (RSS) and CPU, read from /proc.
func (r *runner) mosquittoIdle(ctx context.Context, p *ScalePoint) error {
	cfg, n := r.cfg, p.N
	mq, err := startMosquitto(ctx, r.mosquittoBin)
	if err != nil {
		return err
	}
	defer mq.close()
	r.res.Mosquitto = mq.version
	if err := r.pause(ctx, "settle", r.settle()); err != nil {
		return err
	}
	_, rss0, err := mq.usage()
	if err != nil {
		return err
	}
	ka := max(cfg.Timeout.Round(time.Second), time.Second)
	r.progress("scale %d: mosquitto baseline, %d idle MQTT clients, keepalive %v", n, n, ka)
	_, err = r.do(ctx, Request{Op: "raw.hold", Hold: &HoldSpec{Addr: mq.addr, N: n, Keepalive: ka, PerIP: cfg.PerIP, MQTT: true}})
	if err != nil {
		return err
	}
	defer r.do(context.WithoutCancel(ctx), Request{Op: "raw.release"})
	if err := r.pause(ctx, "settle", r.settle()); err != nil {
		return err
	}
	cpu0, rss1, err := mq.usage()
	if err != nil {
		return err
	}
	window := r.baselineWindow()
	pid := strconv.Itoa(mq.cmd.Process.Pid)
	c0 := readCounters(pid)
	w0 := time.Now()
	if err := r.pause(ctx, "mosquitto idle", window); err != nil {
		return err
	}
	cpu1, _, err := mq.usage()
	if err != nil {
		return err
	}
	wall := time.Since(w0).Seconds()
	p.MosquittoIdleCosts = per(c0, readCounters(pid), float64(n)*wall/ka.Seconds())
	p.MosquittoKeepaliveMs = ka.Milliseconds()
	p.MosquittoIdleConnected = n
	p.MosquittoRSSPerNode = float64(rss1-rss0) / float64(n)
	p.MosquittoCPUPercent = 100 * (cpu1 - cpu0).Seconds() / wall
	p.MosquittoCPUSeconds = wall
	return nil
}

// baselineWindow is how long a baseline's idle CPU is read: a quarter of
// the idle window, at least a second (or the whole window if shorter),
// at most 15 s.
func (r *runner) baselineWindow() time.Duration {
	idle := r.cfg.Idle
	return min(max(idle/4, min(idle, time.Second)), 15*time.Second)
}

// rawStorm restarts an echo server under n raw connections that
// reconnect and send one line each: the kernel's and Go's floor for a
// storm.
func (r *runner) rawStorm(ctx context.Context, p *ScalePoint) error {
	cfg, n := r.cfg, p.N
	echo, err := startEcho("127.0.0.1:0")
	if err != nil {
		return err
	}
	delay := min(cfg.nodeDelay(), 500*time.Millisecond)
	_, err = r.do(ctx, Request{Op: "raw.hold", Hold: &HoldSpec{Addr: echo.addr(), N: n, Reconnect: delay, PerIP: cfg.PerIP}})
	if err != nil {
		echo.close()
		return err
	}
	defer r.do(context.WithoutCancel(ctx), Request{Op: "raw.release"})
	if ok, err := r.waitFor(ctx, "raw connections", &echo.accepted, int64(n)); err != nil || !ok {
		echo.close()
		return cmp(err, fmt.Errorf("only %d of %d raw connections accepted", echo.accepted.count(), n))
	}
	addr := echo.addr()
	r.progress("scale %d: restarting the raw echo server (raw storm)", n)
	drops0 := listenDrops()
	closing := time.Now()
	echo.close()
	p.RawStormCloseSeconds = time.Since(closing).Seconds()
	echo, err = startEcho(addr)
	if err != nil {
		return fmt.Errorf("restart on %s: %w", addr, err)
	}
	defer echo.close()
	if ok, err := r.waitFor(ctx, "raw storm", &echo.lines, int64(n)); err != nil || !ok {
		return cmp(err, fmt.Errorf("only %d of %d raw connections back", echo.lines.count(), n))
	}
	if drops0 >= 0 {
		p.RawStormListenDrops = listenDrops() - drops0
	}
	if first, ok := echo.ln.firstAt(); ok {
		p.RawStormSeconds = echo.lines.lastAt().Sub(first).Seconds()
	}
	var span time.Duration
	p.RawStormAccepts, span = echo.ln.span()
	p.RawStormAcceptSeconds = span.Seconds()
	return nil
}

// settle is the wait before memory is measured: handshakes done, first
// keepalives and write pauses over.
func (r *runner) settle() time.Duration {
	if r.cfg.Quick {
		return 250 * time.Millisecond
	}
	return r.cfg.Timeout / 2
}
