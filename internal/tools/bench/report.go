package bench

import (
	"fmt"
	"math"
	"strings"
	"time"
)

// Targets of the full run (issue 14): ratios to the raw TCP baseline
// measured in the same run, so that they hold on any machine.
const (
	targetRTT       = 1.25   // qos round trip p50 at most 1.25x the raw echo's
	targetWait      = 0.85   // qos with wait at least 0.85x raw lock-step (1 connection, 1,000 nodes)
	targetNoWait    = 0.80   // qos without wait at least 0.8x raw with as many in flight
	targetIdleCPU   = 1.15   // idle CPU at most 1.15x the raw keepalive echo's
	targetIdleBytes = 1.3    // heap + stacks per idle node at most 1.3x a raw conn + goroutine
	targetStorm     = 1.5    // storm at most 1.5x the raw reconnect storm
	targetAggNodes  = 1000   // the aggregate targets are for this many nodes or more
	targetNodes     = 10_000 // the N the idle and storm targets are for
)

// Markdown renders the result as a heading, a line of context and one
// table: every figure next to its baseline, measured in the same run.
func (r *Result) Markdown() string {
	var b strings.Builder
	where := "in a subprocess (node farm): server figures are the server process's alone"
	if !r.ServerOnly {
		where = "in the server's process: memory and CPU figures include the nodes"
	}
	kind := "full run"
	if r.Quick {
		kind = "quick run (small N: figures show the bench works, targets are for the full run)"
	}
	fmt.Fprintf(&b, "### tether bench, %s\n\n", r.Started.Format("2006-01-02 15:04"))
	if r.Command != "" {
		fmt.Fprintf(&b, "`%s`: ", r.Command)
	}
	m := r.Machine
	fmt.Fprintf(&b, "%s in %s. %s/%s, %d CPUs", kind, time.Duration(r.Seconds*float64(time.Second)).Round(time.Second), m.OS, m.Arch, m.CPUs)
	if m.Model != "" {
		fmt.Fprintf(&b, " (%s)", m.Model)
	}
	fmt.Fprintf(&b, ", %s. Nodes ran %s. T = %v, %d-byte payloads, loopback.\n\n",
		m.Go, where, time.Duration(r.TimeoutMs)*time.Millisecond, r.Size)

	t := &table{}
	t.row("#", "scenario", "measure", "Tether", "baseline, same run", "Tether / baseline", "target", "verdict")
	if r.Latency.QosRTT.N > 0 {
		r.latencyRows(t)
	}
	r.throughputRows(t)
	r.scaleRows(t)
	r.growthRows(t)
	r.costRows(t)
	t.render(&b)
	return b.String()
}

func (r *Result) latencyRows(t *table) {
	l := r.Latency
	t.row("1", "latency, 1 node", "qos write round trip (returns on ACK) p50 / p99 / max",
		us3(l.QosRTT), "raw TCP line echo "+us3(l.RawEcho), ratio(l.QosRTT.P50, l.RawEcho.P50),
		"p50 ≤ 1.25x raw echo", verdictMax(div(l.QosRTT.P50, l.RawEcho.P50), targetRTT))
	t.row("", "", "", "", "MQTT QoS 1 publish→PUBACK (mochi-mqtt + Paho) "+us3(l.MQTTQoS1)+rawOf(l.MQTTQoS1.P50, l.RawEcho.P50),
		ratio(l.QosRTT.P50, l.MQTTQoS1.P50), "p50 < MQTT", verdictMax(l.QosRTT.P50, l.MQTTQoS1.P50))
	if l.Mosquitto.N > 0 {
		t.row("", "", "", "", "MQTT QoS 1 publish→PUBACK (mosquitto + Paho) "+us3(l.Mosquitto)+rawOf(l.Mosquitto.P50, l.RawEcho.P50),
			ratio(l.QosRTT.P50, l.Mosquitto.P50), "p50 < MQTT", verdictMax(l.QosRTT.P50, l.Mosquitto.P50))
	} else if r.MosquittoSkipped {
		t.row("", "", "", "", "MQTT QoS 1 via mosquitto: "+r.Mosquitto, "", "", "")
	}
	t.row("1", "latency, 1 node", "one-way: write to the server's delivery p50 / p99 / max",
		us3(l.QosOneWay), "raw TCP write to server read "+us3(l.RawOneWay), ratio(l.QosOneWay.P50, l.RawOneWay.P50), "", "")
}

