package demotest

import (
	"context"
	"testing"
	"time"

	"github.com/tether-iot/tether/internal/harness/testutil"
	"github.com/tether-iot/tether/internal/tools/demo"
)

// T is the link timeout of the demo tests: short, so that outages end
// fast.
const T = 300 * time.Millisecond

// Context returns the test's context with a safety-net deadline, so that
// a test that waits in vain fails rather than hangs.
func Context(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// StartSim starts a demo.Sim of ids (timeout T, reconnecting T after an
// outage) narrating to out, closed at the end of the test.
func StartSim(ctx context.Context, t testing.TB, out *demo.Printer, ids ...string) *demo.Sim {
	t.Helper()
	sim, err := demo.StartSim(ctx, demo.SimConfig{IDs: ids, Timeout: T, ReconnectDelay: T, Out: out, Logger: testutil.Logger()})
	if err != nil {
		t.Fatalf("StartSim: %v", err)
	}
	t.Cleanup(sim.Close)
	return sim
}
