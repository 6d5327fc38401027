package client_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"time"

	"github.com/tether-iot/tether/client"
	"github.com/tether-iot/tether/link"
)

// With no server to reach at start-up, Dial fails by default; a BadServer
// hook may instead decide to keep trying.
func ExampleDial_noServer() {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now

	_, err := client.Dial(context.Background(), client.Config{
		ID:     "7",
		Server: addr,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	fmt.Println(err != nil)
	// Output: true
}

// A node that reports its state changes on a channel and writes without
// waiting for earlier acknowledgements.
func ExampleDial() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	events := make(chan link.Event, 8)
	c, err := client.Dial(ctx, client.Config{
		ID:      "7",
		Server:  "gw.example:8123", // the Dial hook below answers instead
		Timeout: time.Second,
		Events:  events,
		BadServer: func(ctx context.Context, err error) error {
			return fmt.Errorf("giving up: %w", err)
		},
		Dial: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return nil, fmt.Errorf("no route to %s", addr)
		},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()
	c.Write(ctx, "hello", link.Wait(false))
	// Output: giving up: no route to gw.example:8123
}
