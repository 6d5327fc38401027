// Package gateway makes a Tether server a gateway that needs no code: it
// bridges every node to MQTT (an embedded mochi-mqtt broker or an
// external one), keeps a durable per-node queue of the messages for the
// nodes and each node's sequence state in a bbolt store, forwards
// messages between nodes by routes, and announces nodes to Home
// Assistant. tether serve runs one; docs/GATEWAY.md describes the topics,
// the guarantees and the config file.
//
//	g, err := gateway.New(cfg)     // cfg from LoadConfig, or built in code
//	err = g.Start(ctx)             // listen for nodes, connect the broker
//	err = g.Send(ctx, "7", "on")   // queued durably, delivered exactly once
//	err = g.Shutdown(ctx)
//
// Delivery. Node to MQTT: a message is acknowledged to the node only once
// the broker has accepted it (QoS 1) on the node's up topic and on every
// route's topic, and the node's receive window has been stored with it;
// or, while the broker does not take it, once it is in the node's up
// spool in the store with the window, to be published in order later.
// MQTT to node: a message is acknowledged to the broker only once it is
// in the node's queue on disk; each node's queue is written by its own
// goroutine with qos, so an offline node holds up no other. See
// docs/GATEWAY.md for what each direction guarantees across crashes.
package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/tether-iot/tether/gateway/internal/bus"
	"github.com/tether-iot/tether/gateway/internal/store"
	"github.com/tether-iot/tether/gateway/internal/web"
	"github.com/tether-iot/tether/server"
)

// ErrStoreLocked is returned (wrapped) by New when another gateway has
// the data directory open.
var ErrStoreLocked = errors.New("gateway: the data directory is in use by another process")

// ErrClosed is returned by Send after Shutdown or Close.
var ErrClosed = errors.New("gateway: closed")

// ListenError is a listener that could not be opened: What is "nodes",
// "mqtt" or "web".
type ListenError struct {
	What string
	Addr string
	Err  error
}

// Error says what could not listen where, and why.
func (e *ListenError) Error() string {
	return fmt.Sprintf("gateway: listen for %s on %s: %v", e.What, e.Addr, e.Err)
}

// Unwrap returns the listener's error (such as "address already in use").
func (e *ListenError) Unwrap() error { return e.Err }

// Gateway is a Tether server bridged to MQTT. Its methods are safe for
// concurrent use.
type Gateway struct {
	cfg    Config
	log    *slog.Logger
	topics Topics
	st     *store.Store
	srv    *server.Server
	bus    bus.Bus // nil without MQTT
	emb    *bus.Embedded
	web    *web.Server // nil if disabled
	webLn  net.Listener
	expect map[string]bool
	routes map[string][]Route // by From

	ctx    context.Context // cancelled by Shutdown and Close
	cancel context.CancelFunc
	// busSet is closed once g.bus is set (or will never be): the broker
	// may hand over messages, and so start node goroutines, before.
	busSet chan struct{}
	// republishReq asks the republisher for the nodes' retained states
	// again (see republishSoon).
	republishReq chan struct{}
	busSetOne    sync.Once
	wg           sync.WaitGroup
	ln           net.Listener

	stats stats
	ha    haState      // ha.go, discovery.go
	acc   accessState  // access.go
	admin *http.Server // admin.go

	mu        sync.Mutex
	started   bool
	closed    bool
	nodes     map[string]*nodeState
	strangers int // nodes whose state is a stranger's (see strangers.go)
	// admitMu serializes the messages from MQTT for new strangers.
	admitMu sync.Mutex
}

