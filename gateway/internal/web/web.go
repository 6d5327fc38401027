package web

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tether-iot/tether/gateway/internal/metrics"
	"github.com/tether-iot/tether/link"
	"github.com/tether-iot/tether/server"
)

// ErrServerClosed is returned by Serve and ListenAndServe after Close.
var ErrServerClosed = http.ErrServerClosed

// Server serves the status page, the JSON API, the event stream and the
// metrics of one Tether server. Its methods are safe for concurrent use.
// New starts its event goroutine: call Close when done.
type Server struct {
	cfg     Config
	log     *slog.Logger
	srv     atomic.Pointer[server.Server]
	metrics *metrics.Collector
	access  *access
	hub     *hub
	handler http.Handler

	done      chan struct{} // closed by Close
	closeOnce sync.Once
	wg        sync.WaitGroup // the hub and every Serve call

	mu     sync.Mutex
	closed bool
}

// New returns a Server and starts its event goroutine. It fails only on
// an invalid Config (a negative field).
func New(cfg Config) (*Server, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	s := &Server{
		cfg:     cfg,
		log:     cfg.Logger,
		metrics: cfg.Metrics,
		done:    make(chan struct{}),
	}
	if s.metrics == nil {
		mc := metrics.Config{Server: cfg.Server, Offline: cfg.Offline}
		if q := cfg.Queue; q != nil {
			mc.Stored = func(id string) int { return q(id).Stored }
			mc.Spooled = func(id string) int { return q(id).Spooled }
			mc.Dropped = func(id string) uint64 { return q(id).Dropped }
		}
		s.metrics = metrics.New(mc)
	}
	s.srv.Store(cfg.Server)
	s.access = newAccess(cfg)
	if err := s.metrics.Registry().Register(s.access.refused); err != nil {
		return nil, fmt.Errorf("web: %w", err)
	}
	s.hub = newHub(s)
	s.handler = s.routes()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.hub.run(s.done)
	}()
	return s, nil
}

// SetServer sets the Tether server to show (see Config.Server), and the
// server of the metrics collector.
func (s *Server) SetServer(srv *server.Server) {
	s.srv.Store(srv)
	s.metrics.SetServer(srv)
}

// Metrics returns the collector behind /metrics: the gateway may register
// its own metrics in its Registry.
func (s *Server) Metrics() *metrics.Collector { return s.metrics }

// Event tells the page about a node's event: browsers get the node's row
// within milliseconds. It never blocks; call it from
// server.Config.OnEvent (Hook does).
func (s *Server) Event(ev link.Event) { s.hub.event(ev) }

// Configure is a server.Config.Configure hook that feeds the metrics'
// ACK round-trip histogram (see metrics.Collector.Configure).
func (s *Server) Configure(id string, lc *link.Config) error { return s.metrics.Configure(id, lc) }

// Hook wires the page into cfg before server.New: cfg.OnEvent also calls
// Event, and cfg.Configure also calls Configure. Hooks already in cfg are
// kept and called first.
func (s *Server) Hook(cfg *server.Config) {
	onEvent, configure := cfg.OnEvent, cfg.Configure
	cfg.OnEvent = func(ev link.Event) {
		if onEvent != nil {
			onEvent(ev)
		}
		s.Event(ev)
	}
	cfg.Configure = func(id string, lc *link.Config) error {
		if configure != nil {
			if err := configure(id, lc); err != nil {
				return err
			}
		}
		return s.Configure(id, lc)
	}
}

// Status returns what the first page of the table shows now (see
// Query).
func (s *Server) Status() Status { return s.status(Query{Limit: DefaultPageSize}) }

// Handler returns the page's routes (see the package doc), to be served
// by Serve or mounted in another mux (under a prefix with
// http.StripPrefix: the page uses relative URLs).
func (s *Server) Handler() http.Handler { return s.handler }

// ListenAndServe listens on Config.Addr and serves (see Serve).
func (s *Server) ListenAndServe(ctx context.Context) error {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("web: %w", err)
	}
	return s.Serve(ctx, ln)
}

// CheckListener returns ErrNoCredentials (wrapped, with what to do) if
// Serve would refuse a listener on addr: one beyond loopback while the
// Config has neither Token nor Users nor Insecure.
func (s *Server) CheckListener(addr net.Addr) error { return s.access.checkListener(addr) }

// Serve serves Handler on ln until ctx is done (it returns ctx's error),
// Close is called (ErrServerClosed) or ln fails; it closes ln. Event
// streams are ended and other requests get up to 5 s to finish. Serve
// may be called with several listeners. It refuses (ErrNoCredentials) a
// listener beyond loopback without credentials unless Config.Insecure,
// and then logs a warning.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	if err := s.CheckListener(ln.Addr()); err != nil {
		ln.Close()
		return err
	}
	if !isLoopback(ln.Addr()) && !s.access.credentials() {
		s.log.Warn("status page open to anyone who can reach it: no credentials (web.insecure): node IDs, addresses and counters are public",
			"addr", ln.Addr().String())
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		ln.Close()
		return ErrServerClosed
	}
	s.wg.Add(1)
	s.mu.Unlock()
	defer s.wg.Done()

	base, cancel := context.WithCancel(context.Background())
	defer cancel()
	hs := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		BaseContext:       func(net.Listener) context.Context { return base },
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	s.log.Info("status page", "url", "http://"+ln.Addr().String()+"/")
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()

	var ret error
	select {
	case err := <-errc:
		return fmt.Errorf("web: %w", err)
	case <-ctx.Done():
		ret = ctx.Err()
	case <-s.done:
		ret = ErrServerClosed
	}
	cancel() // ends the event streams, whose requests derive from base
	sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer scancel()
	if err := hs.Shutdown(sctx); err != nil {
		hs.Close()
	}
	<-errc
	return ret
}

// Close stops every Serve call and the event goroutine, and waits for
// them. It is idempotent and returns nil.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closed = true
		s.mu.Unlock()
		close(s.done)
	})
	s.wg.Wait()
	return nil
}
