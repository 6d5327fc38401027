package e2e

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// Directions of a message.
const (
	up   byte = 'u' // node to server
	down byte = 'd' // server to node
)

// fillerRunes make up the tail of a payload: ASCII and multi-byte UTF-8,
// so that a line cut anywhere may also cut a rune.
var fillerRunes = []rune("abcdefghijklmnopqrstuvwxyz0123456789-é→")

// payload returns the text of message seq of one writer: the node, the
// direction, the writer and the sequence number, then a filler whose length
// and content depend on all four, so that a corrupted or glued line cannot
// pass for another message.
func payload(node int, dir byte, writer, seq int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "n%d %c w%d s%d ", node, dir, writer, seq)
	n := (seq*7 + node*13 + writer*5) % 53
	for i := range n {
		b.WriteRune(fillerRunes[(seq+i+int(dir))%len(fillerRunes)])
	}
	return b.String()
}

// parse reads the fields of a payload made by payload and checks that the
// whole payload is exactly what they make.
func parse(p string) (node int, dir byte, writer, seq int, err error) {
	f := strings.SplitN(p, " ", 5)
	if len(f) != 5 || len(f[1]) != 1 {
		return 0, 0, 0, 0, fmt.Errorf("malformed payload %q", p)
	}
	nums := []*int{&node, &writer, &seq}
	for i, s := range []string{f[0], f[2], f[3]} {
		if len(s) < 2 {
			return 0, 0, 0, 0, fmt.Errorf("malformed payload %q", p)
		}
		v, err := strconv.Atoi(s[1:])
		if err != nil {
			return 0, 0, 0, 0, fmt.Errorf("malformed payload %q", p)
		}
		*nums[i] = v
	}
	dir = f[1][0]
	if want := payload(node, dir, writer, seq); p != want {
		return 0, 0, 0, 0, fmt.Errorf("corrupt payload %q, want %q", p, want)
	}
	return node, dir, writer, seq, nil
}

// streamKey names the messages of one writer.
type streamKey struct {
	node   int
	dir    byte
	writer int
}

func (k streamKey) String() string {
	return fmt.Sprintf("node %d %c writer %d", k.node, k.dir, k.writer)
}

// stream is what one writer wrote and what its reader received.
type stream struct {
	written   int     // Write returned nil for seq 0..written-1
	got       []uint8 // arrivals by seq
	next      int     // the seq expected next, in order
	delivered int     // distinct seqs received
}

// checker records what writers wrote and readers received, and tells
// loss, duplicates, reordering and corruption. It is safe for concurrent
// use; waiters are woken on every change.
type checker struct {
	mu      sync.Mutex
	changed chan struct{} // closed and replaced on every change
	streams map[streamKey]*stream
	byDir   map[[2]int]int // distinct messages received by {node, dir}
	written map[byte]int   // successful writes by direction

	dups, reordered, corrupt int
	samples                  []string // the first anomalies, for the report
	writeErrs                []string
}

func newChecker() *checker {
	return &checker{
		changed: make(chan struct{}),
		streams: make(map[streamKey]*stream),
		byDir:   make(map[[2]int]int),
		written: make(map[byte]int),
	}
}

func (c *checker) stream(k streamKey) *stream {
	s := c.streams[k]
	if s == nil {
		s = &stream{}
		c.streams[k] = s
	}
	return s
}

func (c *checker) notify() {
	close(c.changed)
	c.changed = make(chan struct{})
}

// anomaly records a problem. c.mu is held.
func (c *checker) anomaly(format string, args ...any) {
	if len(c.samples) < 20 {
		c.samples = append(c.samples, fmt.Sprintf(format, args...))
	}
}

// wrote records that Write of seq returned nil.
func (c *checker) wrote(k streamKey, seq int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.stream(k)
	if seq != s.written {
		c.anomaly("%v: wrote seq %d after %d writes", k, seq, s.written)
	}
	s.written = seq + 1
	c.written[k.dir]++
	c.notify()
}

// writeFailed records a Write that returned an error before Close.
func (c *checker) writeFailed(k streamKey, seq int, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.writeErrs = append(c.writeErrs, fmt.Sprintf("%v seq %d: %v", k, seq, err))
	c.notify()
}

// received records payload p read by the reader of node's direction dir.
// Each writer's messages must arrive in the order written: a writer sends
// its next message only once the previous one is acknowledged, which the
// receiver does after queueing it, so even with Wait(false) its own
// messages cannot overtake each other.
func (c *checker) received(node int, dir byte, p string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	defer c.notify()
	n, d, w, seq, err := parse(p)
	if err == nil && (n != node || d != dir) {
		err = fmt.Errorf("payload %q read from node %d direction %c", p, node, dir)
	}
	if err != nil {
		c.corrupt++
		c.anomaly("%v", err)
		return
	}
	k := streamKey{n, d, w}
	s := c.stream(k)
	for len(s.got) <= seq {
		s.got = append(s.got, 0)
	}
	s.got[seq]++
	switch {
	case s.got[seq] > 1:
		c.dups++
		c.anomaly("%v: seq %d delivered %d times", k, seq, s.got[seq])
		return
	case seq != s.next:
		c.reordered++
		c.anomaly("%v: seq %d delivered when %d was expected", k, seq, s.next)
	}
	s.next = max(s.next, seq+1)
	s.delivered++
	c.byDir[[2]int{node, int(dir)}]++
}

