package bench

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strings"
	"time"
)

// runner carries one run's state.
type runner struct {
	cfg   Config
	farm  Farm
	res   *Result
	start time.Time

	mosquittoBin string // "" when its baseline is skipped
}

// Run runs every scenario and returns the figures. It fails if a
// scenario cannot run at all (a server that cannot listen, a farm that
// dies); a target that is missed is a figure, not an error.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	cfg = cfg.withDefaults()
	maxN := cfg.AggNodes
	for _, n := range cfg.Scale {
		maxN = max(maxN, n)
	}
	// In one process every node costs two sockets; leave room.
	limit := RaiseFileLimit(uint64(2*maxN + 4096))
	r := &runner{cfg: cfg, start: time.Now()}
	r.res = &Result{
		Started:   r.start,
		Quick:     cfg.Quick,
		TimeoutMs: cfg.Timeout.Milliseconds(),
		Size:      cfg.Size,
		Writers:   cfg.Writers,
		Machine: Machine{
			OS: runtime.GOOS, Arch: runtime.GOARCH, CPUs: runtime.NumCPU(),
			Go: runtime.Version(), Model: cpuModel(), FileLimit: limit,
		},
		samples: make(map[string][]int64),
	}
	newFarm := cfg.NewFarm
	if newFarm == nil {
		newFarm = func(context.Context) (Farm, error) { return NewLocalFarm(), nil }
	}
	farm, err := newFarm(ctx)
	if err != nil {
		return nil, err
	}
	r.farm = farm
	r.res.Nodes = farm.Mode()
	r.res.ServerOnly = farm.Mode() != "in-process"
	r.progress("nodes run %s; T = %v; file limit %d", farm.Mode(), cfg.Timeout, limit)
	if bin, merr := mosquittoPath(cfg.Mosquitto); merr != nil {
		r.res.Mosquitto, r.res.MosquittoSkipped = "skipped: "+merr.Error(), true
		r.progress("mosquitto baseline SKIPPED: %v", merr)
	} else {
		r.mosquittoBin, r.res.Mosquitto = bin, "installed"
	}
	// Sockets per process: the server's, plus the nodes' when in-process.
	need := uint64(maxN + 256)
	if !r.res.ServerOnly {
		need += uint64(maxN)
	}
	if limit < need {
		err = fmt.Errorf("the open-file limit is %d, and %d nodes %s need about %d: run the nodes in a subprocess, fewer nodes, or raise the hard limit (root with CAP_SYS_RESOURCE)",
			limit, maxN, farm.Mode(), need)
	} else {
		err = r.all(ctx)
	}
	if cerr := farm.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, err
	}
	r.res.Seconds = time.Since(r.start).Seconds()
	r.progress("done in %s", time.Since(r.start).Round(time.Second))
	return r.res, nil
}

func (r *runner) all(ctx context.Context) error {
	runs := func(name string) bool { return len(r.cfg.Only) == 0 || slices.Contains(r.cfg.Only, name) }
	if runs("latency") {
		if err := r.latency(ctx); err != nil {
			return fmt.Errorf("latency: %w", err)
		}
	}
	if runs("throughput") {
		if err := r.throughput(ctx); err != nil {
			return fmt.Errorf("throughput: %w", err)
		}
	}
	for _, n := range r.cfg.Scale {
		if !runs("scale") {
			break
		}
		p, err := r.scale(ctx, n)
		if err != nil {
			return fmt.Errorf("scale, %d nodes: %w", n, err)
		}
		r.res.Scale = append(r.res.Scale, p)
	}
	r.headline()
	return nil
}

// headline fills the top-level numbers.
func (r *runner) headline() {
	res := r.res
	res.RawEchoP50Us = res.Latency.RawEcho.P50
	res.QosRTTP50Us = res.Latency.QosRTT.P50
	res.QosRTTP99Us = res.Latency.QosRTT.P99
	res.MQTTQoS1P50Us = res.Latency.MQTTQoS1.P50
	var big ScalePoint
	for _, p := range res.Scale {
		if p.N >= big.N {
			big = p
		}
	}
	res.IdleNodes = big.N
	res.IdleBytesPerNode = big.BytesPerNode
	res.IdleCPUPercent = big.IdleCPUPercent
	res.StormNodes = big.N
	res.StormSeconds = big.StormSeconds
	for _, t := range res.Throughput {
		switch t.Key {
		case "aggregate_qos":
			res.AggregateQosMsgsPerS = t.Tether
			res.AggregateQosMsgsPerSRatio = t.Ratio
		case "one_wait":
			for _, b := range t.Baselines {
				if strings.HasPrefix(b.Name, mosquittoName) {
					res.MosquittoQoS1MsgsPerS = b.Value
					res.MosquittoQoS1MsgsPerSRatio = b.Ratio
				}
			}
		}
	}
	l := &res.Latency
	l.QosRTT.against(l.RawEcho)
	l.MQTTQoS1.against(l.RawEcho)
	l.Mosquitto.against(l.RawEcho)
	l.QosOneWay.against(l.RawOneWay)
	res.MosquittoQoS1P50Us = l.Mosquitto.P50
	res.QosRTTP50Ratio = l.QosRTT.P50Ratio
	res.QosRTTP99Ratio = l.QosRTT.P99Ratio
	res.MQTTQoS1P50Ratio = l.MQTTQoS1.P50Ratio
	res.MosquittoQoS1P50Ratio = l.Mosquitto.P50Ratio
	res.IdleBytesPerNodeRatio = big.BytesPerNodeRatio
	res.IdleCPUPercentRatio = big.IdleCPURatio
	res.StormSecondsRatio = big.StormRatio
}

// progress prints one line of progress.
func (r *runner) progress(format string, args ...any) {
	d := time.Since(r.start).Round(time.Second)
	fmt.Fprintf(r.cfg.Progress, "bench [%02d:%02d] %s\n", int(d.Minutes()), int(d.Seconds())%60, fmt.Sprintf(format, args...))
}

// do sends one request to the farm.
func (r *runner) do(ctx context.Context, req Request) (Response, error) {
	return r.farm.Do(ctx, req)
}

// waitFor waits until g counts target, printing progress every few
// seconds, for at most the step timeout. It reports whether the target
// was reached.
func (r *runner) waitFor(ctx context.Context, what string, g *gauge, target int64) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, r.cfg.StepTimeout)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- g.wait(ctx, target) }()
	tick := time.NewTicker(2 * time.Second)
	defer tick.Stop()
	for {
		select {
		case err := <-done:
			if err == nil {
				return true, nil
			}
			if ctx.Err() != nil && context.Cause(ctx) == context.DeadlineExceeded {
				r.progress("%s: only %d of %d after %v", what, g.count(), target, r.cfg.StepTimeout)
				return false, nil
			}
			return false, err
		case <-tick.C:
			r.progress("%s: %d of %d", what, g.count(), target)
		}
	}
}

// pause waits d (a measurement window), printing progress.
func (r *runner) pause(ctx context.Context, what string, d time.Duration) error {
	end := time.NewTimer(d)
	defer end.Stop()
	tick := time.NewTicker(10 * time.Second)
	defer tick.Stop()
	start := time.Now()
	for {
		select {
		case <-end.C:
			return nil
		case <-tick.C:
			r.progress("%s: %s of %s", what, time.Since(start).Round(time.Second), d)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// cpuModel returns the CPU's model name, from /proc/cpuinfo.
func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return ""
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return ""
}
