// Package server is the server role of the Tether link: it accepts nodes
// (legacy MicroPython nodes or Go clients), keeps one long-lived
// link.Link per node ID across any number of reconnections, and lets the
// application read and write each node's lines.
//
// A minimal server:
//
//	srv, _ := server.New(server.Config{Expected: []string{"1", "2"}})
//	go srv.ListenAndServe()
//	defer srv.Close()
//	node, _ := srv.Node(ctx, "1") // waits until node 1 has connected
//	node.Write(ctx, "hello")      // qos: delivered exactly once
//	line, _ := node.ReadLine(ctx)
//
// The server handles each connection's handshake on its own goroutine, so
// a slow or silent peer never holds up others; bad IDs, floods and
// duplicates are logged and counted (see Stats).
package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tether-iot/tether/internal/notify"
	"github.com/tether-iot/tether/internal/rarelog"
	"github.com/tether-iot/tether/link"
)

// Errors returned by the Server.
var (
	// ErrServerClosed is returned by Serve and the waiting calls after
	// Close or Shutdown.
	ErrServerClosed = errors.New("server: closed")
	// ErrUnknownNode: Lookup of an ID that has never connected.
	ErrUnknownNode = errors.New("server: unknown node")
)

// Server accepts nodes and keeps their links. Its methods are safe for
// concurrent use.
type Server struct {
	cfg    Config
	log    *slog.Logger
	expect map[string]bool
	slots  chan struct{} // handshake slots
	tlsCfg *tls.Config   // nil: plain TCP only (see Config.TLS)
	access atomic.Pointer[access]

	ctx    context.Context // cancelled by Close: ends every session
	cancel context.CancelFunc
	wg     sync.WaitGroup // accept loops and connection goroutines

	mu        sync.Mutex
	closed    bool
	stopping  bool // Shutdown: listeners closed, links draining
	listeners map[net.Listener]struct{}
	nodes     map[string]*link.Link
	ident     *identity // where each ID connects from (its own lock)
	making    int       // first connections making their links (linkFor)
	newNode   notify.Broadcast
	perIP     map[string]int        // handshakes under way by source address
	shaking   map[net.Conn]struct{} // connections in their handshake
	stats     Stats
}

// Stats counts what the server turned away, by reason.
type Stats struct {
	Accepted         uint64 // TCP connections accepted
	Handshakes       uint64 // IDs read and attached (or duplicates)
	HandshakeTimeout uint64 // no ID line within HandshakeTimeout
	HandshakeClosed  uint64 // closed or failed before the ID line
	BadID            uint64 // ID too long, not UTF-8, invisible or odd characters (spec.md, "Node IDs")
	UnknownID        uint64 // not Expected (rejected if Strict, else accepted)
	DuplicateID      uint64 // ID whose link was up: new socket closed
	PerIPLimit       uint64 // too many handshakes from one address
	NodeLimit        uint64 // MaxNodes reached
	Refused          uint64 // Config.Configure or Config.Admit failed

	// Access control (Config.TLS, Config.Access, Config.Admit).
	TLSHandshakes uint64 // TLS handshakes completed
	TLSFailed     uint64 // TLS handshakes failed, not for the certificate, or TLS while Config.TLS is nil
	CertInvalid   uint64 // client certificate expired, not yet valid or not signed by the CA
	CertRevoked   uint64 // certificate revoked (by serial), or a revoked ID claimed
	NoCert        uint64 // TLS claim without a client certificate
	CertMismatch  uint64 // client certificate for another ID than claimed
	PlainRefused  uint64 // plain-TCP claim of a TLS-only ID
	PinRefused    uint64 // claim from an address the ID is not pinned to
	Pending       uint64 // claims of IDs waiting for approval (Config.Admit)

	// Source addresses of node IDs (identity.go, Sighting).
	AddrMoved      uint64 // an ID connected from another address than its last socket's
	AddrBack       uint64 // an ID came back to an address it had left: it alternates
	AddrConcurrent uint64 // an ID claimed from another address while its link was up
}

