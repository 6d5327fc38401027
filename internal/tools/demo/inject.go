package demo

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/tether-iot/tether/internal/notify"
)

// Kinds of outage, in the order the Injector uses them.
var Kinds = []string{"cut", "reset", "blackhole", "refuse"}

// Injector strikes a Sim's nodes with outages, one node at a time, in
// turn, cycling through Kinds, and narrates each.
type Injector struct {
	Sim *Sim
	Out *Printer
	// Every is the mean time between two outages. Zero means 6T.
	Every time.Duration
	// Seed seeds the pauses.
	Seed uint64

	mu     sync.Mutex
	counts map[string]int
}

// Run injects outages until ctx is done.
func (in *Injector) Run(ctx context.Context) {
	T := in.Sim.T
	every := in.Every
	if every <= 0 {
		every = 6 * T
	}
	rng := rand.New(rand.NewPCG(in.Seed, 7))
	ids := make([]string, 0, len(in.Sim.Nodes))
	for id := range in.Sim.Nodes {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for i := 0; ; i++ {
		id := ids[i%len(ids)]
		c, p := in.Sim.Nodes[id], in.Sim.Proxies[id]
		if err := c.WaitUp(ctx); err != nil {
			return
		}
		if !notify.Sleep(ctx, every/2+time.Duration(rng.Int64N(int64(every)))) {
			return
		}
		kind := Kinds[i%len(Kinds)]
		who := "OUTAGE"
		var over <-chan struct{}
		switch kind {
		case "cut":
			in.Out.Say(who, "#%d node %s: connection cut (FIN both ways), as when a peer closes its socket", i+1, id)
			p.Cut()
		case "reset":
			in.Out.Say(who, "#%d node %s: connection reset (RST both ways), as when a peer crashes", i+1, id)
			p.Reset()
		case "blackhole":
			d := 5 * T / 2
			in.Out.Say(who, "#%d node %s: network silent for %v, no FIN, no RST (WiFi lost): both ends must notice within T=%v", i+1, id, d, T)
			over = p.Blackhole(d)
		case "refuse":
			d := 4 * T
			in.Out.Say(who, "#%d node %s: connection cut and reconnects refused for %v (server unreachable)", i+1, id, d)
			over = p.Refuse(d)
			p.Cut()
		}
		in.mu.Lock()
		if in.counts == nil {
			in.counts = make(map[string]int)
		}
		in.counts[kind]++
		in.mu.Unlock()
		if over != nil {
			select {
			case <-over:
				in.Out.Say(who, "#%d over: the network works again", i+1)
			case <-ctx.Done():
				return
			}
		}
	}
}

// Total returns how many outages have been injected.
func (in *Injector) Total() int {
	in.mu.Lock()
	defer in.mu.Unlock()
	total := 0
	for _, n := range in.counts {
		total += n
	}
	return total
}

// Summary says how many outages of each kind were injected.
func (in *Injector) Summary() string {
	in.mu.Lock()
	defer in.mu.Unlock()
	s, total := "", 0
	for _, k := range Kinds {
		if n := in.counts[k]; n > 0 {
			if s != "" {
				s += ", "
			}
			s += fmt.Sprintf("%s %d", k, n)
			total += n
		}
	}
	if total == 0 {
		return "none injected"
	}
	return fmt.Sprintf("%d injected: %s", total, s)
}
