package bridge

import (
	"bytes"
	"context"
	"errors"
	"time"

	"github.com/tether-iot/tether/internal/wire"
	"github.com/tether-iot/tether/link"
)

// errNoPort: plain mode has no open port to print a server line to.
var errNoPort = errors.New("bridge: the serial port is not open")

// plain takes each line the board prints as a message, until the port
// fails or ctx ends.
func (b *Bridge) plain(ctx context.Context, p *portIO) error {
	for {
		select {
		case raw := <-p.lines:
			b.plainLine(raw)
		case <-p.done:
			return p.err
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// plainLine stores one printed line for the server, or drops it (counted,
// logged): an empty one, one that is not UTF-8 or too long, or one that
// finds the queue full.
func (b *Bridge) plainLine(raw []byte) {
	raw = bytes.TrimSuffix(raw, []byte{'\r'})
	if len(raw) == 0 {
		return
	}
	p, err := wire.CheckPayload(string(raw), b.cfg.MaxLine)
	b.mu.Lock()
	defer b.mu.Unlock()
	if err == nil && len(b.ups) >= b.cfg.MaxQueue {
		b.stats.QueueFull++
		err = errFull
	}
	if err != nil {
		b.stats.PlainBad++
		logRare(b.slog, b.stats.PlainBad, "bridge: a line from the board is dropped", "err", err, "line", truncate(raw, 80))
		return
	}
	it, err := b.st.addUp(upItem{payload: p}, link.Window{})
	if err != nil {
		b.stats.PlainBad++
		b.slog.Error("bridge: cannot store a line from the board: dropped", "err", err)
		return
	}
	b.ups = append(b.ups, it)
	b.stats.FromBoard++
	b.upChanged.Notify()
}

// toPlain prints a line from the server to the board, and ACKs it once
// the port has taken it (within half the server's T).
func (b *Bridge) toPlain(_ context.Context, m link.Message) error {
	p := b.port.Load()
	if p == nil {
		return errNoPort
	}
	if m.Restart {
		b.count(func(s *Stats) { s.ServerRestarts++ })
	}
	if err := p.write([]byte(m.Payload+"\n"), time.Now().Add(b.cfg.Timeout/2)); err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	w := m.Window
	if err := b.st.doneDown(nil, &w); err != nil {
		return err
	}
	b.serverWin = w
	b.stats.FromServer++
	b.stats.ToBoard++
	return nil
}
