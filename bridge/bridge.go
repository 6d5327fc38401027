// Package bridge makes a board that has only a serial port (a Pyboard
// 1.x, an RP2040 or AVR without WiFi) a Tether node, with the guarantees
// of a networked one. A small Linux machine wired or USB-connected to the
// board runs a Bridge: it is a peer of the board over the serial line and
// a client (package client) of the server, and the same link engine
// (package link) runs both hops.
//
// # Exactly once, end to end
//
// On the serial line each link protocol line travels in a frame with a
// CRC-32 (see AppendFrame and boards/micropython/spec.md): a corrupted,
// truncated or glued line is dropped, never delivered, and qos repeats it.
// A line from the board is ACKed to the board only once it is stored in
// the state directory (fsynced), and is then written to the server,
// repeated until the server ACKs it; the id it is given on the server
// link is stored before it is first sent, so that a bridge restarted on
// the same state sends it again with the same id and the server, which
// saw it, does not deliver it twice. A line from the server is stored,
// written to the board, and ACKed to the server only once the board has
// ACKed it: a server Write that returns has reached the board.
//
// # Outages, restarts, resets
//
// Every frame the bridge sends carries the state of its server link (flag
// 'u' or 'd'), so the board knows it within T/4, and at once on a change.
// A board that stops answering for the serial link's T is down (an event,
// a log line); after Config.ResetAfter the bridge resets it (Config.Reset)
// and keeps trying, less and less often, until it answers. Each side's
// first message (id 00) is its boot message, with a random payload, never
// delivered: a new one tells a restart exactly, so a board that restarts
// is seen at once, and the bridge starts a new life on the server link
// too (its next line there is 00), as a restarted networked node would.
//
// # Plain mode
//
// With Config.Plain the board needs no library: each line it prints is a
// message and each line from the server is printed to it. Plain mode is
// at most once from the board (a line corrupted on the wire, or printed
// while the bridge is down, is lost; a line taken is stored and then
// delivered exactly once), and a line from the server is ACKed once it is
// written to the port.
package bridge

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tether-iot/tether/client"
	"github.com/tether-iot/tether/internal/notify"
	"github.com/tether-iot/tether/link"
)

// errFull: the queue is at Config.MaxQueue; the sender repeats later.
var errFull = errors.New("bridge: queue full")

// errNotYet: the board has not taken a server line yet; the server
// repeats it and the bridge answers the repeat.
var errNotYet = errors.New("bridge: the board has not taken the line yet")

// Bridge links one board to the server. Run it with Run.
type Bridge struct {
	cfg   Config
	log   *slog.Logger
	slog  *slog.Logger // serial hop
	board *link.Link   // nil in plain mode
	st    *store
	ran   atomic.Bool

	mu         sync.Mutex
	ups        []upItem
	upChanged  notify.Broadcast
	downs      []*down // in seq order; the boot message first
	downChgd   notify.Broadcast
	serverWin  link.Window // the server link's window, as stored
	serverNext uint8       // the server link's next id, as stored
	boardUp    bool
	stats      Stats

	serverUp atomic.Bool
	conn     atomic.Pointer[frameConn] // the serial session, for nudges
	port     atomic.Pointer[portIO]

	boardChg notify.Broadcast // boardUp changed; under mu

	evMu   sync.Mutex
	evq    []Event
	evSig  chan struct{} // an event is queued
	evDone chan struct{} // the dispatcher drains and ends
}

// down is a line from the server on its way to the board.
type down struct {
	downItem
	taken chan struct{} // closed when the board has ACKed it
}

// Stats are a bridge's counters and state.
type Stats struct {
	BoardUp, ServerUp bool
	UpQueued          int // lines from the board not yet ACKed by the server
	DownQueued        int // lines from the server not yet ACKed to it

	FromBoard  uint64 // lines taken from the board (stored)
	ToServer   uint64 // of which ACKed by the server
	FromServer uint64 // lines taken from the server (stored)
	ToBoard    uint64 // of which ACKed by the board

	BadFrames   uint64 // serial lines with a frame start whose CRC failed
	BoardOutput uint64 // serial lines without a frame start (the board's prints)
	TooLong     uint64 // serial lines longer than MaxLine plus framing
	PlainBad    uint64 // plain mode: lines dropped (not UTF-8, too long, queue full)
	QueueFull   uint64 // lines refused because a queue was full

	BoardRestarts  uint64
	Resets         uint64
	ResetFailures  uint64
	ServerRestarts uint64 // the server sent a new 00
	PortFailures   uint64 // the serial port failed or could not be opened
}

