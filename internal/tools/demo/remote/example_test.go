package remote_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/tether-iot/tether/internal/tools/demo"
	"github.com/tether-iot/tether/internal/tools/demo/remote"
)

// The remote control demo in one process: the server forwards the
// switch of node tx to the LED of node rx.
func Example() {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	sim, err := demo.StartSim(ctx, demo.SimConfig{
		IDs:     []string{remote.TX, remote.RX},
		Timeout: 300 * time.Millisecond,
		Logger:  slog.New(slog.DiscardHandler),
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer sim.Close()
	out := demo.NewPrinter(io.Discard) // the story, untold
	sw := remote.NewSwitch()
	led := make(chan bool, 8)

	var wg sync.WaitGroup
	defer wg.Wait()
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	wg.Go(func() { remote.Server(runCtx, sim.Server, out) })
	wg.Go(func() { remote.TXNode(runCtx, sim.Nodes[remote.TX], sw, out) })
	wg.Go(func() { remote.RXNode(runCtx, sim.Nodes[remote.RX], out, func(on bool) { led <- on }) })

	for range 2 {
		fmt.Println("switch on:", sw.Toggle())
		fmt.Println("LED on:", <-led)
	}
	// Output:
	// switch on: true
	// LED on: true
	// switch on: false
	// LED on: false
}

func ExampleSwitch() {
	sw := remote.NewSwitch() // off
	fmt.Println(sw.Toggle())
	fmt.Println(sw.Toggle())
	// Output:
	// true
	// false
}
