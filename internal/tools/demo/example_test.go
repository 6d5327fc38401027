package demo_test

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/tether-iot/tether/internal/tools/demo"
)

// A server and a node in one process, the node behind its fault proxy:
// a message written by the server while the node's connection is reset
// arrives once the node is back.
func ExampleStartSim() {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	sim, err := demo.StartSim(ctx, demo.SimConfig{
		IDs:     []string{"1"},
		Timeout: 300 * time.Millisecond,
		Logger:  slog.New(slog.DiscardHandler),
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer sim.Close()
	node, err := sim.Server.Node(ctx, "1") // the server's end of node 1's link
	if err != nil {
		fmt.Println(err)
		return
	}

	sim.Nodes["1"].Write(ctx, "hello")
	line, _ := node.ReadLine(ctx)
	fmt.Println("server got:", line)

	sim.Proxies["1"].Reset() // an outage, as when the node crashes
	node.Write(ctx, "welcome back")
	line, _ = sim.Nodes["1"].ReadLine(ctx)
	fmt.Println("node got:", line)
	// Output:
	// server got: hello
	// node got: welcome back
}