// New checks cfg and returns a Bridge; Run runs it.
func New(cfg Config) (*Bridge, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	b := &Bridge{cfg: cfg, log: cfg.Logger.With("node", cfg.ID)}
	b.slog = b.log.With("hop", "serial", "port", cfg.PortName)
	return b, nil
}

// Stats returns a copy of the bridge's counters and state.
func (b *Bridge) Stats() Stats {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.stats
	s.BoardUp = b.boardUp
	s.ServerUp = b.serverUp.Load()
	s.UpQueued = len(b.ups)
	for _, d := range b.downs {
		if !d.boot {
			s.DownQueued++
		}
	}
	if p := b.port.Load(); p != nil {
		s.TooLong += p.tooLong.Load()
	}
	return s
}

// Run runs the bridge until ctx ends, then stops everything it started
// and returns ctx's error. It fails at once on a state directory it
// cannot open. A Bridge runs once.
func (b *Bridge) Run(ctx context.Context) error {
	if b.ran.Swap(true) {
		return errors.New("bridge: Run called twice")
	}
	st, err := openStore(b.cfg.StateDir, b.cfg.ID)
	if err != nil {
		return err
	}
	b.st = st
	defer st.close()
	seq, ups, downs, err := st.load()
	if err != nil {
		return err
	}
	b.ups = ups
	b.serverWin, b.serverNext = seq.server.Window, seq.server.Next
	for _, it := range downs {
		d := &down{downItem: it, taken: make(chan struct{})}
		if it.acked {
			close(d.taken)
		}
		if it.boot {
			b.downs = append([]*down{d}, b.downs...)
			continue
		}
		b.downs = append(b.downs, d)
	}
	if len(ups) > 0 || len(downs) > 0 {
		b.log.Info("bridge: resuming from its state", "state", b.cfg.StateDir, "up_queued", len(ups), "down_queued", len(downs))
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	b.evSig = make(chan struct{}, 1)
	b.evDone = make(chan struct{})
	var evWG sync.WaitGroup
	evWG.Add(1)
	go b.dispatch(&evWG)

	if !b.cfg.Plain {
		if seq.board.Next == 0 && !b.hasBoot() {
			if err := b.addBoot(); err != nil {
				return err
			}
		}
		b.board, err = link.New(link.Config{
			ID:            b.cfg.ID,
			Timeout:       b.cfg.SerialTimeout,
			UpOnFirstLine: true,
			MaxLine:       b.cfg.MaxLine,
			Deliver:       b.fromBoard,
			Resume:        seq.board,
			Logger:        b.slog,
			OnEvent:       b.onBoardEvent,
		})
		if err != nil {
			return fmt.Errorf("bridge: %w", err)
		}
	}

	var wg sync.WaitGroup
	spawn := func(f func(context.Context)) {
		wg.Add(1)
		go func() { defer wg.Done(); f(ctx) }()
	}
	spawn(b.serial)
	spawn(b.forwardUp)
	if !b.cfg.Plain {
		spawn(b.forwardDown)
		spawn(b.supervise)
	}
	<-ctx.Done()
	wg.Wait()
	if b.board != nil {
		b.board.Close()
	}
	close(b.evDone)
	evWG.Wait()
	return ctx.Err()
}

// emit queues an event for Config.OnEvent; it never blocks.
func (b *Bridge) emit(k EventKind, err error) {
	if b.cfg.OnEvent == nil {
		return
	}
	b.evMu.Lock()
	b.evq = append(b.evq, Event{Kind: k, Time: time.Now(), Err: err})
	b.evMu.Unlock()
	select {
	case b.evSig <- struct{}{}:
	default:
	}
}

// dispatch hands the queued events to Config.OnEvent, in order, until
// evDone is closed and the queue is empty.
func (b *Bridge) dispatch(wg *sync.WaitGroup) {
	defer wg.Done()
	for {
		b.evMu.Lock()
		q := b.evq
		b.evq = nil
		b.evMu.Unlock()
		for _, ev := range q {
			b.cfg.OnEvent(ev)
		}
		if len(q) > 0 {
			continue
		}
		select {
		case <-b.evSig:
		case <-b.evDone:
			b.evMu.Lock()
			n := len(b.evq)
			b.evMu.Unlock()
			if n == 0 {
				return
			}
		}
	}
}

// serial opens the port, runs the serial link (or plain mode) on it, and
// opens it again when it fails, until ctx ends.
func (b *Bridge) serial(ctx context.Context) {
	delay := b.cfg.SerialTimeout
	fails := uint64(0)
	for ctx.Err() == nil {
		port, err := b.cfg.Open(ctx)
		if err != nil {
			fails++
			b.count(func(s *Stats) { s.PortFailures++ })
			if fails <= 3 || fails&(fails-1) == 0 {
				b.slog.Warn("bridge: cannot open the serial port; trying again", "err", err, "attempt", fails, "delay", delay)
			}
			if !notify.Sleep(ctx, delay) {
				return
			}
			delay = min(2*delay, 16*b.cfg.SerialTimeout)
			continue
		}
		if fails > 0 {
			b.slog.Info("bridge: serial port open", "attempts", fails+1)
		}
		fails, delay = 0, b.cfg.SerialTimeout
		p := startPort(port, b.cfg.MaxLine+frameOverhead, b.slog)
		b.port.Store(p)
		if b.cfg.Plain {
			b.setBoardUp(true, nil)
			err = b.plain(ctx, p)
		} else {
			err = attachLoop(ctx, p, b.newConn(p), b.board.Attach)
		}
		b.port.Store(nil)
		p.close()
		b.mu.Lock()
		b.stats.TooLong += p.tooLong.Load()
		b.mu.Unlock()
		if b.cfg.Plain {
			b.setBoardUp(false, err)
		}
		if ctx.Err() != nil {
			return
		}
		b.count(func(s *Stats) { s.PortFailures++ })
		b.slog.Warn("bridge: serial port failed; opening it again", "err", err, "delay", delay)
		if !notify.Sleep(ctx, delay) {
			return
		}
	}
}

func (b *Bridge) count(f func(*Stats)) {
	b.mu.Lock()
	f(&b.stats)
	b.mu.Unlock()
}

// newConn returns the maker of serial sessions on p.
func (b *Bridge) newConn(p *portIO) func() *frameConn {
	return func() *frameConn {
		c := newFrameConn(p, b.flag, nil, b.badLine, b.cfg.PortName)
		b.conn.Store(c)
		return c
	}
}

// flag is the flag of the bridge's frames: the server link's state.
func (b *Bridge) flag() byte {
	if b.serverUp.Load() {
		return FlagServerUp
	}
	return FlagServerDown
}

// badLine counts and logs a serial line that is no valid frame.
func (b *Bridge) badLine(line []byte) {
	if indexByte(line, SOF) < 0 && !frameTail(line) {
		b.mu.Lock()
		b.stats.BoardOutput++
		n := b.stats.BoardOutput
		b.mu.Unlock()
		if n <= 8 || n&(n-1) == 0 {
			b.slog.Info("bridge: the board printed a line that is no frame", "line", truncate(line, 80), "count", n)
		}
		return
	}
	b.mu.Lock()
	b.stats.BadFrames++
	n := b.stats.BadFrames
	b.mu.Unlock()
	logRare(b.slog, n, "bridge: corrupted frame dropped (the sender repeats it)", "line", truncate(line, 80))
}

// frameTail reports whether line ends as a frame does (eight lowercase hex
// digits): a frame whose start was lost, rather than the board's print.
func frameTail(line []byte) bool {
	if len(line) < 1+crcLen {
		return false
	}
	_, ok := parseCRC(line[len(line)-crcLen:])
	return ok
}

func truncate(b []byte, n int) string {
	if len(b) > n {
		return fmt.Sprintf("%q...", b[:n])
	}
	return fmt.Sprintf("%q", b)
}

// onBoardEvent follows the board link's state.
func (b *Bridge) onBoardEvent(ev link.Event) {
	switch ev.Kind {
	case link.Up:
		b.setBoardUp(true, nil)
	case link.Down:
		b.setBoardUp(false, ev.Err)
	}
}

func (b *Bridge) setBoardUp(up bool, err error) {
	b.mu.Lock()
	changed := b.boardUp != up
	b.boardUp = up
	if changed {
		b.boardChg.Notify()
	}
	b.mu.Unlock()
	if !changed {
		return
	}
	if up {
		b.emit(BoardUp, nil)
	} else {
		if !errors.Is(err, link.ErrClosed) && !errors.Is(err, context.Canceled) {
			b.slog.Warn("bridge: the board is not answering", "reason", errString(err))
		}
		b.emit(BoardDown, err)
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// supervise resets a board that does not answer for ResetAfter, then
// after twice as long each time, up to 8 ResetAfter.
func (b *Bridge) supervise(ctx context.Context) {
	if b.cfg.Reset == nil {
		return
	}
	delay := b.cfg.ResetAfter
	t := time.NewTimer(delay) // the board has not answered yet
	defer t.Stop()
	armed := true
	for {
		b.mu.Lock()
		up := b.boardUp
		ch := b.boardChg.Wait()
		b.mu.Unlock()
		switch {
		case up && armed:
			t.Stop()
			armed, delay = false, b.cfg.ResetAfter
		case !up && !armed:
			t.Reset(delay)
			armed = true
		}
		select {
		case <-ch:
		case <-t.C:
			b.slog.Warn("bridge: the board has not answered: resetting it", "after", delay)
			err := b.cfg.Reset(ctx)
			b.count(func(s *Stats) {
				s.Resets++
				if err != nil {
					s.ResetFailures++
				}
			})
			if err != nil && ctx.Err() == nil {
				b.slog.Error("bridge: board reset failed", "err", err)
			}
			b.emit(BoardReset, err)
			delay = min(2*delay, 8*b.cfg.ResetAfter)
			t.Reset(delay)
		case <-ctx.Done():
			return
		}
	}
}

// newNonce returns a boot message's payload.
func newNonce() string {
	var r [6]byte
	rand.Read(r[:])
	return "boot " + hex.EncodeToString(r[:])
}

func (b *Bridge) hasBoot() bool {
	return len(b.downs) > 0 && b.downs[0].boot
}

// addBoot queues the bridge's boot message to the board (it starts
// afresh: the board must clear its window).
func (b *Bridge) addBoot() error {
	it, err := b.st.addDown(downItem{boot: true, orphan: true, payload: newNonce()})
	if err != nil {
		return err
	}
	b.downs = append([]*down{{downItem: it, taken: make(chan struct{})}}, b.downs...)
	return nil
}

// fromBoard takes a new message from the board: its boot message (a
// restart) or a line for the server, stored before the board gets its ACK.
func (b *Bridge) fromBoard(_ context.Context, m link.Message) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if m.ID == 0 {
		// Its boot message. The server link starts a new life before the
		// board's next line (at once if it has sent nothing yet).
		it, err := b.st.addUp(upItem{restart: true}, m.Window)
		if err != nil {
			b.slog.Error("bridge: cannot store the board's boot", "err", err)
			return err
		}
		b.ups = append(b.ups, it)
		b.upChanged.Notify()
		if m.Restart {
			b.stats.BoardRestarts++
			b.slog.Warn("bridge: the board restarted", "boot", m.Payload)
			b.emit(BoardRestart, nil)
		} else {
			b.slog.Info("bridge: the board started", "boot", m.Payload)
		}
		return nil
	}
	if len(b.ups) >= b.cfg.MaxQueue {
		b.stats.QueueFull++
		logRare(b.slog, b.stats.QueueFull, "bridge: queue for the server full: the board's line is not ACKed, it will repeat it", "max", b.cfg.MaxQueue)
		return errFull
	}
	it, err := b.st.addUp(upItem{payload: m.Payload}, m.Window)
	if err != nil {
		b.slog.Error("bridge: cannot store the board's line; not ACKed", "err", err)
		return err
	}
	b.ups = append(b.ups, it)
	b.stats.FromBoard++
	b.upChanged.Notify()
	return nil
}

// nextUp waits for the head of the up queue.
func (b *Bridge) nextUp(ctx context.Context) (upItem, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for len(b.ups) == 0 {
		ch := b.upChanged.Wait()
		b.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			b.mu.Lock()
			return upItem{}, false
		}
		b.mu.Lock()
	}
	return b.ups[0], true
}

// popUp removes the head of the up queue once the server has it.
func (b *Bridge) popUp(it upItem) error {
	if err := b.st.doneUp(it); err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.ups = b.ups[1:]
	if it.restart {
		b.serverNext = 0
	} else {
		b.stats.ToServer++
	}
	return nil
}

// dial connects to the server, retrying until it can or ctx ends.
func (b *Bridge) dial(ctx context.Context, resume link.Snapshot) (*client.Client, error) {
	slog := b.log.With("hop", "server")
	deliver := b.fromServer
	if b.cfg.Plain {
		deliver = b.toPlain
	}
	return client.Dial(ctx, client.Config{
		ID:                b.cfg.ID,
		Server:            b.cfg.Server,
		Timeout:           b.cfg.Timeout,
		MaxLine:           b.cfg.MaxLine,
		ReconnectDelay:    b.cfg.ReconnectDelay,
		MaxReconnectDelay: b.cfg.MaxReconnectDelay,
		Dial:              b.cfg.Dial,
		Deliver:           deliver,
		Resume:            resume,
		Logger:            slog,
		OnEvent:           b.onServerEvent,
		BadServer: func(ctx context.Context, err error) error {
			slog.Warn("bridge: server not reachable; the board's lines are kept until it is", "server", b.cfg.Server, "err", err)
			return nil
		},
	})
}

func (b *Bridge) onServerEvent(ev link.Event) {
	var up bool
	switch ev.Kind {
	case link.Up:
		up = true
	case link.Down:
	default:
		return
	}
	if b.serverUp.Swap(up) == up {
		return
	}
	if c := b.conn.Load(); c != nil {
		c.nudge()
	}
	if up {
		b.emit(ServerUp, nil)
	} else {
		b.emit(ServerDown, ev.Err)
	}
}

// forwardUp writes the board's lines to the server, in order, each
// removed from the state once the server has ACKed it.
func (b *Bridge) forwardUp(ctx context.Context) {
	b.mu.Lock()
	resume := link.Snapshot{Next: b.serverNext, Window: b.serverWin}
	b.mu.Unlock()
	c, err := b.dial(ctx, resume)
	if err != nil {
		return // ctx ended
	}
	defer func() {
		if c != nil {
			c.Close()
		}
	}()
	for {
		it, ok := b.nextUp(ctx)
		if !ok {
			return
		}
		if it.restart {
			b.mu.Lock()
			fresh := b.serverNext == 0
			b.mu.Unlock()
			if fresh {
				if err := b.popUp(it); err != nil {
					b.log.Error("bridge: state", "err", err)
				}
				continue
			}
			// The board restarted: so does its node on the server. The
			// window is read once Close has returned: a line from the
			// server that the old client was taking meanwhile is in it
			// (or was not ACKed), so that its repeat is known.
			c.Close()
			c = nil
			b.mu.Lock()
			resume := link.Snapshot{Window: b.serverWin}
			b.mu.Unlock()
			b.log.Info("bridge: the board restarted: starting a new life on the server link", "hop", "server")
			if err := b.popUp(it); err != nil {
				b.log.Error("bridge: state", "err", err)
			}
			if c, err = b.dial(ctx, resume); err != nil {
				c = nil
				return
			}
			continue
		}
		var opt link.WriteOption
		if it.assigned {
			opt = link.Reuse(it.id)
		} else {
			opt = link.Assign(func(id uint8) error {
				it.assigned, it.id = true, id
				return b.st.assignUp(it)
			})
		}
		err := c.Write(ctx, it.payload, opt)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			// Only a line the server link cannot carry (it passed the
			// serial link's checks): say so, and drop it.
			b.log.Error("bridge: a line from the board cannot be sent to the server: dropped", "err", err, "line", it.payload)
		}
		b.mu.Lock()
		b.serverNext = link.NextID(it.id)
		b.mu.Unlock()
		if err := b.popUp(it); err != nil {
			b.log.Error("bridge: state", "err", err)
		}
	}
}

