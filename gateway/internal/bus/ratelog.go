package bus

import (
	"sync"
	"time"
)

// logEvery is how often a rate-limited log line is written at most.
const logEvery = 10 * time.Second

// rateLog lets a log line through at most once per logEvery, counting
// the ones it held back in between.
type rateLog struct {
	mu   sync.Mutex
	last time.Time
	held int
}

// allow reports whether to log now, and how many were held back since
// the last line logged.
func (r *rateLog) allow() (held int, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := time.Now()
	if !r.last.IsZero() && now.Sub(r.last) < logEvery {
		r.held++
		return 0, false
	}
	held, r.held, r.last = r.held, 0, now
	return held, true
}