// New returns a server; it fails only on an invalid Config.
func New(cfg Config) (*Server, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	s := &Server{
		cfg:       cfg,
		log:       cfg.Logger,
		expect:    make(map[string]bool, len(cfg.Expected)),
		slots:     make(chan struct{}, cfg.MaxHandshakes),
		listeners: make(map[net.Listener]struct{}),
		nodes:     make(map[string]*link.Link),
		perIP:     make(map[string]int),
		ident:     newIdentity(cfg.AddrMemory),
		shaking:   make(map[net.Conn]struct{}),
	}
	for _, id := range cfg.Expected {
		s.expect[id] = true
	}
	if err := s.SetAccess(cfg.Access); err != nil {
		return nil, err
	}
	if cfg.TLS != nil {
		s.tlsCfg = cfg.TLS.Clone()
		own := s.tlsCfg.VerifyConnection
		s.tlsCfg.VerifyConnection = func(cs tls.ConnectionState) error {
			if err := s.verifyConnection(cs); err != nil {
				return err
			}
			if own != nil {
				return own(cs)
			}
			return nil
		}
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	return s, nil
}

// ListenAndServe listens on Config.Addr and serves (see Serve).
func (s *Server) ListenAndServe() error {
	// The link's keepalives detect dead peers: no TCP keepalive needed.
	lc := net.ListenConfig{KeepAlive: -1}
	ln, err := lc.Listen(s.ctx, "tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("server: listen on %s: %w", s.cfg.Addr, err)
	}
	return s.Serve(ln)
}

// Serve accepts connections on ln, each handled on a goroutine of its
// own, and closes ln when it returns. It returns ErrServerClosed after
// Shutdown or Close; if ln fails first (its owner closed it), it returns
// ln's error, and the server, its links and its other listeners go on.
// Serve may be called with several listeners, each on its own goroutine.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.closed || s.stopping {
		s.mu.Unlock()
		ln.Close()
		return ErrServerClosed
	}
	s.listeners[ln] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, ln)
		s.mu.Unlock()
		ln.Close()
		s.wg.Done()
	}()
	s.log.Info("serving", "addr", ln.Addr().String(), "timeout", s.cfg.Timeout)
	return s.acceptLoop(ln)
}

func (s *Server) acceptLoop(ln net.Listener) error {
	var backoff time.Duration
	for {
		select {
		case s.slots <- struct{}{}:
		case <-s.ctx.Done():
			return ErrServerClosed
		}
		conn, err := ln.Accept()
		if err != nil {
			<-s.slots
			s.mu.Lock()
			stopping := s.stopping || s.closed
			s.mu.Unlock()
			if stopping {
				return ErrServerClosed
			}
			if errors.Is(err, net.ErrClosed) {
				s.log.Warn("listener closed: no longer serving on it", "addr", ln.Addr().String())
				return fmt.Errorf("server: accept on %s: %w", ln.Addr(), err)
			}
			// Out of file descriptors and the like: back off, as
			// net/http does, rather than spin.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			s.log.Error("accept failed", "err", err, "retry_in", backoff)
			t := time.NewTimer(backoff)
			select {
			case <-t.C:
			case <-s.ctx.Done():
				t.Stop()
				return ErrServerClosed
			}
			continue
		}
		backoff = 0
		ip := hostOf(conn.RemoteAddr())
		s.mu.Lock()
		s.stats.Accepted++
		if s.cfg.MaxHandshakesPerIP > 0 && s.perIP[ip] >= s.cfg.MaxHandshakesPerIP {
			s.stats.PerIPLimit++
			n := s.stats.PerIPLimit
			s.mu.Unlock()
			<-s.slots
			conn.Close()
			rarelog.Warn(s.log, n, "too many handshakes from one address: connection closed", "remote", ip, "limit", s.cfg.MaxHandshakesPerIP)
			continue
		}
		s.perIP[ip]++
		s.shaking[conn] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go s.handle(conn, ip)
	}
}

func hostOf(a net.Addr) string {
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.IP.String()
	}
	host, _, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	return host
}

