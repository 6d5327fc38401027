package soak

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tether-iot/tether/link"
	"github.com/tether-iot/tether/server"
)

// Peer is the server's side of a soak: for every node that says hello it
// writes the two data streams (qos with and without wait) and checks the
// node's streams, and when the node ends its run it stops, waits for its
// own messages to be acknowledged, and answers with its view. Run starts
// one in-process; "tether soak --serve" runs one for nodes on other hosts.
//
// Give Peer.OnEvent to server.Config.OnEvent, then call Serve.
type Peer struct {
	interval time.Duration
	log      *slog.Logger

	newNode chan string   // IDs whose link came up for the first time
	done    chan struct{} // closed when Serve returns
	mu      sync.Mutex
	known   map[string]bool
	downs   atomic.Uint64
	stale   atomic.Uint64
	ends    atomic.Uint64
}

// NewPeer returns a Peer that writes a message on each stream every
// interval, on average (the wait-free stream in bursts of four). Zero
// means 150 ms. A nil logger means slog.Default().
func NewPeer(interval time.Duration, log *slog.Logger) *Peer {
	if interval <= 0 {
		interval = 150 * time.Millisecond
	}
	if log == nil {
		log = slog.Default()
	}
	return &Peer{
		interval: interval,
		log:      log,
		newNode:  make(chan string, 64),
		done:     make(chan struct{}),
		known:    make(map[string]bool),
	}
}

// OnEvent is for server.Config.OnEvent: it counts outages and notices new
// nodes. It blocks only while Serve is busy starting other nodes.
func (p *Peer) OnEvent(ev link.Event) {
	switch ev.Kind {
	case link.Down:
		p.downs.Add(1)
	case link.Up:
		p.mu.Lock()
		isNew := !p.known[ev.ID]
		p.known[ev.ID] = true
		p.mu.Unlock()
		if isNew {
			select {
			case p.newNode <- ev.ID:
			case <-p.done:
			}
		}
	}
}

// PeerStats are a Peer's counters.
type PeerStats struct {
	Outages uint64 // Down events of the server's links
	Stale   uint64 // lines of runs other than the node's current one
	Ends    uint64 // runs ended and answered
}

// Stats returns the Peer's counters.
func (p *Peer) Stats() PeerStats {
	return PeerStats{Outages: p.downs.Load(), Stale: p.stale.Load(), Ends: p.ends.Load()}
}

// Serve serves the nodes of srv until ctx is done or srv is closed, and
// returns once every goroutine it started has ended.
func (p *Peer) Serve(ctx context.Context, srv *server.Server) error {
	defer close(p.done)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case id := <-p.newNode:
			l, err := srv.Lookup(id)
			if err != nil {
				p.log.Error("soak peer: lookup", "node", id, "err", err)
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				p.serveNode(ctx, l)
			}()
		}
	}
}

// session is one run of one node, as the peer sees it.
type session struct {
	run    string
	recv   checkers
	out    *streams
	stop   chan struct{}
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// serveNode reads one node's lines until its link closes or ctx is done.
func (p *Peer) serveNode(ctx context.Context, l *link.Link) {
	var cur *session
	defer func() {
		if cur != nil {
			cur.abort()
		}
	}()
	for {
		s, err := l.ReadLine(ctx)
		if err != nil {
			if ctx.Err() == nil && !errors.Is(err, link.ErrClosed) {
				p.log.Error("soak peer: read", "node", l.ID(), "err", err)
			}
			return
		}
		m, err := parseLine(s)
		if err != nil {
			p.log.Warn("soak peer: bad line", "node", l.ID(), "err", err)
			continue
		}
		switch {
		case m.kind == "hello":
			if cur != nil {
				cur.abort()
			}
			cur = p.start(ctx, l, m.run)
		case cur == nil || m.run != cur.run:
			p.stale.Add(1)
		case m.kind == "d":
			cur.recv.add(m.stream, m.n)
		case m.kind == "end" && m.view == nil:
			p.finish(ctx, l, cur, m.sent)
			cur = nil
		default:
			p.stale.Add(1)
		}
	}
}

func (p *Peer) start(ctx context.Context, l *link.Link, run string) *session {
	s := &session{run: run, stop: make(chan struct{})}
	s.out = &streams{run: run, interval: p.interval, w: l}
	var sctx context.Context
	sctx, s.cancel = context.WithCancel(ctx)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.out.loop(sctx, s.stop)
	}()
	p.log.Debug("soak peer: run started", "node", l.ID(), "run", run)
	return s
}

// abort stops a session's writers at once.
func (s *session) abort() {
	s.cancel()
	s.wg.Wait()
}

// finish stops the session's writers, waits until everything they wrote
// is acknowledged, and answers the node with the peer's view.
func (p *Peer) finish(ctx context.Context, l *link.Link, s *session, nodeSent [2]uint64) {
	close(s.stop)
	s.wg.Wait()
	defer s.cancel()
	if ctx.Err() != nil {
		return
	}
	if err := s.out.failure(); err != nil {
		p.log.Error("soak peer: write failed", "node", l.ID(), "err", err)
	}
	v := s.recv.view(nodeSent)
	sent := [2]uint64{s.out.sent[0].Load(), s.out.sent[1].Load()}
	reply := fmt.Sprintf("end %s %d %d %s", s.run, sent[0], sent[1], v.String())
	if err := l.Write(ctx, reply); err != nil {
		if ctx.Err() == nil {
			p.log.Error("soak peer: answer", "node", l.ID(), "err", err)
		}
		return
	}
	p.ends.Add(1)
}