// New checks cfg and opens the store; Start starts serving.
func New(cfg Config) (*Gateway, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("gateway: config: %w", err)
	}
	open := store.Open
	if cfg.FreshStore {
		open = store.OpenFresh
	}
	st, err := open(cfg.Data, time.Second)
	if errors.Is(err, store.ErrLocked) {
		return nil, fmt.Errorf("%w: %s", ErrStoreLocked, cfg.Data)
	}
	if err != nil {
		return nil, err
	}
	g := &Gateway{
		cfg:    cfg,
		log:    cfg.Logger,
		topics: Topics{Prefix: cfg.MQTT.Prefix},
		st:     st,
		expect: make(map[string]bool),
		routes: make(map[string][]Route),
		nodes:  make(map[string]*nodeState),
	}
	for _, id := range cfg.Nodes.Expect {
		g.expect[id] = true
	}
	for _, r := range cfg.Routes {
		g.routes[r.From] = append(g.routes[r.From], r)
	}
	scfg := server.Config{
		Addr:      cfg.Listen,
		Timeout:   time.Duration(cfg.Timeout),
		Expected:  cfg.Nodes.Expect,
		Strict:    cfg.Nodes.Strict,
		MaxNodes:  cfg.maxNodes(),
		MaxLine:   cfg.MaxLine,
		Logger:    cfg.Logger,
		OnEvent:   g.onEvent,
		Configure: g.configure,
	}
	if err := g.setupAccess(&scfg); err != nil {
		st.Close()
		return nil, fmt.Errorf("gateway: %w", err)
	}
	if cfg.Web.On() {
		if err := g.newWeb(&scfg); err != nil {
			st.Close()
			return nil, fmt.Errorf("gateway: %w", err)
		}
	}
	g.srv, err = server.New(scfg)
	if err != nil {
		if g.web != nil {
			g.web.Close()
		}
		st.Close()
		return nil, fmt.Errorf("gateway: %w", err)
	}
	if g.web != nil {
		g.web.SetServer(g.srv)
	}
	g.ctx, g.cancel = context.WithCancel(context.Background())
	g.busSet = make(chan struct{})
	g.republishReq = make(chan struct{}, 1)
	return g, nil
}

// Config returns the gateway's config, defaults filled in.
func (g *Gateway) Config() Config { return g.cfg }

// Server returns the gateway's Tether server: its nodes' links, stats.
func (g *Gateway) Server() *server.Server { return g.srv }

// Topics returns the MQTT topic layout.
func (g *Gateway) Topics() Topics { return g.topics }

// Addr returns the address nodes connect to, once started.
func (g *Gateway) Addr() net.Addr {
	if g.ln == nil {
		return nil
	}
	return g.ln.Addr()
}

// MQTTAddr returns the embedded broker's address, or nil.
func (g *Gateway) MQTTAddr() net.Addr {
	if g.emb == nil {
		return nil
	}
	return g.emb.Addr()
}

// WebAddr returns the status page's address, or nil if it is off.
func (g *Gateway) WebAddr() net.Addr {
	if g.webLn == nil {
		return nil
	}
	return g.webLn.Addr()
}

// webTopics are node id's topics, for the status page.
func (g *Gateway) webTopics(id string) *web.Topics {
	if g.bus == nil {
		return nil
	}
	return &web.Topics{Up: g.topics.Up(id), Down: g.topics.Down(id), State: g.topics.State(id)}
}

// webLast is node id's last message, for the status page.
func (g *Gateway) webLast(id string) (web.Message, bool) {
	n := g.lookupNode(id)
	if n == nil {
		return web.Message{}, false
	}
	n.lastMu.Lock()
	defer n.lastMu.Unlock()
	return n.last, !n.last.Time.IsZero()
}

// Owns reports whether this gateway serves node id: every node if no
// node is expected, else the expected ones and any other that connected
// to it.
func (g *Gateway) Owns(id string) bool {
	if len(g.expect) == 0 || g.expect[id] {
		return true
	}
	_, err := g.srv.Lookup(id)
	return err == nil
}