// fromServer takes a new message from the server for the board: it is
// stored, given to the board, and ACKed to the server only once the board
// has ACKed it. It waits for that up to half the server's T; if the board
// is slower (or away), the server's repeat of the message finds it
// stored, and is answered once the board has it.
func (b *Bridge) fromServer(ctx context.Context, m link.Message) error {
	b.mu.Lock()
	if m.Restart {
		b.stats.ServerRestarts++
		b.log.Warn("bridge: the server restarted (a new message 00)", "hop", "server")
		b.orphanDowns()
	}
	var d *down
	for _, x := range b.downs {
		if !x.orphan && x.serverID == m.ID && x.payload == m.Payload {
			d = x
			break
		}
	}
	if d == nil {
		if b.pendingDowns() >= b.cfg.MaxQueue {
			b.stats.QueueFull++
			logRare(b.slog, b.stats.QueueFull, "bridge: queue for the board full: the server's line is not ACKed, it will repeat it", "max", b.cfg.MaxQueue)
			b.mu.Unlock()
			return errFull
		}
		it, err := b.st.addDown(downItem{serverID: m.ID, payload: m.Payload})
		if err != nil {
			b.mu.Unlock()
			b.log.Error("bridge: cannot store the server's line; not ACKed", "err", err)
			return err
		}
		d = &down{downItem: it, taken: make(chan struct{})}
		b.downs = append(b.downs, d)
		b.stats.FromServer++
		b.downChgd.Notify()
		b.log.Debug("bridge: a line from the server, stored", "hop", "server", "id", fmt.Sprintf("%02x", m.ID), "seq", d.seq)
	} else {
		b.log.Debug("bridge: a repeat of a stored line from the server", "hop", "server", "id", fmt.Sprintf("%02x", m.ID), "seq", d.seq, "taken", d.acked)
	}
	b.mu.Unlock()
	t := time.NewTimer(b.cfg.Timeout / 2)
	defer t.Stop()
	select {
	case <-d.taken:
	case <-t.C:
		return errNotYet
	case <-ctx.Done():
		return ctx.Err()
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	// Done: and a record of a line the board took whose repeat never
	// came (the server sent it with qos off) is forgotten once 128 later
	// ones are done, as the receive window forgets ids half a window back.
	seqs := []uint64{d.seq}
	kept := 0
	for i := len(b.downs) - 1; i >= 0; i-- {
		x := b.downs[i]
		if x != d && x.acked && !x.boot {
			if kept++; kept > 128 {
				seqs = append(seqs, x.seq)
			}
		}
	}
	w := m.Window
	if err := b.st.doneDown(seqs, &w); err != nil {
		b.log.Error("bridge: cannot store the server link's window; not ACKed", "err", err)
		return err
	}
	b.serverWin = w
	b.downs = slices.DeleteFunc(b.downs, func(x *down) bool { return slices.Contains(seqs, x.seq) })
	return nil
}

// pendingDowns counts the lines from the server not yet taken by the
// board. b.mu is held.
func (b *Bridge) pendingDowns() int {
	n := 0
	for _, d := range b.downs {
		if !d.acked && !d.boot {
			n++
		}
	}
	return n
}

// orphanDowns marks every line from the server's previous life: no repeat
// of it will come. Those the board has taken are forgotten; the others
// are still given to it. b.mu is held.
func (b *Bridge) orphanDowns() {
	var gone []uint64
	for _, d := range b.downs {
		switch {
		case d.boot || d.orphan:
		case d.acked:
			gone = append(gone, d.seq)
		default:
			d.orphan = true
			if err := b.st.putDown(d.downItem); err != nil {
				b.log.Error("bridge: state", "err", err)
			}
		}
	}
	if len(gone) > 0 {
		if err := b.st.doneDown(gone, nil); err != nil {
			b.log.Error("bridge: state", "err", err)
		}
		b.downs = slices.DeleteFunc(b.downs, func(x *down) bool { return slices.Contains(gone, x.seq) })
	}
}

// nextDown waits for the first line not yet taken by the board.
func (b *Bridge) nextDown(ctx context.Context) (*down, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for {
		for _, d := range b.downs {
			if !d.acked {
				return d, true
			}
		}
		ch := b.downChgd.Wait()
		b.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			b.mu.Lock()
			return nil, false
		}
		b.mu.Lock()
	}
}