func (r *Result) throughputRows(t *table) {
	for _, q := range r.Throughput {
		target, verdict := "", ""
		var want float64
		switch q.Key {
		case "one_wait", "aggregate_qos":
			want = targetWait
		case "one_nowait", "aggregate_nowait":
			want = targetNoWait
		}
		if want > 0 && (q.Conns == 1 || q.Conns >= targetAggNodes) {
			target = fmt.Sprintf("≥ %.2gx raw", want)
			if len(q.Baselines) > 0 {
				verdict = verdictMin(div(q.Tether, q.Baselines[0].Value), want)
			}
		}
		for i, bl := range q.Baselines {
			if i == 0 {
				t.row("2", "throughput", q.Name, rateStr(q.Tether), bl.Name+" "+rateStr(bl.Value), ratio(q.Tether, bl.Value), target, verdict)
			} else {
				t.row("", "", "", "", bl.Name+" "+rateStr(bl.Value)+rawOf(bl.Value, q.Baselines[0].Value), ratio(q.Tether, bl.Value), "", "")
			}
		}
	}
}

func (r *Result) scaleRows(t *table) {
	for _, p := range r.Scale {
		big := p.N >= targetNodes
		tg := func(target, verdict string) (string, string) {
			if !big {
				return "", ""
			}
			return target, verdict
		}
		sc := fmt.Sprintf("idle, %s nodes", commas(float64(p.N)))
		a, v := tg("≤ 1.3x raw", verdictMax(div(p.BytesPerNode, p.RawBytesPerNode), targetIdleBytes))
		t.row("3", sc, fmt.Sprintf("server heap + stacks per node (%.2f goroutines per node)", p.GoroutinesPerNode),
			perNode(p.BytesPerNode), "raw TCP conn + goroutine "+perNode(p.RawBytesPerNode), ratio(p.BytesPerNode, p.RawBytesPerNode), a, v)
		t.row("3", sc, "server RSS per node", perNode(p.RSSPerNode), "raw TCP "+perNode(p.RawRSSPerNode), ratio(p.RSSPerNode, p.RawRSSPerNode), "", "")
		if p.MosquittoIdleConnected > 0 {
			t.row("", "", "", "", fmt.Sprintf("mosquitto RSS per idle MQTT client (keepalive %v) %s%s", time.Duration(p.MosquittoKeepaliveMs)*time.Millisecond, perNode(p.MosquittoRSSPerNode), rawOf(p.MosquittoRSSPerNode, p.RawRSSPerNode)),
				ratio(p.RSSPerNode, p.MosquittoRSSPerNode), "", "")
		}
		cpu := fmt.Sprintf("%.1f%% (kernel %.1f%%)", p.IdleCPUPercent, p.IdleSysPercent)
		if p.FarmCPUPercent > 0 {
			cpu += fmt.Sprintf("; nodes' process %.1f%%", p.FarmCPUPercent)
		}
		a, v = tg("≤ 1.15x raw", verdictMax(div(p.IdleCPUPercent, p.RawCPUPercent), targetIdleCPU))
		t.row("3", sc, fmt.Sprintf("server CPU while idle, %% of one core, over %.0f s", p.IdleSeconds),
			cpu, fmt.Sprintf("raw TCP keepalive echo at T/4 %.1f%% (kernel %.1f%%)", p.RawCPUPercent, p.RawSysPercent), ratio(p.IdleCPUPercent, p.RawCPUPercent), a, v)
		if p.MosquittoIdleConnected > 0 {
			t.row("", "", "", "", fmt.Sprintf("mosquitto CPU, idle MQTT clients sending PINGREQ every %v: %.1f%%%s", time.Duration(p.MosquittoKeepaliveMs)*time.Millisecond, p.MosquittoCPUPercent, rawOf(p.MosquittoCPUPercent, p.RawCPUPercent)),
				ratio(p.IdleCPUPercent, p.MosquittoCPUPercent), "", "")
		}
		ok := "yes"
		if p.ServerDowns+p.NodeDowns > 0 {
			ok = "no"
		}
		t.row("3", sc, fmt.Sprintf("spurious outages in %.0f s, server / nodes", p.IdleSeconds),
			fmt.Sprintf("%d / %d", p.ServerDowns, p.NodeDowns), "", "", "0", ok)
	}
	for _, p := range r.Scale {
		big := p.N >= targetNodes
		st := secs(p.StormSeconds)
		if !p.StormComplete {
			st = fmt.Sprintf("incomplete: %d up, %d delivered", p.StormUp, p.StormDelivered)
		}
		a, v := "", ""
		if big {
			a, v = "≤ 1.5x raw", verdictMax(div(p.StormSeconds, p.RawStormSeconds), targetStorm)
			if !p.StormComplete {
				v = "no"
			}
		}
		t.row("4", fmt.Sprintf("storm, %s nodes", commas(float64(p.N))),
			"server restarted: first accept → all up and each node's queued qos message delivered (listen-queue drops)",
			fmt.Sprintf("%s (%d)", st, p.StormListenDrops),
			fmt.Sprintf("raw TCP reconnect + one line %s (%d)", secs(p.RawStormSeconds), p.RawStormListenDrops),
			ratio(p.StormSeconds, p.RawStormSeconds), a, v)
		if p.StormAccepts > 0 {
			t.row("4", fmt.Sprintf("storm, %s nodes", commas(float64(p.N))),
				"where it went: the old server's close (the spread of the outages) / connections accepted / first to last accept",
				fmt.Sprintf("%s / %s / %s", secs(p.StormCloseSeconds), commas(float64(p.StormAccepts)), secs(p.StormAcceptSeconds)),
				fmt.Sprintf("raw TCP %s / %s / %s", secs(p.RawStormCloseSeconds), commas(float64(p.RawStormAccepts)), secs(p.RawStormAcceptSeconds)),
				"", "", "")
		}
	}
}

