// Package qos is the quality of service demo of micropython-iot
// (iot/qos): a node ("qos") and the server exchange numbered qos
// messages and each side reports, periodically, its uptime, the outages,
// the duplicates ignored, the messages missed or out of order and the
// restarts of its peer, as it counts them from the numbers it receives.
//
// In the plain demo the node runs three concurrent writers and the server
// one, all with qos and wait; in the fast one (qos-fast) each side writes
// bursts of four concurrent messages with qos and no wait.
//
// The node sends the original nodes' layouts: [n, connects, heap kB,
// duplicates, missed, out of order, uptime s] (c_qos.py) in the plain
// demo, [n, connects, heap kB, duplicates, missed] (c_qos_fast.py) in the
// fast one; the server sends [n, count, duplicates, missed]. n counts
// from 0, and the other figures are the sender's own, so that each side
// reports the other's too; each side reads the original peers' layouts
// as well (see peerFigures). A side counts numbers from the first it
// receives, so that a server restarted while its node runs misses nothing.
// When a side ends its run it sends ["end", messages sent]: the other
// side then knows exactly which numbers it should have received.
package qos

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync"
	"time"

	"github.com/tether-iot/tether/internal/tools/demo"
	"github.com/tether-iot/tether/internal/tools/soak/seqcheck"
	"github.com/tether-iot/tether/link"
)

// ID is the node's ID in the qos demos.
const ID = "qos"

// Conn is one end of the link: a node's client or the server's link of
// the node.
type Conn interface {
	Write(ctx context.Context, line string, opts ...link.WriteOption) error
	ReadLine(ctx context.Context) (string, error)
	Connects() int
	Stats() link.Stats
}

// Config configures a Side.
type Config struct {
	// Node says which side this is: the node (true) or the server.
	Node bool
	// Fast selects qos-fast: bursts of four writes without wait.
	Fast bool
	// Interval is the pause between writes (or bursts). Zero means 2 s.
	Interval time.Duration
	// Report is the time between two reports. Zero means 10 s.
	Report time.Duration
	// Out narrates.
	Out *demo.Printer
}

// Side is one side of the qos demo.
type Side struct {
	cfg  Config
	conn Conn
	who  string
	peer string
	st   time.Time

	order sync.Mutex // numbers follow the message ids
	next  uint64     // the next number to send

	mu       sync.Mutex
	check    seqcheck.Checker
	restarts int
	// linkRestarts is the link's count of peer restarts when the last 0
	// arrived.
	linkRestarts uint64
	remote       [3]int // the peer's duplicates, missed, out of order, from its last message
	remoteOOO    bool   // the peer reports its out of order count (c_qos.py's layout)
	peerEnd      chan uint64

	stop    chan struct{}
	writers sync.WaitGroup
	bg      sync.WaitGroup
	cancel  context.CancelFunc
}

// Start starts a side on conn: its reader, writers and reports, until
// Finish or Close.
func Start(ctx context.Context, conn Conn, cfg Config) *Side {
	if cfg.Interval <= 0 {
		cfg.Interval = 2 * time.Second
	}
	if cfg.Report <= 0 {
		cfg.Report = 10 * time.Second
	}
	s := &Side{cfg: cfg, conn: conn, st: time.Now(), peerEnd: make(chan uint64, 1), stop: make(chan struct{})}
	s.check.FromFirst = true
	s.who, s.peer = "server", "node "+ID
	if cfg.Node {
		s.who, s.peer = "node "+ID, "server"
	}
	ctx, s.cancel = context.WithCancel(ctx)
	s.bg.Add(2)
	go func() { defer s.bg.Done(); s.read(ctx) }()
	go func() { defer s.bg.Done(); s.reports(ctx) }()
	writers := 1
	if cfg.Node && !cfg.Fast {
		writers = 3 // as the original node
	}
	for range writers {
		s.writers.Add(1)
		go func() { defer s.writers.Done(); s.writeLoop(ctx) }()
	}
	return s
}

