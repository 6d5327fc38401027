package qos_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/tether-iot/tether/internal/tools/demo"
	"github.com/tether-iot/tether/internal/tools/demo/qos"
)

// Both sides of the qos demo over a Sim: each writes numbered messages
// until Finish, which waits for the last acknowledgements and compares
// what the other side sent with what this one received.
func ExampleStart() {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	sim, err := demo.StartSim(ctx, demo.SimConfig{
		IDs:     []string{qos.ID},
		Timeout: 300 * time.Millisecond,
		Logger:  slog.New(slog.DiscardHandler),
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer sim.Close()
	l, err := sim.Server.Node(ctx, qos.ID)
	if err != nil {
		fmt.Println(err)
		return
	}
	out := demo.NewPrinter(io.Discard) // the story, untold
	node := qos.Start(ctx, sim.Nodes[qos.ID], qos.Config{Node: true, Interval: 50 * time.Millisecond, Out: out})
	defer node.Close()
	srv := qos.Start(ctx, l, qos.Config{Interval: 50 * time.Millisecond, Out: out})
	defer srv.Close()

	sim.Proxies[qos.ID].Reset() // an outage, while both sides write

	var res [2]qos.Result
	var wg sync.WaitGroup
	for i, s := range []*qos.Side{node, srv} {
		wg.Go(func() {
			var err error
			if res[i], err = s.Finish(ctx); err != nil {
				fmt.Println(err)
			}
		})
	}
	wg.Wait()
	for i, name := range []string{"node", "server"} {
		r := res[i]
		fmt.Printf("%s: got all the other sent, once: %v\n", name, r.PeerSent > 0 && r.Received == r.PeerSent && r.Lost+r.Duplicated == 0)
	}
	// Output:
	// node: got all the other sent, once: true
	// server: got all the other sent, once: true
}
