package adversarial

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime"
	"runtime/pprof"
	"strings"
	"testing"
	"time"

	"github.com/tether-iot/tether/gateway"
)

// TestNewIDFlood (issue 10.2): thousands of connections, each with a new
// ID, that say their ID and leave. A node that is down costs no
// goroutine, and IDs never expected, with nothing queued, down for
// nodes.forget_after are forgotten: once the attackers have gone,
// goroutines, heap, metric series and the status API are back near the
// baseline, and the server keeps only the honest node.
func TestNewIDFlood(t *testing.T) {
	ids := 2000
	if raceOn {
		ids = 600
	}
	h := start(t, options{heap: 3 << 20, configure: func(c *gateway.Config) {
		c.Nodes.ForgetAfter = gateway.Duration(2 * T)
	}})
	h.warmUp()
	apiBefore, seriesBefore := h.webSizes(t)
	var e errs
	r := h.attack(func(ctx context.Context) {
		parallel(8, func(i int) {
			for k := i; k < ids; k += 8 {
				c, err := dialFrom(ctx, source(i), h.nodeAddr)
				if err != nil {
					e.add(err)
					return
				}
				c.Write(fmt.Appendf(nil, "flood-%d\n", k))
				// Most leave once attached (the server's first
				// keepalive); one in four at once, which may be before
				// its link came up.
				if k%4 != 0 {
					c.SetReadDeadline(time.Now().Add(20 * T))
					if _, err := c.Read(make([]byte, 1)); err != nil {
						e.add(fmt.Errorf("flood-%d: no keepalive: %w", k, err))
					}
				}
				c.Close()
			}
		})
	})
	e.check(t)
	h.eventually(t, "the flood's IDs forgotten", func() bool { return len(h.g.Server().Nodes()) == 1 })
	apiAfter, seriesAfter := h.webSizes(t)
	final := h.settle(r.before)
	if f := os.Getenv("FLOOD_HEAP"); f != "" {
		w, _ := os.Create(f)
		runtime.GC()
		pprof.WriteHeapProfile(w)
		w.Close()
	}
	t.Logf("flood of %d new IDs: goroutines %d -> peak %d -> %d; heap %.1f -> peak %.1f -> %.1f MiB; /api/status %d -> %d bytes (less the recent events); /metrics %d -> %d series",
		ids, r.before.goroutines, r.peak.goroutines, final.goroutines,
		float64(r.before.heap)/(1<<20), float64(r.peak.heap)/(1<<20), float64(final.heap)/(1<<20),
		apiBefore, apiAfter, seriesBefore, seriesAfter)
	if apiAfter > apiBefore+1024 {
		t.Errorf("/api/status grew from %d to %d bytes", apiBefore, apiAfter)
	}
	if seriesAfter > seriesBefore+20 {
		t.Errorf("/metrics grew from %d to %d series", seriesBefore, seriesAfter)
	}
	if nodes := h.g.Server().Nodes(); len(nodes) != 1 || nodes[0] != honestID {
		t.Errorf("the server keeps %d nodes after the flood, want only %q", len(nodes), honestID)
	}
}

// TestNodeCap (issue 10.2): past nodes.max IDs, a new ID is refused at
// its handshake and counted; the honest node carries on.
func TestNodeCap(t *testing.T) {
	const max = 20
	h := start(t, options{configure: func(c *gateway.Config) { c.Nodes.Max = max }})
	var e errs
	h.attack(func(ctx context.Context) {
		parallel(4, func(i int) {
			for k := i; k < 3*max; k += 4 {
				c, err := dialFrom(ctx, source(i), h.nodeAddr)
				if err != nil {
					e.add(err)
					return
				}
				c.Write(fmt.Appendf(nil, "capped-%d\n", k))
				e.add(waitClosedByPeer(c, 10*T))
				c.Close()
			}
		})
	})
	e.check(t)
	st := h.g.Server().Stats()
	if n := len(h.g.Server().Nodes()); n > max {
		t.Errorf("%d nodes kept, more than nodes.max %d", n, max)
	}
	if st.NodeLimit == 0 {
		t.Errorf("no ID refused past nodes.max: %+v", st)
	}
}

// webSizes returns the size of /api/status (less its recent events) and
// the number of series on /metrics.
func (h *harness) webSizes(t *testing.T) (api, series int) {
	t.Helper()
	get := func(path string) string {
		req, err := http.NewRequestWithContext(h.ctx, http.MethodGet, h.webURL+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %s, %v", path, resp.Status, err)
		}
		return string(b)
	}
	// The recent events are a bounded list: count the rest.
	var st struct {
		Events []json.RawMessage `json:"events"`
	}
	body := get("/api/status")
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		t.Fatalf("/api/status: %v", err)
	}
	api = len(body)
	for _, e := range st.Events {
		api -= len(e) + 1
	}

	for line := range strings.SplitSeq(get("/metrics"), "\n") {
		if line != "" && !strings.HasPrefix(line, "#") {
			series++
		}
	}
	http.DefaultClient.CloseIdleConnections()
	return api, series
}

// eventually waits, bounded, until cond holds; like settle, it checks
// again at a growing interval (forgetting notifies nothing).
func (h *harness) eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	wait := 10 * time.Millisecond
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within 20 s: %s", what)
		}
		timer := time.NewTimer(wait)
		select {
		case <-timer.C:
		case <-h.ctx.Done():
			timer.Stop()
			t.Fatalf("%s: %v", what, h.ctx.Err())
		}
		wait = min(2*wait, 250*time.Millisecond)
	}
}