func (s *Side) writeLoop(ctx context.Context) {
	pause := s.cfg.Interval
	if s.cfg.Node && !s.cfg.Fast {
		pause = s.cfg.Interval * 7 / 5 // the original: 7 s against the server's 5
	}
	for {
		if s.cfg.Fast {
			var wg sync.WaitGroup
			for range 4 {
				wg.Add(1)
				done := s.write(ctx, &wg, link.Wait(false))
				if !done {
					break
				}
			}
			wg.Wait()
		} else {
			var wg sync.WaitGroup
			wg.Add(1)
			s.write(ctx, &wg)
			wg.Wait()
		}
		if ctx.Err() != nil {
			return
		}
		select {
		case <-s.stop:
			return
		default:
		}
		t := time.NewTimer(pause + rand.N(pause/5+1))
		select {
		case <-t.C:
		case <-s.stop:
			t.Stop()
			return
		case <-ctx.Done():
			t.Stop()
			return
		}
	}
}

// write sends the next numbered message on a goroutine of its own, which
// wg waits for; it returns once the message has its id (so that the
// numbers follow the ids) or has failed, and reports whether it got one.
func (s *Side) write(ctx context.Context, wg *sync.WaitGroup, opts ...link.WriteOption) bool {
	s.order.Lock()
	defer s.order.Unlock()
	n := s.next
	line := s.message(n)
	assigned := make(chan struct{})
	returned := make(chan struct{})
	go func() {
		defer wg.Done()
		defer close(returned)
		err := s.conn.Write(ctx, line, append(opts, link.Assign(func(uint8) error {
			close(assigned)
			return nil
		}))...)
		if err == nil {
			s.cfg.Out.Say(s.who, "sent %s, acknowledged", line)
		} else if ctx.Err() == nil && !errors.Is(err, link.ErrClosed) {
			s.cfg.Out.Say(s.who, "write failed: %v", err)
		}
	}()
	select {
	case <-assigned:
	case <-returned:
		// A fast write may be sent and acknowledged already.
		select {
		case <-assigned:
		default:
			return false
		}
	}
	s.next++
	return true
}

func (s *Side) message(n uint64) string {
	s.mu.Lock()
	dup, miss, late := int(s.check.Duplicates()), int(s.check.Gaps()), int(s.check.Late())
	s.mu.Unlock()
	var v []int
	if s.cfg.Node {
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		v = []int{int(n), s.conn.Connects(), int(ms.HeapInuse / 1024), dup, miss}
		if !s.cfg.Fast { // c_qos.py's layout, which s_qos_cp.py reads
			v = append(v, late, int(time.Since(s.st)/time.Second))
		}
	} else {
		v = []int{int(n), int(n), dup, miss}
	}
	b, _ := json.Marshal(v)
	return string(b)
}

func (s *Side) read(ctx context.Context) {
	for {
		line, err := s.conn.ReadLine(ctx)
		if err != nil {
			return
		}
		var v []any
		if err := json.Unmarshal([]byte(line), &v); err != nil || len(v) < 2 {
			s.cfg.Out.Say(s.who, "got a line that is not a qos message: %q", line)
			continue
		}
		if v[0] == "end" {
			sent, _ := v[1].(float64)
			select {
			case s.peerEnd <- uint64(sent):
			default:
			}
			continue
		}
		n, ok := v[0].(float64)
		if !ok || n < 0 {
			s.cfg.Out.Say(s.who, "got a message without a number: %q", line)
			continue
		}
		s.mu.Lock()
		if n == 0 {
			// A 0 after others is the peer starting again only if its link
			// restarted too (a new message id 00); else it is a duplicate,
			// which the check below must count, not hide.
			r := s.conn.Stats().PeerRestarts
			if s.check.Highest() > 0 && r > s.linkRestarts {
				s.restarts++
				s.check = seqcheck.Checker{FromFirst: true}
			}
			s.linkRestarts = r
		}
		res := s.check.Add(uint64(n))
		s.peerFigures(v)
		s.mu.Unlock()
		switch res {
		case seqcheck.TooFar:
			s.cfg.Out.Say(s.who, "got %s from the %s: message %d is implausibly far ahead, ignored", line, s.peer, uint64(n))
		case seqcheck.Duplicate:
			s.cfg.Out.Say(s.who, "got %s from the %s: a DUPLICATE of message %d", line, s.peer, int(n))
		case seqcheck.Late:
			s.cfg.Out.Say(s.who, "got %s from the %s: message %d, OUT OF ORDER", line, s.peer, int(n))
		default:
			s.cfg.Out.Say(s.who, "got %s from the %s", line, s.peer)
		}
	}
}

