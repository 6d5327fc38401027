package bridge

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tether-iot/tether/internal/notify"
	"github.com/tether-iot/tether/link"
)

// BoardConfig configures a Board.
type BoardConfig struct {
	// Timeout is T of the serial link; it must match the bridge's
	// SerialTimeout. Zero means 2 s.
	Timeout time.Duration
	// MaxLine: see link.Config. Zero means link.DefaultMaxLine.
	MaxLine int
	// RecvQueue bounds the received lines waiting for ReadLine; a line
	// beyond it is not ACKed (the bridge repeats it). Zero means 64.
	RecvQueue int
	// Logger: nil means slog.Default().
	Logger *slog.Logger
	// OnStatus, if set, is called with the end-to-end state (Status) each
	// time it changes, on a goroutine of the link's or the reader's.
	OnStatus func(up bool)
}

// Board is the board's end of the serial link, in Go: the reference the
// MicroPython library (boards/micropython) follows, and the board model
// of the tests. It runs the link engine over the framing, starting with
// its boot message.
type Board struct {
	cfg    BoardConfig
	l      *link.Link
	p      *portIO
	cancel context.CancelFunc
	wg     sync.WaitGroup

	serverUp atomic.Bool
	linkUp   atomic.Bool
	lastUp   atomic.Bool // the last state given to OnStatus

	mu      sync.Mutex
	rq      []string
	rqChg   notify.Broadcast
	stMu    sync.Mutex // serialises OnStatus calls
	badSeen atomic.Uint64
}

// StartBoard starts a board on port; Close stops it (and closes port).
// Its first message, the boot message, is queued before it returns.
func StartBoard(port Port, cfg BoardConfig) (*Board, error) {
	if cfg.Timeout == 0 {
		cfg.Timeout = link.DefaultTimeout
	}
	if cfg.MaxLine == 0 {
		cfg.MaxLine = link.DefaultMaxLine
	}
	if cfg.RecvQueue == 0 {
		cfg.RecvQueue = link.DefaultRecvQueue
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	bd := &Board{cfg: cfg}
	l, err := link.New(link.Config{
		ID:            "board",
		Timeout:       cfg.Timeout,
		UpOnFirstLine: true,
		MaxLine:       cfg.MaxLine,
		Deliver:       bd.deliver,
		Logger:        cfg.Logger,
		OnEvent: func(ev link.Event) {
			switch ev.Kind {
			case link.Up:
				bd.linkUp.Store(true)
			case link.Down:
				bd.linkUp.Store(false)
			}
			bd.status()
		},
	})
	if err != nil {
		return nil, err
	}
	bd.l = l
	bd.p = startPort(port, cfg.MaxLine+frameOverhead, cfg.Logger)
	ctx, cancel := context.WithCancel(context.Background())
	bd.cancel = cancel
	mk := func() *frameConn {
		return newFrameConn(bd.p, func() byte { return FlagBoard }, bd.onFlag, func([]byte) { bd.badSeen.Add(1) }, "board")
	}
	bd.wg.Add(2)
	go func() {
		defer bd.wg.Done()
		attachLoop(ctx, bd.p, mk, l.Attach)
	}()
	assigned := make(chan struct{})
	go func() {
		defer bd.wg.Done()
		l.Write(ctx, newNonce(), link.Assign(func(uint8) error { close(assigned); return nil }))
	}()
	select {
	case <-assigned:
	case <-l.Done():
	}
	return bd, nil
}

// onFlag follows the server link's state carried by the bridge's frames.
func (bd *Board) onFlag(flag byte) {
	var up bool
	switch flag {
	case FlagServerUp:
		up = true
	case FlagServerDown:
	default:
		return
	}
	if bd.serverUp.Swap(up) != up {
		bd.status()
	}
}

func (bd *Board) status() {
	if bd.cfg.OnStatus == nil {
		return
	}
	bd.stMu.Lock()
	defer bd.stMu.Unlock()
	up := bd.Status()
	if bd.lastUp.Swap(up) != up {
		bd.cfg.OnStatus(up)
	}
}

// deliver queues a line from the bridge; the bridge's boot message is
// not a line.
func (bd *Board) deliver(_ context.Context, m link.Message) error {
	if m.ID == 0 {
		return nil
	}
	bd.mu.Lock()
	defer bd.mu.Unlock()
	if len(bd.rq) >= bd.cfg.RecvQueue {
		return errFull
	}
	bd.rq = append(bd.rq, m.Payload)
	bd.rqChg.Notify()
	return nil
}

// Write sends a line to the server through the bridge: see link.Write.
// With qos it returns once the bridge has stored the line.
func (bd *Board) Write(ctx context.Context, line string, opts ...link.WriteOption) error {
	return bd.l.Write(ctx, line, opts...)
}

// ReadLine returns the next line from the server.
func (bd *Board) ReadLine(ctx context.Context) (string, error) {
	bd.mu.Lock()
	defer bd.mu.Unlock()
	for len(bd.rq) == 0 {
		select {
		case <-bd.l.Done():
			return "", link.ErrClosed
		default:
		}
		ch := bd.rqChg.Wait()
		bd.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			bd.mu.Lock()
			return "", ctx.Err()
		case <-bd.l.Done():
		}
		bd.mu.Lock()
	}
	s := bd.rq[0]
	bd.rq = bd.rq[1:]
	return s, nil
}

// Status reports whether the line to the server is up end to end: the
// bridge answers and its server link is up.
func (bd *Board) Status() bool { return bd.linkUp.Load() && bd.serverUp.Load() }

// LinkUp reports whether the bridge answers on the serial link.
func (bd *Board) LinkUp() bool { return bd.linkUp.Load() }

// BadFrames returns how many received lines were no valid frame.
func (bd *Board) BadFrames() uint64 { return bd.badSeen.Load() }

// Stats returns the serial link's counters.
func (bd *Board) Stats() link.Stats { return bd.l.Stats() }

// Close stops the board and closes its port.
func (bd *Board) Close() error {
	bd.cancel()
	bd.l.Close()
	bd.p.close()
	bd.wg.Wait()
	return nil
}
