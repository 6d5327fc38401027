package server_test

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/tether-iot/tether/client"
	"github.com/tether-iot/tether/internal/harness/testutil"
	"github.com/tether-iot/tether/internal/harness/tethertest"
	"github.com/tether-iot/tether/server"
)

// TestServeListeners: Serve has net/http's shape. A listener that its
// owner closes ends its own Serve only; the server, its links and its
// other listeners go on (T is long: no outage is expected); Shutdown ends every Serve with ErrServerClosed,
// and a Serve called after it returns at once.
func TestServeListeners(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	srv, err := server.New(server.Config{Timeout: 2 * time.Second, Logger: testutil.Logger()})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	ln1, ln2 := testutil.Listen(t), testutil.Listen(t)
	done1, done2 := make(chan error, 1), make(chan error, 1)
	go func() { done1 <- srv.Serve(ln1) }()
	go func() { done2 <- srv.Serve(ln2) }()

	c1 := tethertest.Dial(t, ctx, client.Config{ID: "one", Server: ln1.Addr().String()})
	one, err := srv.Node(ctx, "one")
	if err != nil {
		t.Fatal(err)
	}
	ln1.Close()
	if err := <-done1; err == nil || errors.Is(err, server.ErrServerClosed) || !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Serve of a listener closed by its owner: %v, want its error", err)
	}
	c2 := tethertest.Dial(t, ctx, client.Config{ID: "two", Server: ln2.Addr().String()})
	two, err := srv.Node(ctx, "two")
	if err != nil {
		t.Fatalf("the other listener no longer serves: %v", err)
	}
	// Both links work: the first one's connection outlived its listener.
	for _, p := range []struct {
		c *client.Client
		l interface {
			ReadLine(context.Context) (string, error)
		}
	}{{c1, one}, {c2, two}} {
		if err := p.c.Write(ctx, "hi from "+p.c.ID()); err != nil {
			t.Fatal(err)
		}
		if line, err := p.l.ReadLine(ctx); err != nil || line != "hi from "+p.c.ID() {
			t.Fatalf("ReadLine: %q, %v", line, err)
		}
	}

	if err := srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-done2; !errors.Is(err, server.ErrServerClosed) {
		t.Fatalf("Serve after Shutdown: %v, want ErrServerClosed", err)
	}
	ln3 := testutil.Listen(t)
	if err := srv.Serve(ln3); !errors.Is(err, server.ErrServerClosed) {
		t.Fatalf("Serve called after Shutdown: %v, want ErrServerClosed", err)
	}
	if _, err := net.Dial("tcp", ln3.Addr().String()); err == nil {
		t.Error("Serve called after Shutdown left its listener open")
	}
}
