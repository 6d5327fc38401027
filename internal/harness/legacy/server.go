package legacy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/tether-iot/tether/internal/notify"
)

// ServerConfig configures a legacy server. Zero values mean the defaults.
type ServerConfig struct {
	// Addr is the loopback host:port to listen on. Empty means
	// "127.0.0.1:0"; an empty host means 127.0.0.1. Other hosts than
	// loopback ones are refused. Ignored when Listener is set.
	Addr string
	// Listener, if set, is used instead of listening on Addr. The server
	// takes ownership and closes it.
	Listener net.Listener
	// Timeout is T, which must match the nodes'. Zero means 2 s; it must
	// otherwise be at least 10 ms. The server sends a keepalive every T/4
	// whatever else it sends, declares an outage after T of silence, and
	// repeats a qos message when its ACK has not come within T.
	Timeout time.Duration
	// Expected lists the node IDs the application expects. Other IDs are
	// accepted with a warning, as in the legacy server.
	Expected []string
	// Logger receives the legacy messages (warnings, and the verbose ones
	// at debug level). Nil discards them.
	Logger *slog.Logger
}

// Server models the legacy Python server (iot/server.py): one accept loop
// that reads each new node's ID itself, and a ServerConn per node ID that
// lives for ever and takes over each new socket of that ID. Its methods are
// safe for concurrent use.
type Server struct {
	tm  timing
	log *slog.Logger
	ln  net.Listener

	ctx    context.Context // ends on Close, a crash, or StartServer's ctx
	cancel context.CancelCauseFunc
	wg     sync.WaitGroup

	mu       sync.Mutex
	sig      signal
	conns    map[string]*ServerConn
	expected map[string]bool
	pending  net.Conn // socket whose ID the accept loop is reading
}

// StartServer listens and starts the accept loop. The server runs until
// Close, a crash (see Err), or until ctx ends (then Close must still be
// called to wait for its goroutines).
func StartServer(ctx context.Context, cfg ServerConfig) (*Server, error) {
	tm, err := newTiming(cfg.Timeout)
	if err != nil {
		return nil, err
	}
	ln := cfg.Listener
	if ln == nil {
		addr, err := loopbackAddr(cfg.Addr)
		if err != nil {
			return nil, err
		}
		var lc net.ListenConfig
		if ln, err = lc.Listen(ctx, "tcp", addr); err != nil {
			return nil, fmt.Errorf("legacy: listen: %w", err)
		}
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{
		tm:       tm,
		log:      log,
		ln:       ln,
		sig:      newSignal(),
		conns:    make(map[string]*ServerConn),
		expected: make(map[string]bool),
	}
	for _, id := range cfg.Expected {
		s.expected[id] = true
	}
	s.ctx, s.cancel = context.WithCancelCause(ctx)
	s.wg.Add(2)
	go s.acceptLoop()
	go s.watch()
	return s, nil
}

func loopbackAddr(addr string) (string, error) {
	if addr == "" {
		return "127.0.0.1:0", nil
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("legacy: ServerConfig.Addr: %w", err)
	}
	switch ip := net.ParseIP(host); {
	case host == "":
		host = "127.0.0.1"
	case host == "localhost", ip != nil && ip.IsLoopback():
	default:
		return "", fmt.Errorf("legacy: ServerConfig.Addr %q is not loopback", addr)
	}
	return net.JoinHostPort(host, port), nil
}

// Addr returns the address the server listens on.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Err returns the cause that stopped the server (net.ErrClosed after Close,
// or a crash such as ErrInvalidUTF8), or nil while it runs.
func (s *Server) Err() error {
	if s.ctx.Err() == nil {
		return nil
	}
	return context.Cause(s.ctx)
}

// Done is closed when the server stops: after Close, a crash, or when
// StartServer's ctx ends. Err then says why.
func (s *Server) Done() <-chan struct{} { return s.ctx.Done() }

// Close stops the server as the legacy close_all does, closing every
// socket, and waits for its goroutines. It is idempotent.
func (s *Server) Close() error {
	s.cancel(net.ErrClosed)
	s.wg.Wait()
	return nil
}

// Conn is the legacy client_conn: it waits until the node id has connected
// once and its link is up, and returns its connection object, which stays
// valid across outages.
func (s *Server) Conn(ctx context.Context, id string) (*ServerConn, error) {
	s.mu.Lock()
	err := await(ctx, s.ctx, &s.mu, &s.sig, func() bool { return s.conns[id] != nil })
	c := s.conns[id]
	s.mu.Unlock()
	if err == nil {
		err = c.WaitStatus(ctx, true)
	}
	if err != nil {
		return nil, fmt.Errorf("legacy: server conn %q: %w", id, err)
	}
	return c, nil
}

// watch closes everything once the server's context ends.
func (s *Server) watch() {
	defer s.wg.Done()
	<-s.ctx.Done()
	s.ln.Close()
	s.mu.Lock()
	if s.pending != nil {
		s.pending.Close()
	}
	conns := make([]*ServerConn, 0, len(s.conns))
	for _, c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		c.shutdown()
	}
}