// growthRows is scenario 5: how the costs of 3 and 4 grow with N, as
// the exponent k of cost ∝ N^k between the smallest and largest N.
func (r *Result) growthRows(t *table) {
	if len(r.Scale) < 2 {
		return
	}
	ns := make([]string, len(r.Scale))
	for i, p := range r.Scale {
		ns[i] = commas(float64(p.N))
	}
	sc := "cost growth, N = " + strings.Join(ns, " → ")
	series := func(f func(ScalePoint) float64, format func(float64) string) string {
		s := make([]string, len(r.Scale))
		for i, p := range r.Scale {
			s[i] = format(f(p))
		}
		return strings.Join(s, " → ")
	}
	// growth gives the exponent of each step; the verdict is the last
	// step's, where fixed costs and noise weigh least.
	growth := func(f func(ScalePoint) float64) string {
		var ks []string
		k := math.NaN()
		for i := 1; i < len(r.Scale); i++ {
			lo, hi := r.Scale[i-1], r.Scale[i]
			a, b := f(lo), f(hi)
			if a <= 0 || b <= 0 || hi.N <= lo.N {
				ks = append(ks, "?")
				k = math.NaN()
				continue
			}
			k = math.Log(b/a) / math.Log(float64(hi.N)/float64(lo.N))
			ks = append(ks, fmt.Sprintf("N^%.2f", k))
		}
		word := "linear"
		switch {
		case math.IsNaN(k):
			word = "n/a"
		case k < 0.85:
			word = "sublinear"
		case k > 1.15:
			word = "worse than linear"
		}
		return strings.Join(ks, ", ") + ": " + word
	}
	mem := func(p ScalePoint) float64 { return p.BytesPerNode * float64(p.N) }
	cpu := func(p ScalePoint) float64 { return p.IdleCPUPercent }
	storm := func(p ScalePoint) float64 { return p.StormSeconds }
	raw := func(p ScalePoint) float64 { return p.RawStormSeconds }
	t.row("5", sc, "server heap + stacks, total", series(mem, bytesStr), "", "", "linear", growth(mem))
	t.row("5", sc, "server CPU while idle", series(cpu, func(v float64) string { return fmt.Sprintf("%.1f%%", v) }), "", "", "linear", growth(cpu))
	t.row("5", sc, "storm time", series(storm, secs), "raw TCP "+series(raw, secs), "", "linear", growth(storm))
}