// count returns how many distinct messages node has received in direction
// dir, and a channel closed at the next change.
func (c *checker) count(node int, dir byte) (int, <-chan struct{}) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.byDir[[2]int{node, int(dir)}], c.changed
}

// waitProgress waits until node has received n more messages each way
// than it had when called.
func (c *checker) waitProgress(ctx context.Context, node, n int) error {
	u0, _ := c.count(node, up)
	d0, _ := c.count(node, down)
	for {
		u, ch := c.count(node, up)
		d, _ := c.count(node, down)
		if u >= u0+n && d >= d0+n {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("node %d: waiting for %d messages each way (got %d up, %d down): %w", node, n, u-u0, d-d0, ctx.Err())
		}
	}
}

// waitComplete waits until every message written has been received.
func (c *checker) waitComplete(ctx context.Context) error {
	for {
		c.mu.Lock()
		missing, ch := 0, c.changed
		for _, s := range c.streams {
			missing += max(s.written-s.delivered, 0)
		}
		c.mu.Unlock()
		if missing == 0 {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("%d messages written were never received: %w", missing, ctx.Err())
		}
	}
}

// verify compares, for every writer, the set of messages written with the
// set received, and returns every discrepancy; none means exactly-once
// delivery (and per-writer order).
func (c *checker) verify() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var errs []string
	errs = append(errs, c.writeErrs...)
	keys := make([]streamKey, 0, len(c.streams))
	for k := range c.streams {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i].String() < keys[j].String() })
	for _, k := range keys {
		s := c.streams[k]
		var lost, dup, extra []int
		for seq := range max(s.written, len(s.got)) {
			n := uint8(0)
			if seq < len(s.got) {
				n = s.got[seq]
			}
			switch {
			case seq >= s.written && n > 0:
				extra = append(extra, seq)
			case seq < s.written && n == 0:
				lost = append(lost, seq)
			case n > 1:
				dup = append(dup, seq)
			}
		}
		if len(lost)+len(dup)+len(extra) > 0 {
			errs = append(errs, fmt.Sprintf("%v: %d written; lost %v, duplicated %v, received but not written %v",
				k, s.written, head(lost), head(dup), head(extra)))
		}
	}
	if c.dups+c.reordered+c.corrupt > 0 {
		errs = append(errs, fmt.Sprintf("%d duplicates, %d out of order, %d corrupt; first: %s",
			c.dups, c.reordered, c.corrupt, strings.Join(c.samples, "; ")))
	}
	return errs
}

// totals returns the messages written each way.
func (c *checker) totals() (ups, downs int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.written[up], c.written[down]
}

func head(s []int) []int {
	if len(s) > 10 {
		return s[:10]
	}
	return s
}

// TestChecker makes sure the checker is not blind: each kind of fault it
// must catch is reported.
func TestChecker(t *testing.T) {
	k := streamKey{1, up, 0}
	tests := []struct {
		name string
		recv []int // seqs received, in order
		want string
	}{
		{"exact", []int{0, 1, 2}, ""},
		{"lost", []int{0, 2}, "lost [1]"},
		{"duplicate", []int{0, 1, 1, 2}, "duplicated [1]"},
		{"reordered", []int{0, 2, 1}, "out of order"},
		{"not written", []int{0, 1, 2, 3}, "received but not written [3]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newChecker()
			for seq := range 3 {
				c.wrote(k, seq)
			}
			for _, seq := range tt.recv {
				c.received(k.node, k.dir, payload(k.node, k.dir, k.writer, seq))
			}
			got := strings.Join(c.verify(), "\n")
			if (tt.want == "" && got != "") || !strings.Contains(got, tt.want) {
				t.Errorf("verify() = %q, want %q", got, tt.want)
			}
		})
	}
	bad := map[string]string{
		"glued":       payload(1, up, 0, 7)[:9] + payload(1, up, 0, 8),
		"truncated":   payload(1, up, 0, 30)[:20],
		"other node":  payload(2, up, 0, 0),
		"wrong way":   payload(1, down, 0, 0),
		"not a match": "n1 u w0 s0 x",
	}
	for name, p := range bad {
		c := newChecker()
		c.received(1, up, p)
		if got := strings.Join(c.verify(), "\n"); !strings.Contains(got, "1 corrupt") {
			t.Errorf("%s payload %q: verify() = %q, want it corrupt", name, p, got)
		}
	}
}