// acceptLoop is the legacy run(): accept, read the ID inside the loop (for
// up to T), hand the socket over, pause T/10, and again.
func (s *Server) acceptLoop() {
	defer s.wg.Done()
	for {
		sock, err := s.ln.Accept()
		if err != nil {
			if s.ctx.Err() == nil {
				s.log.Error("legacy server crashed: accept", "err", err)
				s.cancel(fmt.Errorf("legacy: server crashed: %w", err))
			}
			return
		}
		if !s.admit(sock) {
			return
		}
		if !notify.Sleep(s.ctx, s.tm.acceptPause) {
			return
		}
	}
}

// admit reads the ID and calls go. It reports false when the server
// stopped.
func (s *Server) admit(sock net.Conn) bool {
	s.mu.Lock()
	if s.ctx.Err() != nil {
		s.mu.Unlock()
		sock.Close()
		return false
	}
	s.pending = sock
	s.mu.Unlock()
	data, err := s.readID(sock)
	s.mu.Lock()
	s.pending = nil
	s.mu.Unlock()
	switch {
	case errors.Is(err, ErrInvalidUTF8):
		sock.Close()
		s.log.Error("legacy server crashed", "err", err)
		s.cancel(fmt.Errorf("legacy: server crashed: %w", err))
		return false
	case err != nil:
		sock.Close()
		return s.ctx.Err() == nil
	}
	s.handOver(sock, data)
	return true
}

// readID is _readid: read until a LF arrives, within T of the start. Each
// read is decoded on its own, so a read that is not UTF-8 crashes the
// server.
func (s *Server) readID(sock net.Conn) ([]byte, error) {
	sock.SetReadDeadline(time.Now().Add(s.tm.t))
	var data []byte
	buf := make([]byte, 4096)
	for {
		n, err := sock.Read(buf)
		if n > 0 {
			if !utf8.Valid(buf[:n]) {
				return nil, fmt.Errorf("reading the ID: %w", ErrInvalidUTF8)
			}
			data = append(data, buf[:n]...)
			if bytes.IndexByte(data, '\n') >= 0 {
				sock.SetReadDeadline(time.Time{})
				return data, nil
			}
		}
		if err != nil {
			return nil, err
		}
	}
}

// handOver is Connection.go: a new ID gets a connection object, a known
// one that is up makes this a duplicate, a known one that is down takes
// the socket (and the bytes read after the ID are lost).
func (s *Server) handOver(sock net.Conn, data []byte) {
	id, initStr, _ := bytes.Cut(data, []byte("\n"))
	s.log.Debug("got connection from client", "id", string(id))
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ctx.Err() != nil {
		sock.Close()
		return
	}
	if c := s.conns[string(id)]; c != nil {
		if c.Up() {
			s.log.Warn(fmt.Sprintf("Duplicate client %s ignored.", id))
			sock.Close()
			return
		}
		c.reconnect(sock)
		return
	}
	if s.expected[string(id)] {
		delete(s.expected, string(id))
	} else {
		s.log.Warn(fmt.Sprintf("Unknown client %s has connected.", id))
	}
	c := newServerConn(s, string(id), sock, string(initStr))
	s.conns[string(id)] = c
	s.sig.broadcast()
	s.wg.Add(2)
	go c.reader()
	go c.keepalive()
}
