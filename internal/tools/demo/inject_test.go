package demo_test

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/tether-iot/tether/internal/tools/demo/demotest"

	"github.com/tether-iot/tether/internal/tools/demo"
)

// TestInjectorStrikesEveryKind runs the Injector on two nodes until it
// has struck with each kind of outage once, and checks that it struck the
// nodes in turn with the kinds in order, that the proxies really did it,
// that its Summary counts what it narrated, and that both nodes came back
// from every outage.
func TestInjectorStrikesEveryKind(t *testing.T) {
	t.Parallel()
	ctx := demotest.Context(t)
	st := demotest.NewStory()
	out := demo.NewPrinter(st)
	sim := demotest.StartSim(ctx, t, out, "a", "b")
	in := &demo.Injector{Sim: sim, Out: out, Every: T, Seed: 1}

	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); in.Run(runCtx) }()
	// The refusal, fourth, is the last to end.
	st.Await(ctx, t, regexp.MustCompile(`OUTAGE +#4 over: the network works again$`), 1)
	stop()
	<-done

	struck := st.All(regexp.MustCompile(`OUTAGE +#(\d+) node (\S+): (.*)$`))
	want := []struct{ id, text string }{
		{"a", "connection cut (FIN both ways)"},
		{"b", "connection reset (RST both ways)"},
		{"a", "network silent for 750ms, no FIN, no RST (WiFi lost): both ends must notice within T=300ms"},
		{"b", "connection cut and reconnects refused for 1.2s"},
	}
	if len(struck) < len(want) {
		t.Fatalf("%d outages narrated, want at least %d:\n%s", len(struck), len(want), st)
	}
	counts := make(map[string]int)
	for i, m := range struck {
		n, _ := strconv.Atoi(m[1])
		if n != i+1 {
			t.Errorf("outage %d is numbered #%d", i+1, n)
		}
		if i < len(want) && (m[2] != want[i].id || !strings.HasPrefix(m[3], want[i].text)) {
			t.Errorf("outage #%d: node %s: %q, want node %s: %q", n, m[2], m[3], want[i].id, want[i].text)
		}
		counts[demo.Kinds[i%len(demo.Kinds)]]++
	}
	var parts []string
	for _, k := range demo.Kinds {
		parts = append(parts, fmt.Sprintf("%s %d", k, counts[k]))
	}
	if got, want := in.Summary(), fmt.Sprintf("%d injected: %s", len(struck), strings.Join(parts, ", ")); got != want {
		t.Errorf("Summary = %q, want %q", got, want)
	}

	a, b := sim.Proxies["a"].Stats(), sim.Proxies["b"].Stats()
	if a.Cuts < 1 || a.Blackholes < 1 {
		t.Errorf("node a's proxy: %d cuts, %d blackholes; want at least 1 of each", a.Cuts, a.Blackholes)
	}
	if b.Resets < 1 || b.Refusals < 1 || b.Cuts < 1 {
		t.Errorf("node b's proxy: %d resets, %d refusals, %d cuts; want at least 1 of each", b.Resets, b.Refusals, b.Cuts)
	}

	// Each node was struck twice; each comes back each time.
	for _, id := range []string{"a", "b"} {
		st.Await(ctx, t, regexp.MustCompile(`node `+id+` +link UP again after`), 2)
	}
	if n := sim.Outages(); n < 4 {
		t.Errorf("Outages = %d after 4 outages, all recovered", n)
	}
}

func TestInjectorSummaryNone(t *testing.T) {
	if got := (&demo.Injector{}).Summary(); got != "none injected" {
		t.Errorf("Summary = %q, want \"none injected\"", got)
	}
}
