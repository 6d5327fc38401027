package web_test

import (
	"context"
	"log"
	"sync"
	"time"

	"github.com/tether-iot/tether/gateway/internal/web"
	"github.com/tether-iot/tether/server"
)

// A gateway makes the page first, hooks it into the server's Config, then
// gives it the server. Both serve until ctx ends.
func Example() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	ws, err := web.New(web.Config{Addr: "127.0.0.1:8080", Title: "greenhouse"})
	if err != nil {
		log.Fatal(err)
	}
	defer ws.Close()
	scfg := server.Config{Timeout: 2 * time.Second}
	ws.Hook(&scfg) // up/down events to the page, ACK round trips to /metrics
	srv, err := server.New(scfg)
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()
	ws.SetServer(srv)

	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		log.Print(ws.ListenAndServe(ctx)) // returns when ctx ends
	}()
	log.Print(srv.ListenAndServe()) // until srv.Shutdown or srv.Close
	cancel()
	wg.Wait()
}
