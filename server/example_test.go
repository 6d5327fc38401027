package server_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"

	"github.com/tether-iot/tether/client"
	"github.com/tether-iot/tether/server"
)

// A server for two expected nodes, and a Go node talking to it.
func Example() {
	ctx := context.Background()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	srv, err := server.New(server.Config{Expected: []string{"kitchen", "garage"}, Logger: quiet})
	if err != nil {
		fmt.Println(err)
		return
	}
	ln, _ := net.Listen("tcp", "127.0.0.1:0") // server.ListenAndServe uses :8123
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	// A node (it could be a MicroPython board running micropython-iot).
	c, err := client.Dial(ctx, client.Config{ID: "kitchen", Server: ln.Addr().String(), Logger: quiet})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()

	kitchen, _ := srv.Node(ctx, "kitchen") // waits for the node's first connection
	c.Write(ctx, `{"temp": 21.5}`)
	line, _ := kitchen.ReadLine(ctx)
	fmt.Println("from kitchen:", line)
	kitchen.Write(ctx, "heating off")
	line, _ = c.ReadLine(ctx)
	fmt.Println("to kitchen:", line)
	fmt.Println("nodes:", srv.Nodes())

	srv.Close()
	fmt.Println(<-served)
	// Output:
	// from kitchen: {"temp": 21.5}
	// to kitchen: heating off
	// nodes: [kitchen]
	// server: closed
}

// Lookup finds another node's link, for an application that forwards
// between nodes; an ID that has never connected is an error.
func ExampleServer_Lookup() {
	srv, _ := server.New(server.Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	defer srv.Close()
	_, err := srv.Lookup("rx")
	fmt.Println(err)
	// Output:
	// server: unknown node: "rx"
}
