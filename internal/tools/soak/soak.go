package soak

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tether-iot/tether/client"
	"github.com/tether-iot/tether/internal/harness/faultnet"
	"github.com/tether-iot/tether/server"
)

// Soak is a running soak: simulated nodes exchanging qos messages with a
// server through outages. Start one, let it run, then Stop it for the
// Report; Run does all three.
type Soak struct {
	cfg   Config
	start time.Time
	nodes []*simNode

	srv    *server.Server // in-process server, or nil
	peer   *Peer          // in-process peer, or nil
	srvErr chan error

	runCtx    context.Context // nodes' streams and readers; cancelled last
	runCancel context.CancelFunc
	bg        sync.WaitGroup // peer, server, readers, progress
	writers   sync.WaitGroup // the nodes' streams

	stopWriters  chan struct{}
	faultCtx     context.Context
	faultStop    context.CancelFunc
	faultWG      sync.WaitGroup
	faults       [Refuse + 1]atomic.Uint64 // injected, by Fault
	missedFaults atomic.Uint64             // faults the node did not notice

	recMu     sync.Mutex
	outages   int
	recChange chan struct{} // closed and replaced when outages changes
	target    chan struct{} // closed once outages reaches Config.Outages
	stopOnce  sync.Once
}

// Start starts a soak: the in-process server (unless Config.Server is
// set), the fault proxies, and the nodes, each of which has sent its ID
// when Start returns. It fails if a node cannot reach the server.
func Start(ctx context.Context, cfg Config) (_ *Soak, err error) {
	cfg, err = cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	s := &Soak{
		cfg:         cfg,
		start:       time.Now(),
		stopWriters: make(chan struct{}),
		recChange:   make(chan struct{}),
		target:      make(chan struct{}),
		srvErr:      make(chan error, 1),
	}
	s.runCtx, s.runCancel = context.WithCancel(context.WithoutCancel(ctx))
	s.faultCtx, s.faultStop = context.WithCancel(s.runCtx)
	defer func() {
		if err != nil {
			s.shutdown()
		}
	}()
	target := cfg.Server
	if target == "" {
		if target, err = s.startServer(); err != nil {
			return nil, err
		}
	}
	for i := range cfg.Nodes {
		n, err := s.startNode(ctx, fmt.Sprintf("%s%03d", cfg.IDPrefix, i+1), target)
		if err != nil {
			return nil, err
		}
		s.nodes = append(s.nodes, n)
	}
	for i, n := range s.nodes {
		s.bg.Add(1)
		go func() { defer s.bg.Done(); n.read(s.runCtx) }()
		s.writers.Add(1)
		go func() {
			defer s.writers.Done()
			defer close(n.stopped)
			if err := n.cl.Write(s.runCtx, "hello "+n.run); err != nil {
				return
			}
			n.out.loop(s.runCtx, s.stopWriters)
		}()
		if n.proxy != nil && len(cfg.Faults) > 0 {
			rng := rand.New(rand.NewPCG(cfg.Seed, uint64(i)))
			s.faultWG.Add(1)
			go func() { defer s.faultWG.Done(); s.inject(n, rng) }()
		}
	}
	if cfg.Progress != nil {
		s.bg.Add(1)
		go func() { defer s.bg.Done(); s.reportProgress() }()
	}
	return s, nil
}

func (s *Soak) startServer() (string, error) {
	ln := s.cfg.Listener
	if ln == nil {
		var err error
		if ln, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			return "", fmt.Errorf("soak: listen: %w", err)
		}
	}
	s.peer = NewPeer(s.cfg.Interval, s.cfg.Logger)
	srv, err := newPeerServer(s.peer, server.Config{Timeout: s.cfg.Timeout, Logger: s.cfg.Logger})
	if err != nil {
		ln.Close()
		return "", err
	}
	s.srv = srv
	s.bg.Add(2)
	go func() { defer s.bg.Done(); s.srvErr <- srv.Serve(ln) }()
	go func() { defer s.bg.Done(); s.peer.Serve(s.runCtx, srv) }()
	return ln.Addr().String(), nil
}

