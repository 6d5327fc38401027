package client

import "time"

// backoff chooses the waits between connection attempts: jittered, at
// least base, growing twofold with each consecutive failure, at most max.
// It is "equal jitter" (half the range fixed, half random) with a floor:
// the n-th wait since the last stable link (n = 0, 1, ...) is uniform in
// [max(base, hi/2), hi], hi = min(max, 1.5 base 2^n). With base 2T and max
// 16T: [2T, 3T], [3T, 6T], [6T, 12T], then [8T, 16T] for ever. Until the
// cap, each range starts where the previous one ends, so the waits never
// shrink; at the cap, they keep a range of half of it, so nodes that
// failed together stay spread out.
//
// A backoff is used by one goroutine at a time.
type backoff struct {
	base, max time.Duration
	randN     func(n int64) int64 // uniform in [0, n)
	retries   int                 // waits since the last reset
}

// next returns the wait before the next attempt and that attempt's number
// since the last reset (1, 2, ...), and counts it.
func (b *backoff) next() (time.Duration, int) {
	lo, hi := b.bounds(b.retries)
	d := lo
	if hi > lo {
		d += time.Duration(b.randN(int64(hi-lo) + 1))
	}
	b.retries++
	return d, b.retries
}

// reset starts the waits afresh: the link was up and stable.
func (b *backoff) reset() { b.retries = 0 }

// bounds returns the range of the n-th wait (n = 0, 1, ...).
func (b *backoff) bounds(n int) (lo, hi time.Duration) {
	hi = b.base + b.base/2
	for ; n > 0 && hi < b.max; n-- {
		if hi > b.max/2 {
			hi = b.max // 2*hi would pass it (or overflow)
		} else {
			hi *= 2
		}
	}
	hi = min(hi, b.max)
	return max(b.base, hi/2), hi
}
