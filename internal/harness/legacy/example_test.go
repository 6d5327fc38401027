package legacy_test

import (
	"context"
	"fmt"
	"time"

	"github.com/tether-iot/tether/internal/harness/legacy"
)

// A legacy node sends a qos message to the legacy server and gets a reply.
func Example() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	const T = 200 * time.Millisecond
	srv, err := legacy.StartServer(ctx, legacy.ServerConfig{Timeout: T, Expected: []string{"node1"}})
	if err != nil {
		panic(err)
	}
	defer srv.Close()
	node, err := legacy.StartNode(ctx, legacy.NodeConfig{ID: "node1", Addr: srv.Addr(), Timeout: T, StartDelay: -1})
	if err != nil {
		panic(err)
	}
	defer node.Close()

	conn, err := srv.Conn(ctx, "node1")
	if err != nil {
		panic(err)
	}
	if err := node.Write(ctx, "hello", true, true); err != nil {
		panic(err)
	}
	line, _ := conn.ReadLine(ctx)
	fmt.Printf("server read %q\n", line)
	if err := conn.Write(ctx, "welcome", true, true); err != nil {
		panic(err)
	}
	line, _ = node.ReadLine(ctx)
	fmt.Printf("node read %q\n", line)
	// Output:
	// server read "hello\n"
	// node read "welcome\n"
}
