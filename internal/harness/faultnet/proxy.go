package faultnet

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Proxy is a running fault-injecting TCP proxy. Its methods are safe for
// concurrent use. Each accepted connection gets a fresh connection to
// [Config.Target]; the proxy forwards each direction chunk by chunk (one
// socket read of up to 32 KiB per chunk), in order.
//
// When one peer closes its side (EOF), the proxy forwards what it read
// before the EOF, then closes both sides with FIN, as the legacy recorder
// did. A read error such as ECONNRESET from one peer resets the other. During
// a blackhole both are held back until it ends.
type Proxy struct {
	cfg     Config
	started time.Time // the origin of the transcript's times
	rec     *recorder
	addr    string
	ctx     context.Context // done when the proxy shuts down
	cancel  context.CancelFunc
	wg      sync.WaitGroup // every goroutine the proxy starts

	delay   atomic.Int64 // time.Duration
	trickle atomic.Bool
	bytes   [2]atomic.Int64 // forwarded, by Dir
	dropped atomic.Int64

	bhTimer  *time.Timer // fires when the blackhole should end
	refTimer *time.Timer // fires when refusing should end

	mu       sync.Mutex
	closed   bool
	ln       net.Listener   // nil while refusing or closed
	conns    map[int]*pconn // every connection whose goroutines run
	live     int            // connections in conns not closed yet
	nextID   int
	acceptCh chan struct{} // closed and replaced on every accept
	stats    Stats         // counters but bytes
	bhDone   chan struct{} // non-nil during a blackhole; closed when it ends
	bhEnd    time.Time
	limbo    []*pconn      // accepted during the blackhole, never forwarded
	refDone  chan struct{} // non-nil while refusing; closed when listening again
	refEnd   time.Time
	closeErr error
}

// Stats counts what a [Proxy] did since [Start].
type Stats struct {
	Accepted   int   // connections accepted
	Cuts       int   // connections closed with FIN by Cut or a Filter's CutBefore/CutAfter
	Resets     int   // connections closed with RST by Reset
	Blackholes int   // calls of Blackhole
	Refusals   int   // calls of Refuse
	BytesC2S   int64 // bytes forwarded client to server
	BytesS2C   int64 // bytes forwarded server to client
	Dropped    int64 // bytes discarded: blackholes, Drop and CutBefore
}

// drainTimeout bounds how long a connection closed with FIN waits for its
// peers' own FIN before the proxy closes the sockets for good.
const drainTimeout = 2 * time.Second

// Start listens on cfg.Listen and serves until ctx is done or [Proxy.Close]
// is called. It returns an error if the configuration is invalid (including
// a non-loopback address) or the listen fails; it does not contact Target
// until a client connects. When ctx is done the proxy shuts down as by
// Close; Close must still be called to wait for its goroutines.
func Start(ctx context.Context, cfg Config) (*Proxy, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("faultnet: listen on %s: %w", cfg.Listen, err)
	}
	pctx, cancel := context.WithCancel(ctx)
	started := time.Now()
	p := &Proxy{
		cfg:      cfg,
		started:  started,
		rec:      newRecorder(cfg.Record, started, cfg.Logger),
		addr:     ln.Addr().String(),
		ctx:      pctx,
		cancel:   cancel,
		bhTimer:  stoppedTimer(),
		refTimer: stoppedTimer(),
		ln:       ln,
		conns:    make(map[int]*pconn),
		acceptCh: make(chan struct{}),
	}
	p.spawn(func() { p.acceptLoop(ln) })
	p.spawn(p.control)
	cfg.Logger.Info("faultnet: proxy started", "addr", p.addr, "target", cfg.Target)
	return p, nil
}

func stoppedTimer() *time.Timer {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return t
}

// spawn runs f on a goroutine that Close waits for.
func (p *Proxy) spawn(f func()) {
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		f()
	}()
}

// Addr returns the address clients should connect to, such as
// "127.0.0.1:40123". It stays the same across [Proxy.Refuse].
func (p *Proxy) Addr() string { return p.addr }

// Started returns when the proxy started: the origin of the times ("t")
// of its transcript.
func (p *Proxy) Started() time.Time { return p.started }

// Close stops listening, closes every connection and waits for all the
// proxy's goroutines, including those running Filter. It returns the error
// from closing the listener, if any. Close is idempotent; later calls
// return the first call's result. It must not be called from Filter.
func (p *Proxy) Close() error {
	p.shutdown()
	p.wg.Wait()
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.closeErr
}

// shutdown closes the listener and every connection; it does not wait.
func (p *Proxy) shutdown() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	ln := p.ln
	p.ln = nil
	conns := p.snapshot()
	dones := []chan struct{}{p.bhDone, p.refDone}
	p.bhDone, p.refDone, p.limbo = nil, nil, nil
	p.bhTimer.Stop()
	p.refTimer.Stop()
	p.mu.Unlock()

	p.cancel()
	var err error
	if ln != nil {
		if err = ln.Close(); err != nil {
			err = fmt.Errorf("faultnet: close listener: %w", err)
		}
	}
	for _, pc := range conns {
		p.closeConn(pc, endClose)
		pc.closeSockets() // also those draining after a FIN
	}
	for _, d := range dones {
		if d != nil {
			close(d)
		}
	}
	p.mu.Lock()
	p.closeErr = err
	p.mu.Unlock()
	p.cfg.Logger.Info("faultnet: proxy closed", "addr", p.addr)
}

// snapshot returns the connections in accept order, including those
// closed but still draining. p.mu must be held.
func (p *Proxy) snapshot() []*pconn {
	out := make([]*pconn, 0, len(p.conns))
	for id := 1; id <= p.nextID && len(out) < len(p.conns); id++ {
		if pc, ok := p.conns[id]; ok {
			out = append(out, pc)
		}
	}
	return out
}

// control owns the fault timers.
func (p *Proxy) control() {
	for {
		select {
		case <-p.ctx.Done():
			p.shutdown()
			return
		case <-p.bhTimer.C:
			p.endBlackhole()
		case <-p.refTimer.C:
			p.endRefuse()
		}
	}
}

// acceptLoop accepts on ln until ln is closed (by Refuse or Close).
func (p *Proxy) acceptLoop(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				p.cfg.Logger.Error("faultnet: accept failed; no longer accepting", "err", err)
			}
			return
		}
		p.admit(c.(*net.TCPConn))
	}
}

// Conns returns the number of live connections: accepted and not yet closed
// by the proxy.
func (p *Proxy) Conns() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.live
}

// WaitConns blocks until at least n connections have been accepted since
// Start, counting closed ones. It returns a wrapped ctx.Err() if ctx ends
// first, or an error wrapping [net.ErrClosed] if the proxy shuts down first.
func (p *Proxy) WaitConns(ctx context.Context, n int) error {
	for {
		p.mu.Lock()
		got, ch := p.stats.Accepted, p.acceptCh
		p.mu.Unlock()
		if got >= n {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("faultnet: wait for %d connections (have %d): %w", n, got, ctx.Err())
		case <-p.ctx.Done():
			return fmt.Errorf("faultnet: wait for %d connections (have %d): %w", n, got, net.ErrClosed)
		}
	}
}

// Stats returns a snapshot of the proxy's counters.
func (p *Proxy) Stats() Stats {
	p.mu.Lock()
	s := p.stats
	p.mu.Unlock()
	s.BytesC2S = p.bytes[C2S].Load()
	s.BytesS2C = p.bytes[S2C].Load()
	s.Dropped = p.dropped.Load()
	return s
}
