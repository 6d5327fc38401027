package legacy

import (
	"context"
	"fmt"
	"net"
	"time"

	"github.com/tether-iot/tether/internal/notify"
)

// ReplayConfig sets the pacing of a replay. The zero value is the default.
type ReplayConfig struct {
	// Speed divides the recorded gaps between chunks: 20 turns a 1 s gap
	// into 50 ms. Zero means 20.
	Speed float64
	// MinGap is the least pause between two chunks, so that the receiver
	// likely reads them apart as the recorded peer did. Zero means 1 ms;
	// negative means none.
	MinGap time.Duration
}

// Replay writes one side of a recorded connection to conn with the default
// ReplayConfig.
func Replay(ctx context.Context, conn net.Conn, events []Event, connNum int, dir string) error {
	return ReplayConfig{}.Replay(ctx, conn, events, connNum, dir)
}

// Replay writes the chunks of connection connNum in direction dir (see
// Chunks: dropped chunks never reached the other side and are skipped) to
// conn, one Write per recorded chunk, pausing between chunks for the
// recorded gap divided by Speed, and at least MinGap. It does not read
// from or close conn. It returns ctx.Err() if ctx ends first.
func (rc ReplayConfig) Replay(ctx context.Context, conn net.Conn, events []Event, connNum int, dir string) error {
	speed := rc.Speed
	if speed <= 0 {
		speed = 20
	}
	minGap := orDefault(rc.MinGap, time.Millisecond)
	chunks := Chunks(events, connNum, dir)
	for i, e := range chunks {
		if i > 0 {
			gap := time.Duration((e.T - chunks[i-1].T) / speed * float64(time.Second))
			if !notify.Sleep(ctx, max(gap, minGap)) {
				return fmt.Errorf("legacy: replay: %w", ctx.Err())
			}
		}
		if _, err := conn.Write([]byte(e.Data)); err != nil {
			return fmt.Errorf("legacy: replay chunk %d of conn %d %s: %w", i, connNum, dir, err)
		}
	}
	return nil
}
