package link_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"

	"github.com/tether-iot/tether/link"
)

// Two Links joined by an in-memory pipe: one in the server's role, one in
// the node's. Across a real network, package server and package client
// make and attach the Links.
func Example() {
	ctx := context.Background()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	srv, _ := link.New(link.Config{ID: "node1", Logger: quiet})
	node, _ := link.New(link.Config{ID: "node1", UpOnFirstLine: true, Logger: quiet})

	a, b := net.Pipe()
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); srv.Attach(ctx, a) }()
	go func() { defer wg.Done(); node.Attach(ctx, b) }()

	// A qos write returns once the peer has acknowledged the line.
	if err := node.Write(ctx, "temperature 21.5"); err != nil {
		fmt.Println(err)
	}
	line, _ := srv.ReadLine(ctx)
	fmt.Println(line)

	// qos=false: sent once, faster, may be lost in an outage.
	srv.Write(ctx, "led on", link.QoS(false))
	line, _ = node.ReadLine(ctx)
	fmt.Println(line)

	node.Close()
	srv.Close()
	wg.Wait()
	// Output:
	// temperature 21.5
	// led on
}

// Events tell an outage (Down, then Up) from a peer restart.
func ExampleLink_Notify() {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	l, _ := link.New(link.Config{ID: "node1", Logger: quiet})
	defer l.Close()
	events := make(chan link.Event, 16)
	l.Notify(events)

	a, b := net.Pipe()
	go io.Copy(io.Discard, b)
	done := make(chan error)
	go func() { done <- l.Attach(context.Background(), a) }()
	ev := <-events
	fmt.Println(ev.Kind, ev.Connects)
	b.Close() // the peer goes away
	<-done
	ev = <-events
	fmt.Println(ev.Kind, ev.Err != nil)
	// Output:
	// up 1
	// down true
}
