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
	"github.com/tether-iot/tether/internal/notify"
	"github.com/tether-iot/tether/internal/tools/demo"
	"github.com/tether-iot/tether/internal/tools/soak/seqcheck"
	"github.com/tether-iot/tether/link"
	"github.com/tether-iot/tether/server"
)

// Checks counts the numbers each side of the demo receives (the node's
// count, the server instance's count), one stream per receiver, so that
// the demo can end with a verdict: lost (a gap below a number that
// arrived: with qos and wait, order is kept, so a gap is a loss) and
// duplicated. The zero value is ready; a nil *Checks checks nothing.
type Checks struct {
	mu      sync.Mutex
	streams map[string]*seqcheck.Checker
}

func (c *Checks) add(stream string, n int) seqcheck.Result {
	if c == nil || n < 0 {
		return seqcheck.New
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.streams == nil {
		c.streams = make(map[string]*seqcheck.Checker)
	}
	ch := c.streams[stream]
	if ch == nil {
		ch = &seqcheck.Checker{FromFirst: true}
		c.streams[stream] = ch
	}
	return ch.Add(uint64(n))
}

// Totals returns the distinct messages received, the lost and the
// duplicated, over every stream.
func (c *Checks) Totals() (received, lost, duplicated uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, ch := range c.streams {
		received += ch.Received()
		lost += ch.Gaps()
		duplicated += ch.Duplicates()
	}
	return received, lost, duplicated
}

// IDs are the nodes of the main demo.
var IDs = []string{"1", "2", "3", "4"}

// Node runs the node half on c until ctx is done: it sends its list every
// interval and prints what the server's application sends.
// chk, if not nil, counts the server's numbers as they arrive.
func Node(ctx context.Context, c *client.Client, out *demo.Printer, interval time.Duration, chk *Checks) error {
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
			var v []int
			if json.Unmarshal([]byte(line), &v) == nil && len(v) > 0 {
				if chk.add(who, v[0]) == seqcheck.Duplicate {
					out.Say(who, "got  %s from the server app: a DUPLICATE", line)
					continue
				}
			}
			out.Say(who, "got  %s from the server app", line)
		}
	}()
	return quiet(ctx, every(ctx, interval, func(count int) error {
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		data, _ := json.Marshal([]int{c.Connects(), count, int(ms.HeapInuse / 1024)})
		out.Say(who, "sent %s to the server app", data)
		return c.Write(ctx, string(data))
	}))
}

// every calls send with 0, 1, 2... every interval until it fails or ctx
// ends (nil).
func every(ctx context.Context, interval time.Duration, send func(count int) error) error {
	for count := 0; ; count++ {
		if err := send(count); err != nil {
			return err
		}
		if !notify.Sleep(ctx, interval) {
			return nil
		}
	}
}

// Server runs one instance of the server-side application for each of
// ids, on srv, until ctx is done; chk, if not nil, counts each node's
// numbers as they arrive.
func Server(ctx context.Context, srv *server.Server, ids []string, out *demo.Printer, interval time.Duration, chk *Checks) error {
	var wg sync.WaitGroup
	for _, id := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			serveNode(ctx, srv, id, out, interval, chk)
		}()
	}
	wg.Wait()
	return nil
}

func serveNode(ctx context.Context, srv *server.Server, id string, out *demo.Printer, interval time.Duration, chk *Checks) {
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
			if chk.add(who, got[1]) == seqcheck.Duplicate {
				out.Say(who, "got  %s from node %s: a DUPLICATE", line, id)
				continue
			}
			out.Say(who, "got  %s from node %s", line, id)
		}
	}()
	_ = every(ctx, interval, func(count int) error {
		mu.Lock()
		data[0] = count
		b, _ := json.Marshal(data)
		mu.Unlock()
		out.Say(who, "sent %s to node %s", b, id)
		return l.Write(ctx, string(b))
	})
}

// quiet turns the errors of an ending demo into nil.
func quiet(ctx context.Context, err error) error {
	if ctx.Err() != nil || errors.Is(err, link.ErrClosed) {
		return nil
	}
	return err
}