func (s *Soak) startNode(ctx context.Context, id, target string) (*simNode, error) {
	n := newSimNode(s, id)
	addr := target
	if len(s.cfg.Faults) > 0 {
		p, err := faultnet.Start(s.runCtx, faultnet.Config{Target: target, Logger: s.cfg.Logger})
		if errors.Is(err, faultnet.ErrNotLoopback) {
			return nil, fmt.Errorf("soak: the fault proxies run on this machine and forward to loopback only, so %s cannot be soaked with faults: run the soak on the server's host, or without faults (--faults none): %w", target, err)
		}
		if err != nil {
			return nil, fmt.Errorf("soak: fault proxy: %w", err)
		}
		n.proxy = p
		addr = p.Addr()
	}
	cfg := client.Config{
		ID:      id,
		Server:  addr,
		Timeout: s.cfg.Timeout,
		Dial:    s.cfg.Dial,
		OnEvent: n.onEvent,
		Logger:  s.cfg.Logger,
	}
	if s.srv != nil {
		// Our own server, listening already: a first dial that fails
		// (one bounded by T, on a loaded machine) is tried again.
		cfg.BadServer = func(context.Context, error) error { return nil }
	}
	cl, err := client.Dial(ctx, cfg)
	if err != nil {
		if n.proxy != nil {
			n.proxy.Close()
		}
		return nil, fmt.Errorf("soak: node %s cannot reach the server at %s: %w", id, target, err)
	}
	n.cl = cl
	n.out = &streams{run: n.run, interval: s.cfg.Interval, w: cl}
	return n, nil
}

// recovered counts one outage recovered.
func (s *Soak) recovered() {
	s.recMu.Lock()
	s.outages++
	if s.cfg.Outages > 0 && s.outages == s.cfg.Outages {
		close(s.target)
	}
	close(s.recChange)
	s.recChange = make(chan struct{})
	s.recMu.Unlock()
}

// WaitUp waits until every node's link is up.
func (s *Soak) WaitUp(ctx context.Context) error {
	for _, n := range s.nodes {
		if err := n.cl.WaitUp(ctx); err != nil {
			return fmt.Errorf("soak: node %s: %w", n.id, err)
		}
	}
	return nil
}

// WaitRecovered waits until the nodes have recovered from at least k
// outages in all (a node's link going down, then up again).
func (s *Soak) WaitRecovered(ctx context.Context, k int) error {
	for {
		s.recMu.Lock()
		got, ch := s.outages, s.recChange
		s.recMu.Unlock()
		if got >= k {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("soak: %d of %d outages recovered: %w", got, k, ctx.Err())
		}
	}
}

// Run starts a soak, runs it until Config.Outages outages have been
// recovered, Config.Duration has passed or ctx is done, whichever comes
// first, then stops it and returns its Report. An ended ctx still yields
// a report (Interrupted), after a drain bounded by Config.DrainTimeout.
// The error is about running the soak; a soak that ran and saw losses
// returns a Report whose OK is false.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	s, err := Start(ctx, cfg)
	if err != nil {
		return nil, err
	}
	var timeout <-chan time.Time
	if s.cfg.Duration > 0 {
		t := time.NewTimer(s.cfg.Duration)
		defer t.Stop()
		timeout = t.C
	}
	interrupted := false
	select {
	case <-s.target:
	case <-timeout:
	case <-ctx.Done():
		interrupted = true
	}
	r, err := s.Stop(context.WithoutCancel(ctx))
	if r != nil {
		r.Interrupted = interrupted
	}
	return r, err
}

// Stop stops the faults and the streams, waits (for Config.DrainTimeout at
// most, or until ctx is done) until every message has been acknowledged
// and both sides have compared their counts, then shuts everything down
// and returns the report. Call it once.
func (s *Soak) Stop(ctx context.Context) (*Report, error) {
	elapsed := time.Since(s.start)
	s.faultStop()
	s.faultWG.Wait()
	close(s.stopWriters)
	dctx, cancel := context.WithTimeout(ctx, s.cfg.DrainTimeout)
	defer cancel()
	results := make([]nodeResult, len(s.nodes))
	var wg sync.WaitGroup
	for i, n := range s.nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = n.finish(dctx)
		}()
	}
	wg.Wait()
	r := s.report(elapsed, results)
	s.shutdown()
	return r, nil
}

// shutdown closes everything and waits for every goroutine.
func (s *Soak) shutdown() {
	s.stopOnce.Do(func() {
		s.faultStop()
		s.faultWG.Wait()
		s.runCancel()
		s.writers.Wait()
		for _, n := range s.nodes {
			n.cl.Close()
			if n.proxy != nil {
				n.proxy.Close()
			}
		}
		if s.srv != nil {
			s.srv.Close()
		}
		s.bg.Wait()
	})
}