// costRows is scenario 6: the server process's system calls and thread
// wakeups per message and per keepalive, from /proc, next to the
// baselines': where the time goes.
func (r *Result) costRows(t *table) {
	c := func(x Costs) string {
		if x == (Costs{}) {
			return "–"
		}
		return fmt.Sprintf("%.2f reads, %.2f writes, %.2f wakeups", x.Reads, x.Writes, x.Switches)
	}
	for _, q := range r.Throughput {
		if len(q.Baselines) == 0 || q.Costs == (Costs{}) {
			continue
		}
		t.row("6", "server costs per message", q.Name, c(q.Costs), q.Baselines[0].Name+" "+c(q.Baselines[0].Costs), "", "", "")
		for _, bl := range q.Baselines[1:] {
			if bl.Costs != (Costs{}) {
				t.row("", "", "", "", bl.Name+" "+c(bl.Costs), "", "", "")
			}
		}
		if q.NodeCosts != (Costs{}) {
			t.row("6", "node costs per message (the nodes' process)", q.Name, c(q.NodeCosts), q.Baselines[0].Name+" "+c(q.Baselines[0].NodeCosts), "", "", "")
			for _, bl := range q.Baselines[1:] {
				if bl.NodeCosts != (Costs{}) {
					t.row("", "", "", "", bl.Name+" (Paho) "+c(bl.NodeCosts), "", "", "")
				}
			}
		}
	}
	for _, p := range r.Scale {
		if p.IdleCosts == (Costs{}) {
			continue
		}
		name := fmt.Sprintf("idle, %s nodes", commas(float64(p.N)))
		t.row("6", "server costs per node keepalive", name, c(p.IdleCosts), "raw TCP keepalive echo "+c(p.RawIdleCosts), "", "", "")
		if p.MosquittoIdleCosts != (Costs{}) {
			t.row("", "", "", "", "mosquitto, per PINGREQ "+c(p.MosquittoIdleCosts), "", "", "")
		}
	}
}

// table collects rows and renders them as Markdown.
type table struct{ rows [][]string }

func (t *table) row(cells ...string) { t.rows = append(t.rows, cells) }

func (t *table) render(b *strings.Builder) {
	for i, r := range t.rows {
		b.WriteString("| " + strings.Join(r, " | ") + " |\n")
		if i == 0 {
			b.WriteString(strings.Repeat("|---", len(r)) + "|\n")
		}
	}
}

func us(v float64) string {
	switch {
	case v == 0:
		return "–"
	case v < 10:
		return fmt.Sprintf("%.1f", v)
	}
	return commas(v)
}

func us3(d Dist) string { return fmt.Sprintf("%s / %s / %s µs", us(d.P50), us(d.P99), us(d.Max)) }

// secs formats seconds, in ms below one second.
func secs(v float64) string {
	if v < 1 {
		return fmt.Sprintf("%.0f ms", v*1000)
	}
	return fmt.Sprintf("%.2f s", v)
}

func rateStr(v float64) string { return commas(v) + " msg/s" }

func bytesStr(v float64) string {
	if math.Abs(v) < 1024 {
		return fmt.Sprintf("%.0f B", v)
	}
	if math.Abs(v) < 1<<20 {
		return fmt.Sprintf("%.1f KiB", v/1024)
	}
	return fmt.Sprintf("%.1f MiB", v/(1<<20))
}

// perNode formats a per-node memory figure; a negative one means the
// memory freed meanwhile by earlier steps outweighed the nodes' (small N).
func perNode(v float64) string {
	if v < 0 {
		return "below noise"
	}
	return bytesStr(v)
}

// rawOf is " (Nx raw)", or nothing when either figure is not positive.
func rawOf(v, raw float64) string {
	if r := ratio(v, raw); r != "" {
		return " (" + r + " raw)"
	}
	return ""
}

func ratio(a, b float64) string {
	if a <= 0 || b <= 0 {
		return ""
	}
	return fmt.Sprintf("%.2fx", a/b)
}

// verdictMax judges a figure that must stay at or below limit.
func verdictMax(v, limit float64) string {
	if v <= 0 || limit <= 0 {
		return ""
	}
	if v <= limit {
		return "met"
	}
	return fmt.Sprintf("missed by %.0f%%", 100*(v/limit-1))
}

// verdictMin judges a figure that must reach at least limit.
func verdictMin(v, limit float64) string {
	if v >= limit {
		return "met"
	}
	return fmt.Sprintf("missed by %.0f%%", 100*(1-v/limit))
}

// commas formats v rounded, with thousands separators.
func commas(v float64) string {
	s := fmt.Sprintf("%.0f", math.Round(v))
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var out []byte
	for i := range len(s) {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, ',')
		}
		out = append(out, s[i])
	}
	if neg {
		return "-" + string(out)
	}
	return string(out)
}
