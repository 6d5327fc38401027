// Package mainapp is the main demo of micropython-iot (iot/examples):
// up to four nodes, each exchanging a JSON list with its own instance of
// the server-side application every few seconds, with qos.
//
// The node sends [connects, count, heap kB]: how many times it has
// connected, a counter, and its memory in use. The server's instance for
// that node sends [count, the node's count, the node's heap kB]: its own
// counter and the node's last figures.
package mainapp

import (
	"context"
	"encoding/json"
	"errors"
	"runtime"
	"sync"
	"time"

	"github.com/tether-iot/tether/client"
	"github.com/tether-iot/tether/internal/tools/demo"
	"github.com/tether-iot/tether/link"
	"github.com/tether-iot/tether/server"
)

// IDs are the nodes of the main demo.
var IDs = []string{"1", "2", "3", "4"}

// Node runs the node half on c until ctx is done: it sends its list every
// interval and prints what the server's application sends.
func Node(ctx context.Context, c *client.Client, out *demo.Printer, interval time.Duration) error {
	who := "node " + c.ID()
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			line, err := c.ReadLine(ctx)
			if err != nil {
				return
			}
			out.Say(who, "got  %s from the server app", line)
		}
	}()
	for count := 0; ; count++ {
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		data, _ := json.Marshal([]int{c.Connects(), count, int(ms.HeapInuse / 1024)})
		out.Say(who, "sent %s to the server app", data)
		if err := c.Write(ctx, string(data)); err != nil {
			return quiet(ctx, err)
		}
		if !demo.Sleep(ctx, interval) {
			return nil
		}
	}
}

// Server runs one instance of the server-side application for each of
// ids, on srv, until ctx is done.
func Server(ctx context.Context, srv *server.Server, ids []string, out *demo.Printer, interval time.Duration) error {
	var wg sync.WaitGroup
	for _, id := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			serveNode(ctx, srv, id, out, interval)
		}()
	}
	wg.Wait()
	return nil
}

func serveNode(ctx context.Context, srv *server.Server, id string, out *demo.Printer, interval time.Duration) {
	who := "app " + id
	out.Say(who, "awaiting node %s", id)
	l, err := srv.Node(ctx, id)
	if err != nil {
		return
	}
	var mu sync.Mutex
	data := []int{0, 0, 0}
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			line, err := l.ReadLine(ctx)
			if err != nil {
				return
			}
			var got []int
			if err := json.Unmarshal([]byte(line), &got); err != nil || len(got) != 3 {
				out.Say(who, "got a line that is not [connects, count, heap]: %q", line)
				continue
			}
			mu.Lock()
			data[1], data[2] = got[1], got[2]
			mu.Unlock()
			out.Say(who, "got  %s from node %s", line, id)
		}
	}()
	for count := 0; ; count++ {
		mu.Lock()
		data[0] = count
		b, _ := json.Marshal(data)
		mu.Unlock()
		out.Say(who, "sent %s to node %s", b, id)
		if err := l.Write(ctx, string(b)); err != nil {
			return
		}
		if !demo.Sleep(ctx, interval) {
			return
		}
	}
}

// quiet turns the errors of an ending demo into nil.
func quiet(ctx context.Context, err error) error {
	if ctx.Err() != nil || errors.Is(err, link.ErrClosed) {
		return nil
	}
	return err
}