// peerFigures takes the peer's own counts from its message, where each
// layout has them: the original c_qos.py node sends [n, connects,
// mem_free, dupe, miss, oord, uptime] (s_qos_cp.py reads data[3..6]),
// c_qos_fast.py [n, connects, mem_free, dupes, missing] (s_qos_fast.py
// reads data[3] and data[4]), this demo's server [n, count, dupes,
// missed], and the original servers [n, count], without figures. s.mu is
// held.
func (s *Side) peerFigures(v []any) {
	num := func(i int) int { f, _ := v[i].(float64); return int(f) }
	switch {
	case len(v) >= 7:
		s.remote, s.remoteOOO = [3]int{num(3), num(4), num(5)}, true
	case len(v) >= 5:
		s.remote = [3]int{num(3), num(4), 0}
	case len(v) == 4:
		s.remote = [3]int{num(2), num(3), 0}
	}
}

func (s *Side) reports(ctx context.Context) {
	t := time.NewTicker(s.cfg.Report)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			s.cfg.Out.Say(s.who, "%s", s.Report())
		case <-ctx.Done():
			return
		}
	}
}

// Report is the side's periodic report, as the original demo prints it.
func (s *Side) Report() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	up := time.Since(s.st).Round(time.Second)
	ooo := fmt.Sprintf("%d", s.check.Late())
	if s.remoteOOO {
		ooo = fmt.Sprintf("%d here, %d at the %s", s.check.Late(), s.remote[2], s.peer)
	}
	return fmt.Sprintf("REPORT uptime %v, outages %d, repeats ignored by the link %d; duplicates %d here, %d at the %s; missed %d here, %d at the %s; out of order %s; %s restarts %d",
		up, max(s.conn.Connects()-1, 0), s.conn.Stats().Duplicates,
		s.check.Duplicates(), s.remote[0], s.peer, s.check.Gaps(), s.remote[1], s.peer,
		ooo, s.peer, s.restarts)
}

// Result is what one side received over a whole run.
type Result struct {
	Sent       uint64 // by this side
	PeerSent   uint64 // by the other side, as it said at the end
	Received   uint64 // distinct messages received
	Lost       uint64 // sent by the peer and never received
	Duplicated uint64
	OutOfOrder uint64
}

// Finish stops the side's writers, waits until everything it wrote has
// been acknowledged, tells the peer how many messages it sent, and waits
// until the peer has said the same: then it knows exactly which numbers
// it should have received. Call Close afterwards.
func (s *Side) Finish(ctx context.Context) (Result, error) {
	close(s.stop)
	done := make(chan struct{})
	go func() { s.writers.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		s.cancel() // the writers end, and so does the goroutine above
		<-done
		return Result{}, fmt.Errorf("%s: its messages were not all acknowledged in time", s.who)
	}
	s.order.Lock()
	sent := s.next
	s.order.Unlock()
	end, _ := json.Marshal([]any{"end", sent})
	if err := s.conn.Write(ctx, string(end)); err != nil {
		return Result{}, fmt.Errorf("%s: sending the end of the run: %w", s.who, err)
	}
	var peerSent uint64
	select {
	case peerSent = <-s.peerEnd:
	case <-ctx.Done():
		return Result{}, fmt.Errorf("%s: the %s did not say how many messages it sent", s.who, s.peer)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return Result{
		Sent:       sent,
		PeerSent:   peerSent,
		Received:   s.check.Received(),
		Lost:       s.check.Missing(peerSent),
		Duplicated: s.check.Duplicates(),
		OutOfOrder: s.check.Late(),
	}, nil
}

// Close stops the side and waits for its goroutines.
func (s *Side) Close() {
	s.cancel()
	s.writers.Wait()
	s.bg.Wait()
}
