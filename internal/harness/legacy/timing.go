package legacy

import (
	"errors"
	"time"
)

// DefaultTimeout is the legacy T, used when a config's Timeout is zero.
const DefaultTimeout = 2 * time.Second

// minTimeout keeps every derived delay above zero.
const minTimeout = 10 * time.Millisecond

// timing holds the legacy delays, derived from T with the ratios that the
// legacy constants have at T = 2 s.
type timing struct {
	t           time.Duration // outage after T of silence; qos repeat after T
	ka          time.Duration // T/4: keepalive interval
	firstRead   time.Duration // 2T: the node's first read after connecting
	idDelay     time.Duration // T/40 (50 ms): node pause before its ID
	writePause  time.Duration // T/10 (200 ms): server pause after first bytes
	acceptPause time.Duration // T/10 (200 ms): server accept loop period
	outagePause time.Duration // 2T: node pause after an outage
}

func newTiming(t time.Duration) (timing, error) {
	if t == 0 {
		t = DefaultTimeout
	}
	if t < minTimeout {
		return timing{}, errors.New("legacy: Timeout must be zero or at least 10ms")
	}
	return timing{
		t:           t,
		ka:          t / 4,
		firstRead:   2 * t,
		idDelay:     t / 40,
		writePause:  t / 10,
		acceptPause: t / 10,
		outagePause: 2 * t,
	}, nil
}

// orDefault returns d, or def when d is zero, or 0 when d is negative.
func orDefault(d, def time.Duration) time.Duration {
	switch {
	case d < 0:
		return 0
	case d == 0:
		return def
	}
	return d
}