// forwardDown writes the server's lines to the board, in order (the
// bridge's boot message first when it starts afresh).
func (b *Bridge) forwardDown(ctx context.Context) {
	for {
		d, ok := b.nextDown(ctx)
		if !ok {
			return
		}
		b.mu.Lock()
		item := d.downItem
		b.mu.Unlock()
		var opt link.WriteOption
		if item.assigned {
			opt = link.Reuse(item.boardID)
		} else {
			// Called with the board link's lock held: the lock order is
			// the link's, then b.mu.
			opt = link.Assign(func(id uint8) error {
				b.mu.Lock()
				defer b.mu.Unlock()
				d.assigned, d.boardID = true, id
				return b.st.putDown(d.downItem)
			})
		}
		err := b.board.Write(ctx, item.payload, opt)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			b.slog.Error("bridge: a line from the server cannot be sent to the board: dropped", "err", err, "line", item.payload)
		}
		b.mu.Lock()
		d.acked = true
		item = d.downItem
		var serr error
		if d.orphan { // nobody waits for it: done
			serr = b.st.doneDown([]uint64{d.seq}, nil)
			b.downs = slices.DeleteFunc(b.downs, func(x *down) bool { return x == d })
		} else {
			serr = b.st.putDown(item)
		}
		if !d.boot {
			b.stats.ToBoard++
		}
		b.mu.Unlock()
		if serr != nil {
			b.log.Error("bridge: state", "err", serr)
		}
		close(d.taken)
	}
}
