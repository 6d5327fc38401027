// Package tethertest starts Tether servers and Go nodes on loopback for
// tests, as net/http/httptest does for HTTP: everything it starts is
// closed, and its goroutines waited for, at the end of the test.
package tethertest

import (
	"context"
	"sync"
	"testing"

	"github.com/tether-iot/tether/client"
	"github.com/tether-iot/tether/internal/harness/testutil"
	"github.com/tether-iot/tether/server"
)

// NewServer makes a server with cfg (testutil.Logger if cfg has none) and
// serves it on a free loopback port (see Serve); it returns the server
// and its address.
func NewServer(t testing.TB, cfg server.Config) (*server.Server, string) {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = testutil.Logger()
	}
	srv, err := server.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return srv, Serve(t, srv)
}

// Serve serves srv on a free loopback port until the end of the test,
// then closes it and waits for Serve to return; it returns the address.
func Serve(t testing.TB, srv *server.Server) string {
	t.Helper()
	ln := testutil.Listen(t)
	var wg sync.WaitGroup
	wg.Go(func() { srv.Serve(ln) })
	t.Cleanup(func() {
		srv.Close()
		wg.Wait()
	})
	return ln.Addr().String()
}

// Dial connects a Go node with cfg (testutil.Logger if cfg has none),
// closed at the end of the test.
func Dial(t testing.TB, ctx context.Context, cfg client.Config) *client.Client {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = testutil.Logger()
	}
	c, err := client.Dial(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// DialUp is Dial, then waits until the node's link is up.
func DialUp(t testing.TB, ctx context.Context, cfg client.Config) *client.Client {
	t.Helper()
	c := Dial(t, ctx, cfg)
	if err := c.WaitUp(ctx); err != nil {
		t.Fatal(err)
	}
	return c
}
