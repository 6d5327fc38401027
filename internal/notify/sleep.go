package notify

import (
	"context"
	"time"
)

// Sleep waits d, or until ctx ends; it reports whether the whole d passed
// (d <= 0 passes at once unless ctx has ended). It is for pacing (a retry's
// delay, a demo's rhythm, a fault's length), never for waiting on state.
func Sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