// Start listens for nodes, starts or connects the broker, and resumes
// the queues kept in the store. ctx bounds the start only; the gateway
// runs until Shutdown or Close. On error, call Close.
//
// With an external broker Start makes one connection attempt (bounded
// by 10 s and ctx). If it fails for a reason that may pass (connection
// refused, unreachable, timeout, DNS), Start logs a warning and succeeds
// all the same: the nodes are served, their messages spooled, and the
// broker is connected in the background (see MQTTStatus), unless
// Config.MQTT.RequireFirstConnection is set. An error that retrying
// cannot cure (credentials, certificates) fails Start, with a hint of
// what to check.
func (g *Gateway) Start(ctx context.Context) error {
	g.mu.Lock()
	if g.started || g.closed {
		g.mu.Unlock()
		return errors.New("gateway: Start called twice or after Close")
	}
	g.started = true
	g.mu.Unlock()

	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", g.cfg.Listen)
	if err != nil {
		return &ListenError{What: "nodes", Addr: g.cfg.Listen, Err: unwrapOp(err)}
	}
	g.ln = ln
	if g.web != nil {
		wl, err := lc.Listen(ctx, "tcp", g.cfg.Web.Addr)
		if err != nil {
			ln.Close()
			return &ListenError{What: "web", Addr: g.cfg.Web.Addr, Err: unwrapOp(err)}
		}
		g.webLn = wl
		if err := g.web.CheckListener(wl.Addr()); err != nil {
			ln.Close()
			wl.Close()
			g.webLn = nil
			return fmt.Errorf("gateway: %w", err)
		}
	}
	err = g.startBus(ctx)
	g.busSetOne.Do(func() { close(g.busSet) })
	if err != nil {
		ln.Close()
		if g.webLn != nil {
			g.webLn.Close()
		}
		return err
	}
	if g.webLn != nil {
		g.wg.Add(1)
		go func() {
			defer g.wg.Done()
			err := g.web.Serve(context.Background(), g.webLn)
			if err != nil && !errors.Is(err, web.ErrServerClosed) {
				g.log.Error("status page failed", "err", err)
			}
		}()
	}
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		err := g.srv.Serve(ln) // until Shutdown or Close
		if err != nil && !errors.Is(err, server.ErrServerClosed) {
			g.log.Error("serving nodes failed", "err", err)
		}
	}()
	known, err := g.st.Nodes()
	if err != nil {
		return err
	}
	for _, id := range slices.Concat(g.cfg.Nodes.Expect, known) {
		if g.st.Len(id) > 0 || g.expect[id] {
			g.node(id)
		}
	}
	g.startSpools()
	g.startHA() // ha.go
	g.wg.Add(1)
	go g.unpublishForgotten() // forget.go
	g.startAdmin()
	if g.bus != nil && (g.bus.Reconnects() || g.cfg.Discovery.Enabled) { // Home Assistant's restarts too
		g.wg.Add(1)
		go g.republisher()
	}
	g.log.Info("gateway started", "name", g.cfg.Name, "nodes", ln.Addr().String(), "store", g.st.Path(),
		"mqtt", g.brokerName(), "expected", len(g.cfg.Nodes.Expect), "routes", len(g.cfg.Routes))
	return nil
}

func unwrapOp(err error) error {
	var op *net.OpError
	if errors.As(err, &op) {
		var se *os.SyscallError
		if errors.As(op.Err, &se) {
			return se.Err
		}
		return op.Err
	}
	return err
}

// Shutdown stops the writers and the server (server.Shutdown: it stops
// accepting nodes and waits until the messages handed to the nodes' links
// have been acknowledged or ctx ends), publishes the gateway's offline
// state (if the broker is connected) and closes everything. Messages
// still in the queues stay in the store for the next start. It returns
// an error wrapping ctx's if ctx ended first.
func (g *Gateway) Shutdown(ctx context.Context) error {
	if !g.closing() {
		return nil
	}
	g.cancel()
	err := g.srv.Shutdown(ctx)
	if err != nil {
		err = fmt.Errorf("gateway: %w", err)
	}
	g.finish(true)
	return err
}

// Close closes the gateway at once, without waiting for the nodes'
// acknowledgements (what was not acknowledged stays in the store, and
// is delivered exactly once after the next start). It always returns
// nil.
func (g *Gateway) Close() error {
	if !g.closing() {
		return nil
	}
	g.cancel()
	g.srv.Close()
	g.finish(false)
	return nil
}

func (g *Gateway) closing() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return false
	}
	g.closed = true
	return true
}

func (g *Gateway) finish(clean bool) {
	g.busSetOne.Do(func() { close(g.busSet) })
	g.srv.Close()
	if g.ln != nil {
		g.ln.Close()
	}
	if g.web != nil {
		g.web.Close()
	}
	g.closeAdmin()
	g.wg.Wait()
	if g.bus != nil {
		// Not connected, the gateway has nothing to say: the broker
		// publishes the will when it sees the connection gone, and it
		// may never have been connected.
		if clean && g.bus.Status().Connected {
			ctx, cancel := context.WithTimeout(context.Background(), g.srv.Timeout())
			if err := g.publish(ctx, pubGateway, g.topics.Gateway(g.cfg.Name), []byte("offline"), true); err != nil {
				g.log.Warn("MQTT: could not publish the gateway's offline state", "err", err)
			}
			cancel()
		}
		g.bus.Close()
	}
	g.st.Close()
	g.log.Info("gateway stopped", "name", g.cfg.Name)
}
