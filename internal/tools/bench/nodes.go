package bench

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tether-iot/tether/client"
	"github.com/tether-iot/tether/link"
)

// dialParallel bounds the connections a farm opens at once.
const dialParallel = 256

// sourceIP spreads connections over loopback source addresses, perIP
// each (127.1.0.1, 127.1.0.2, ...): one address's ephemeral ports and the
// server's per-address handshake limit are then never the bottleneck.
func sourceIP(i, perIP int) net.IP {
	j := i / max(perIP, 1)
	return net.IPv4(127, byte(1+j/62500), byte(j/250%250), byte(j%250+1))
}

// dialerFrom returns a dial function bound to a source address.
func dialerFrom(ip net.IP, timeout time.Duration) func(ctx context.Context, network, addr string) (net.Conn, error) {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: ip}, Timeout: timeout}
	return d.DialContext
}

// nodeSet is a farm's Tether nodes.
type nodeSet struct {
	clients []*client.Client
	ups     atomic.Int64
	downs   atomic.Int64

	bgCtx    context.Context // background writes (nodes.queue)
	bgCancel context.CancelFunc
	bg       sync.WaitGroup
}

// startNodes connects spec.N nodes and waits until every one is up.
func startNodes(ctx context.Context, spec NodesSpec) (*nodeSet, error) {
	ns := &nodeSet{clients: make([]*client.Client, spec.N)}
	ns.bgCtx, ns.bgCancel = context.WithCancel(context.Background())
	log := slog.New(slog.DiscardHandler)
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
		sem   = make(chan struct{}, dialParallel)
	)
	reconnect := spec.ReconnectDelay
	if reconnect == 0 {
		reconnect = 2 * spec.Timeout
	}
	for i := range spec.N {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			c, err := client.Dial(ctx, client.Config{
				ID:             fmt.Sprintf("n%06d", i),
				Server:         spec.Addr,
				Timeout:        spec.Timeout,
				ReconnectDelay: reconnect,
				// No jitter, no backoff: the whole fleet comes back at
				// once, the worst case for the server.
				MaxReconnectDelay: reconnect,
				Dial:              dialerFrom(sourceIP(i, spec.PerIP), spec.Timeout),
				OnEvent:           ns.event,
				Logger:            log,
				// A dial that times out on a loaded machine (a SYN
				// dropped at a full listen queue) is tried again, as
				// after an outage, rather than failing the run.
				BadServer: func(context.Context, error) error { return nil },
			})
			if err == nil {
				ns.clients[i] = c
				err = c.WaitUp(ctx)
			}
			if err != nil {
				mu.Lock()
				if first == nil {
					first = fmt.Errorf("node %d: %w", i, err)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if first != nil {
		ns.stop()
		return nil, first
	}
	return ns, nil
}

func (ns *nodeSet) event(ev link.Event) {
	switch ev.Kind {
	case link.Up:
		ns.ups.Add(1)
	case link.Down:
		if !errors.Is(ev.Err, link.ErrClosed) {
			ns.downs.Add(1)
		}
	}
}

// writeOptions maps a load mode to Write's options.
func writeOptions(mode string) ([]link.WriteOption, error) {
	switch mode {
	case "off":
		return []link.WriteOption{link.QoS(false)}, nil
	case "wait", "":
		return nil, nil
	case "nowait":
		return []link.WriteOption{link.Wait(false)}, nil
	}
	return nil, fmt.Errorf("farm: unknown write mode %q", mode)
}

// write runs a load of Write calls on the first spec.Conns nodes.
func (ns *nodeSet) write(ctx context.Context, spec LoadSpec) (Response, error) {
	opts, err := writeOptions(spec.Mode)
	if err != nil {
		return Response{}, err
	}
	conns := min(max(spec.Conns, 1), len(ns.clients))
	workers := max(spec.Workers, 1)
	start := time.Now()
	deadline := start.Add(spec.Duration)
	total, samples, first := load(conns*workers, func(i int) (int64, []int64, error) {
		c := ns.clients[i%conns]
		return writeLoop(spec, deadline, func(p string) error { return c.Write(ctx, p, opts...) })
	})
	if first != nil {
		return Response{}, first
	}
	return Response{Count: total, Elapsed: int64(time.Since(start)), Samples: samples}, nil
}

// queue makes every node write k qos messages in the background (during
// an outage, say) and returns once each has been given its id; they are
// delivered when the nodes are up again. With k > 1 they do not wait for
// each other.
func (ns *nodeSet) queue(ctx context.Context, k int) error {
	var assigned sync.WaitGroup
	p := filler(32)
	for _, c := range ns.clients {
		for range k {
			assigned.Add(1)
			ns.bg.Add(1)
			go func() {
				defer ns.bg.Done()
				done := false
				err := c.Write(ns.bgCtx, p, link.Wait(k == 1), link.Assign(func(uint8) error {
					done = true
					assigned.Done()
					return nil
				}))
				if !done {
					assigned.Done()
				}
				_ = err // delivery is counted on the server
			}()
		}
	}
	ch := make(chan struct{})
	go func() {
		assigned.Wait()
		close(ch)
	}()
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		ns.bgCancel()
		<-ch
		return ctx.Err()
	}
}

// stop closes every node and waits for the background writes.
func (ns *nodeSet) stop() {
	ns.bgCancel()
	var wg sync.WaitGroup
	sem := make(chan struct{}, 64)
	for _, c := range ns.clients {
		if c == nil {
			continue
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.Close()
			<-sem
		}()
	}
	wg.Wait()
	ns.bg.Wait()
}
