package server_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/tether-iot/tether/client"
	"github.com/tether-iot/tether/internal/harness/tethertest"
	"github.com/tether-iot/tether/link"
	"github.com/tether-iot/tether/server"
)

func TestServerClientExchange(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	T := 500 * time.Millisecond
	srv, addr := tethertest.NewServer(t, server.Config{Timeout: T, Expected: []string{"a", "b"}})
	ids := []string{"a", "b"}
	clients := map[string]*client.Client{}
	for _, id := range ids {
		clients[id] = tethertest.Dial(t, ctx, client.Config{ID: id, Server: addr, Timeout: T})
	}
	if err := srv.WaitAll(ctx); err != nil {
		t.Fatal(err)
	}
	const n = 200
	var wg sync.WaitGroup
	for _, id := range ids {
		node, err := srv.Lookup(id)
		if err != nil {
			t.Fatal(err)
		}
		c := clients[id]
		wg.Add(4)
		go func() {
			defer wg.Done()
			for i := range n {
				if err := c.Write(ctx, fmt.Sprintf("%s up %d", id, i)); err != nil {
					t.Error(err)
					return
				}
			}
		}()
		go func() {
			defer wg.Done()
			for i := range n {
				if err := node.Write(ctx, fmt.Sprintf("%s down %d", id, i)); err != nil {
					t.Error(err)
					return
				}
			}
		}()
		go func() {
			defer wg.Done()
			for i := range n {
				got, err := node.ReadLine(ctx)
				if want := fmt.Sprintf("%s up %d", id, i); err != nil || got != want {
					t.Errorf("server got %q, %v; want %q", got, err, want)
					return
				}
			}
		}()
		go func() {
			defer wg.Done()
			for i := range n {
				got, err := c.ReadLine(ctx)
				if want := fmt.Sprintf("%s down %d", id, i); err != nil || got != want {
					t.Errorf("client got %q, %v; want %q", got, err, want)
					return
				}
			}
		}()
	}
	wg.Wait()
	if got := srv.Nodes(); fmt.Sprint(got) != "[a b]" {
		t.Fatalf("Nodes() = %v", got)
	}
	if _, err := srv.Lookup("nobody"); err == nil {
		t.Fatal("Lookup of an unknown ID succeeded")
	}
}

// Shutdown waits for queued messages to be acknowledged, then closes.
func TestShutdownDrains(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	T := 300 * time.Millisecond
	srv, addr := tethertest.NewServer(t, server.Config{Timeout: T})
	c := tethertest.Dial(t, ctx, client.Config{ID: "d", Server: addr, Timeout: T})
	node, err := srv.Node(ctx, "d")
	if err != nil {
		t.Fatal(err)
	}
	const n = 50
	assigned := make(chan struct{}, n)
	onID := link.Assign(func(uint8) error { assigned <- struct{}{}; return nil })
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := node.Write(ctx, fmt.Sprint("bye ", i), link.Wait(false), onID); err != nil {
				t.Error(err)
			}
		}()
	}
	for range n {
		<-assigned
	}
	done := make(chan error, 1)
	go func() { done <- srv.Shutdown(ctx) }()
	for i := range n {
		if _, err := c.ReadLine(ctx); err != nil {
			t.Fatalf("read %d: %v", i, err)
		}
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if st := node.Stats(); st.Pending != 0 || st.Acked != n || st.Up {
		t.Fatalf("stats after shutdown %+v", st)
	}
}
