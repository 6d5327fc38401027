package faultnet_test

import (
	"context"
	"log/slog"
	"time"

	"github.com/tether-iot/tether/internal/harness/faultnet"
)

// A proxy in front of a server on port 8123: nodes connect to p.Addr(), and
// the test injects a WiFi-like outage, then waits for the node to reconnect.
func Example() {
	ctx := context.Background()
	p, err := faultnet.Start(ctx, faultnet.Config{Target: "127.0.0.1:8123"})
	if err != nil {
		slog.Error("start proxy", "err", err)
		return
	}
	defer p.Close()
	// ... start a node that connects to p.Addr() ...
	if err := p.WaitConns(ctx, 1); err != nil {
		return
	}
	<-p.Blackhole(3 * time.Second) // the node's timeout notices the silence
	_ = p.WaitConns(ctx, 2)        // the node connects again
}
