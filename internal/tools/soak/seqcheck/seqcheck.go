// Package seqcheck checks a stream of numbered messages as the receiver
// sees it: which numbers arrived twice, which have not arrived, and which
// arrived after a later one. Numbers start at 0 and the sender counts up
// by one per message, as the qos demos of micropython-iot do.
package seqcheck

// Result is what Add made of one number.
type Result uint8

// Results of Add.
const (
	New       Result = iota + 1 // first arrival, in order
	Late                        // first arrival, after a higher number
	Duplicate                   // arrived before
	TooFar                      // more than MaxAhead past the highest: not recorded
)

// MaxAhead bounds how far past the highest number so far a number may
// jump: a bad or hostile sender's huge number is refused rather than
// grow the record without bound (a bit per number).
const MaxAhead = 1 << 20

// Checker records the numbers received on one stream. The zero value is
// ready to use. A Checker is not safe for concurrent use.
type Checker struct {
	// FromFirst makes the first number to arrive the start of the stream:
	// the numbers below it are not gaps nor missing (a receiver started
	// after its sender, as a demo server restarted while its node runs;
	// the original micropython-iot check does the same). A number a
	// little below the first that arrives later (out of order) moves the
	// start down to it; one more than 64 below it is refused as TooFar.
	// Set it before the first Add.
	FromFirst bool

	started    bool
	base       uint64   // seen's bit 0 is number base
	from       uint64   // the first number expected
	seen       []uint64 // bit n-base set: n has arrived
	next       uint64   // one past the highest number seen
	received   uint64   // distinct numbers
	duplicates uint64
	late       uint64
}

// Add records the arrival of n.
func (c *Checker) Add(n uint64) Result {
	if c.FromFirst && !c.started {
		c.started = true
		c.from, c.next = n, n
		c.base = max(n/64*64, 64) - 64
	}
	if n < c.base || (n >= c.next && n-c.next >= MaxAhead) {
		return TooFar
	}
	c.from = min(c.from, n)
	i := n - c.base
	w, b := i/64, uint64(1)<<(i%64)
	for uint64(len(c.seen)) <= w {
		c.seen = append(c.seen, 0)
	}
	if c.seen[w]&b != 0 {
		c.duplicates++
		return Duplicate
	}
	c.seen[w] |= b
	c.received++
	if n+1 < c.next {
		c.late++
		return Late
	}
	c.next = n + 1
	return New
}

// Has reports whether n has arrived.
func (c *Checker) Has(n uint64) bool {
	if n < c.base {
		return false
	}
	i := n - c.base
	w := i / 64
	return w < uint64(len(c.seen)) && c.seen[w]&(1<<(i%64)) != 0
}

// Received returns how many distinct numbers have arrived.
func (c *Checker) Received() uint64 { return c.received }

// Duplicates returns how many arrivals repeated a number.
func (c *Checker) Duplicates() uint64 { return c.duplicates }

// Late returns how many numbers arrived after a higher one: out of order.
func (c *Checker) Late() uint64 { return c.late }

// Highest returns one past the highest number that has arrived: 0 when
// none has.
func (c *Checker) Highest() uint64 { return c.next }

// Gaps returns how many numbers below the highest one have not arrived
// (yet): missed messages, as far as the receiver can tell without knowing
// how many were sent.
func (c *Checker) Gaps() uint64 {
	if c.received == 0 {
		return 0
	}
	return c.next - c.from - c.received
}

// Missing returns how many of the numbers 0..sent-1 (from the first to
// arrive, with FromFirst) have not arrived: the messages lost, once the
// sender has said it sent that many and every one of them has been
// acknowledged.
func (c *Checker) Missing(sent uint64) uint64 {
	if sent <= c.from {
		return 0
	}
	var got uint64
	for n := c.from; n < min(sent, c.next); n++ {
		if c.Has(n) {
			got++
		}
	}
	return sent - c.from - got
}

// Unexpected returns how many distinct numbers at or above sent have
// arrived: messages the sender did not say it sent.
func (c *Checker) Unexpected(sent uint64) uint64 {
	if sent <= c.from {
		return c.received
	}
	return c.received - (sent - c.from - c.Missing(sent))
}
