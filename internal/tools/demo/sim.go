package demo

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/tether-iot/tether/client"
	"github.com/tether-iot/tether/internal/harness/faultnet"
	"github.com/tether-iot/tether/link"
	"github.com/tether-iot/tether/server"
)

// SimConfig configures a Sim.
type SimConfig struct {
	// IDs are the nodes' IDs.
	IDs []string
	// Timeout is T, on the server and the nodes. Zero means 1 s.
	Timeout time.Duration
	// ReconnectDelay is the nodes' pause after an outage; zero means 2T.
	ReconnectDelay time.Duration
	// Out narrates the nodes' ups and downs; nil says nothing.
	Out *Printer
	// Logger receives the server's, the nodes' and the proxies' logs.
	Logger *slog.Logger
}

// Sim is a demo in one process: a server on loopback and one client per
// node, each connected through its own fault proxy.
type Sim struct {
	Server  *server.Server
	Nodes   map[string]*client.Client
	Proxies map[string]*faultnet.Proxy
	T       time.Duration

	cfg     SimConfig
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	mu      sync.Mutex
	downAt  map[string]time.Time
	outages int // node outages recovered
	up      map[string]bool
	closing bool // no more narration
}

// StartSim starts the server and the nodes; each node has sent its ID
// when it returns.
func StartSim(ctx context.Context, cfg SimConfig) (_ *Sim, err error) {
	if cfg.Timeout <= 0 {
		cfg.Timeout = time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	s := &Sim{
		Nodes:   make(map[string]*client.Client),
		Proxies: make(map[string]*faultnet.Proxy),
		T:       cfg.Timeout,
		cfg:     cfg,
		downAt:  make(map[string]time.Time),
		up:      make(map[string]bool),
	}
	sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s.cancel = cancel
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	s.Server, err = server.New(server.Config{Timeout: cfg.Timeout, Expected: cfg.IDs, Logger: cfg.Logger, OnEvent: s.serverEvent})
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("demo: listen on loopback: %w", err)
	}
	s.wg.Add(1)
	go func() { defer s.wg.Done(); s.Server.Serve(ln) }()
	for _, id := range cfg.IDs {
		p, err := faultnet.Start(sctx, faultnet.Config{Target: ln.Addr().String(), Logger: cfg.Logger})
		if err != nil {
			return nil, fmt.Errorf("demo: fault proxy: %w", err)
		}
		s.Proxies[id] = p
		c, err := client.Dial(ctx, client.Config{
			ID:             id,
			Server:         p.Addr(),
			Timeout:        cfg.Timeout,
			ReconnectDelay: cfg.ReconnectDelay,
			Logger:         cfg.Logger,
			OnEvent:        s.nodeEvent,
		})
		if err != nil {
			return nil, fmt.Errorf("demo: node %s: %w", id, err)
		}
		s.Nodes[id] = c
	}
	return s, nil
}

func (s *Sim) say(who, format string, args ...any) {
	if s.cfg.Out != nil && !s.closing {
		s.cfg.Out.Say(who, format, args...)
	}
}

func (s *Sim) nodeEvent(ev link.Event) {
	who := "node " + ev.ID
	s.mu.Lock()
	defer s.mu.Unlock()
	switch ev.Kind {
	case link.Down:
		s.up[ev.ID] = false
		s.downAt[ev.ID] = ev.Time
		s.say(who, "link DOWN: %v; reconnecting after %v", ev.Err, s.reconnectDelay())
	case link.Up:
		s.up[ev.ID] = true
		if at, ok := s.downAt[ev.ID]; ok {
			delete(s.downAt, ev.ID)
			s.outages++
			s.say(who, "link UP again after %v (reconnects so far: %d)", ev.Time.Sub(at).Round(time.Millisecond), ev.Connects-1)
		} else {
			s.say(who, "link up")
		}
	}
}

func (s *Sim) reconnectDelay() time.Duration {
	if s.cfg.ReconnectDelay > 0 {
		return s.cfg.ReconnectDelay
	}
	return 2 * s.cfg.Timeout
}

func (s *Sim) serverEvent(ev link.Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch ev.Kind {
	case link.Down:
		s.say("server", "node %s's link down: %v", ev.ID, ev.Err)
	case link.PeerRestart:
		s.say("server", "node %s restarted (its message ids began again at 00)", ev.ID)
	}
}

// Outages returns how many node outages have been recovered.
func (s *Sim) Outages() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.outages
}

// Up returns how many nodes are up.
func (s *Sim) Up() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, up := range s.up {
		if up {
			n++
		}
	}
	return n
}

// Close stops the nodes, the proxies and the server.
func (s *Sim) Close() {
	s.mu.Lock()
	s.closing = true
	s.mu.Unlock()
	for _, c := range s.Nodes {
		c.Close()
	}
	for _, p := range s.Proxies {
		p.Close()
	}
	if s.Server != nil {
		s.Server.Close()
	}
	s.cancel()
	s.wg.Wait()
}
