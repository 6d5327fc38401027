package web_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/tether-iot/tether/client"
	"github.com/tether-iot/tether/gateway/internal/web"
	"github.com/tether-iot/tether/internal/harness/testutil"
	"github.com/tether-iot/tether/internal/harness/tethertest"
	"github.com/tether-iot/tether/link"
	"github.com/tether-iot/tether/server"
)

// env is a Tether server on loopback with its status page.
type env struct {
	srv  *server.Server
	addr string // the Tether server's
	web  *web.Server
	url  string // the page's, without a final slash
	T    time.Duration
}

// start serves a Tether server with T and its status page, until the end
// of the test.
func start(t testing.TB, T time.Duration, cfg web.Config) *env {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = testutil.Logger()
	}
	ws, err := web.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	scfg := server.Config{Timeout: T, Logger: testutil.Logger()}
	ws.Hook(&scfg)
	srv, err := server.New(scfg)
	if err != nil {
		t.Fatal(err)
	}
	ws.SetServer(srv)

	sln, wln := testutil.Listen(t), testutil.Listen(t)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		srv.Serve(sln)
	}()
	go func() {
		defer wg.Done()
		if err := ws.Serve(context.Background(), wln); !errors.Is(err, web.ErrServerClosed) {
			t.Errorf("web Serve: %v", err)
		}
	}()
	t.Cleanup(func() {
		ws.Close()
		srv.Close()
		wg.Wait()
	})
	return &env{srv: srv, addr: sln.Addr().String(), web: ws, url: "http://" + wln.Addr().String(), T: T}
}

// dial connects a Go node with the server's T and waits until it is up.
func (e *env) dial(t *testing.T, ctx context.Context, id string) *client.Client {
	t.Helper()
	return e.dialT(t, ctx, id, e.T, nil)
}

func (e *env) dialT(t *testing.T, ctx context.Context, id string, T time.Duration, heartbeat func(bool)) *client.Client {
	t.Helper()
	c := tethertest.DialUp(t, ctx, client.Config{ID: id, Server: e.addr, Timeout: T, Heartbeat: heartbeat})
	if err := e.srv.Wait(ctx, id); err != nil {
		t.Fatal(err)
	}
	return c
}

// dialMismatched connects a node whose T is twice the server's, and
// returns once the server has seen enough of its keepalives to infer its T.
func (e *env) dialMismatched(t *testing.T, ctx context.Context, id string) *client.Client {
	t.Helper()
	return e.dialMismatchedT(t, ctx, id, 2*e.T)
}

func (e *env) dialMismatchedT(t *testing.T, ctx context.Context, id string, T time.Duration) *client.Client {
	t.Helper()
	beats := make(chan struct{}, 16)
	c := e.dialT(t, ctx, id, T, func(bool) {
		select {
		case beats <- struct{}{}:
		default:
		}
	})
	for range 3 {
		select {
		case <-beats:
		case <-ctx.Done():
			t.Fatalf("no keepalive from %s: %v", id, ctx.Err())
		}
	}
	// The server reads lines in order: once it has this message, it has
	// handled the keepalives written before it.
	if err := c.Write(ctx, fmt.Sprint("sync ", time.Now().UnixNano())); err != nil {
		t.Fatal(err)
	}
	l, err := e.srv.Lookup(id)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.ReadLine(ctx); err != nil {
		t.Fatal(err)
	}
	if l.Stats().PeerTimeout() == 0 {
		t.Fatalf("node %s: T not inferred after 3 keepalives", id)
	}
	return c
}

// takeDown closes c and returns the server's Down event of its node.
func (e *env) takeDown(t *testing.T, ctx context.Context, c *client.Client) link.Event {
	t.Helper()
	l, err := e.srv.Lookup(c.ID())
	if err != nil {
		t.Fatal(err)
	}
	ch := make(chan link.Event, 16)
	l.Notify(ch)
	defer l.Stop(ch)
	c.Close()
	for {
		select {
		case ev := <-ch:
			if ev.Kind == link.Down {
				return ev
			}
		case <-ctx.Done():
			t.Fatalf("node %s still up: %v", c.ID(), ctx.Err())
		}
	}
}

// exchange sends out qos messages to node id and in messages from it.
func (e *env) exchange(t *testing.T, ctx context.Context, c *client.Client, out, in int) {
	t.Helper()
	l, err := e.srv.Lookup(c.ID())
	if err != nil {
		t.Fatal(err)
	}
	for i := range out {
		if err := l.Write(ctx, fmt.Sprint("to node ", i)); err != nil {
			t.Fatal(err)
		}
		if _, err := c.ReadLine(ctx); err != nil {
			t.Fatal(err)
		}
	}
	for i := range in {
		if err := c.Write(ctx, fmt.Sprint("from node ", i)); err != nil {
			t.Fatal(err)
		}
		if _, err := l.ReadLine(ctx); err != nil {
			t.Fatal(err)
		}
	}
}