// Close closes the listeners and every link, and waits for the server's
// goroutines. Blocked calls return ErrServerClosed or link.ErrClosed.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		s.wg.Wait()
		return nil
	}
	s.closed = true
	for ln := range s.listeners {
		ln.Close()
	}
	for c := range s.shaking {
		c.Close()
	}
	links := make([]*link.Link, 0, len(s.nodes))
	for _, l := range s.nodes {
		links = append(links, l)
	}
	s.newNode.Notify()
	s.mu.Unlock()
	closeLinks(links) // before the cancel, so that Down events say "link closed"
	s.cancel()
	s.wg.Wait()
	return nil
}

// closeParallel bounds the links Close closes at once.
const closeParallel = 256

// closeLinks closes links, many at a time, and waits for them all. One
// after the other, each Close waits for its read loop to wake and end
// before the next socket is closed: at 10,000 nodes the last node then
// saw its outage 1.7 s after the first (the whole fleet reconnects
// spread over as long), against 0.3 s for closing the sockets alone.
func closeLinks(links []*link.Link) {
	var wg sync.WaitGroup
	sem := make(chan struct{}, closeParallel)
	for _, l := range links {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			l.Close()
			<-sem
		}()
	}
	wg.Wait()
}

// Shutdown stops accepting connections, waits until every node's queued
// messages have been sent and acknowledged or ctx is done, then closes
// everything (see Close). It returns ctx's error if ctx ended first.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.stopping = true
	for ln := range s.listeners {
		ln.Close()
	}
	links := make([]*link.Link, 0, len(s.nodes))
	for _, l := range s.nodes {
		links = append(links, l)
	}
	s.mu.Unlock()
	var err error
	for _, l := range links {
		if e := l.Drain(ctx); e != nil && ctx.Err() != nil {
			err = fmt.Errorf("server: shutdown: %w", ctx.Err())
			break
		}
	}
	s.Close()
	return err
}

// Node returns the link of node id, waiting until the node has connected
// at least once (the legacy client_conn). The link lives as long as the
// server, across the node's outages.
func (s *Server) Node(ctx context.Context, id string) (*link.Link, error) {
	s.mu.Lock()
	for {
		if l := s.nodes[id]; l != nil {
			s.mu.Unlock()
			return l, nil
		}
		if s.closed {
			s.mu.Unlock()
			return nil, ErrServerClosed
		}
		ch := s.newNode.Wait()
		s.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, fmt.Errorf("server: wait for node %q: %w", id, ctx.Err())
		}
		s.mu.Lock()
	}
}

// Lookup returns the link of node id, or ErrUnknownNode if that ID has
// never connected.
func (s *Server) Lookup(id string) (*link.Link, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if l := s.nodes[id]; l != nil {
		return l, nil
	}
	return nil, fmt.Errorf("%w: %q", ErrUnknownNode, id)
}

// Wait blocks until every node in ids has connected at least once.
func (s *Server) Wait(ctx context.Context, ids ...string) error {
	for _, id := range ids {
		if _, err := s.Node(ctx, id); err != nil {
			return err
		}
	}
	return nil
}

// WaitAll blocks until every expected node has connected at least once
// (the legacy wait_all).
func (s *Server) WaitAll(ctx context.Context) error {
	return s.Wait(ctx, s.cfg.Expected...)
}

// Nodes returns the IDs of every node that has connected, sorted.
func (s *Server) Nodes() []string {
	s.mu.Lock()
	ids := make([]string, 0, len(s.nodes))
	for id := range s.nodes {
		ids = append(ids, id)
	}
	s.mu.Unlock()
	slices.Sort(ids)
	return ids
}

// Links returns the link of every node that has connected, sorted by ID.
func (s *Server) Links() []*link.Link {
	s.mu.Lock()
	ls := make([]*link.Link, 0, len(s.nodes))
	for _, l := range s.nodes {
		ls = append(ls, l)
	}
	s.mu.Unlock()
	slices.SortFunc(ls, func(a, b *link.Link) int {
		if a.ID() < b.ID() {
			return -1
		}
		if a.ID() > b.ID() {
			return 1
		}
		return 0
	})
	return ls
}

// Stats returns the server's counters.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}

// Timeout returns the server's T.
func (s *Server) Timeout() time.Duration { return s.cfg.Timeout }
