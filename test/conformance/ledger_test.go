package conformance

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/tether-iot/tether/internal/harness/legacy"
	"github.com/tether-iot/tether/link"
)

// msg is the payload of message seq of a stream: the stream's name and the
// number, then a filler of varying length with some non-ASCII text, so
// that lines of many sizes and UTF-8 go through.
func msg(stream string, seq int) string {
	return fmt.Sprintf("%s:%d:[%d, \"µ\"]%s", stream, seq, seq, strings.Repeat("x", seq%37))
}

// parseMsg returns the stream and number of a payload made by msg.
func parseMsg(p string) (stream string, seq int, ok bool) {
	stream, rest, ok := strings.Cut(p, ":")
	if !ok {
		return "", 0, false
	}
	num, _, ok := strings.Cut(rest, ":")
	if !ok {
		return "", 0, false
	}
	seq, err := strconv.Atoi(num)
	return stream, seq, err == nil
}

// ledger checks what one side's application reads: each message of a
// stream at most once and, on ordered streams, in order with no gap.
type ledger struct {
	name string

	mu      sync.Mutex
	ch      chan struct{} // closed and replaced on each line
	streams map[string]*stream
	errs    []string
	lines   int
}

type stream struct {
	ordered bool
	next    int
	seen    map[int]int // times each number was read
}

func newLedger(name string) *ledger {
	return &ledger{name: name, ch: make(chan struct{}), streams: make(map[string]*stream)}
}

// expect declares a stream; an ordered one must arrive in order.
func (l *ledger) expect(name string, ordered bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.streams[name] = &stream{ordered: ordered, seen: make(map[int]int)}
}

// got records one payload read by the application.
func (l *ledger) got(p string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines++
	defer func() {
		close(l.ch)
		l.ch = make(chan struct{})
	}()
	name, seq, ok := parseMsg(p)
	s := l.streams[name]
	if !ok || s == nil {
		l.errs = append(l.errs, fmt.Sprintf("unexpected line %q", p))
		return
	}
	s.seen[seq]++
	switch {
	case s.seen[seq] > 1:
		l.errs = append(l.errs, fmt.Sprintf("%s %d read %d times", name, seq, s.seen[seq]))
	case s.ordered && seq != s.next:
		l.errs = append(l.errs, fmt.Sprintf("%s %d read when %d was due", name, seq, s.next))
	}
	if seq >= s.next {
		s.next = seq + 1
	}
}

// missing returns the first few numbers below n not read yet.
func (l *ledger) missing(name string, n int) []int {
	l.mu.Lock()
	defer l.mu.Unlock()
	var m []int
	for i := 0; i < n && len(m) < 10; i++ {
		if l.streams[name].seen[i] == 0 {
			m = append(m, i)
		}
	}
	return m
}

// wait blocks until n distinct messages of the stream have been read.
func (l *ledger) wait(ctx context.Context, name string, n int) error {
	for {
		l.mu.Lock()
		s, ch := l.streams[name], l.ch
		have := len(s.seen)
		l.mu.Unlock()
		if have >= n {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("%s: waiting for %d messages of %s (have %d, missing %v): %w", l.name, n, name, have, l.missing(name, n), ctx.Err())
		}
	}
}

// verify reports the errors seen and, if n >= 0, checks that messages
// 0..n-1 of the stream were all read.
func (l *ledger) verify(t *testing.T, name string, n int) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, e := range l.errs {
		t.Errorf("%s: %s", l.name, e)
	}
	l.errs = nil
	s := l.streams[name]
	for i := range n {
		if s.seen[i] == 0 {
			t.Errorf("%s: %s %d never read", l.name, name, i)
		}
	}
}

// readers runs application readers that feed ledgers until the test ends.
type readers struct {
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// newReaders returns readers stopped (and waited for) at the end of t.
func newReaders(t *testing.T) *readers {
	r := &readers{}
	r.ctx, r.cancel = context.WithCancel(context.Background())
	t.Cleanup(func() {
		r.cancel()
		r.wg.Wait()
	})
	return r
}

// start reads lines with read into l until read fails for good. A legacy
// node's restart is not the end: its next process is read on.
func (r *readers) start(t *testing.T, l *ledger, read func(context.Context) (string, error)) {
	end := t.Context() // done when the test ends: the legacy models stop with it
	r.wg.Go(func() {
		for {
			line, err := read(r.ctx)
			if errors.Is(err, legacy.ErrRestarted) {
				continue
			}
			if errors.Is(err, link.ErrClosed) {
				return // our client closed (restarted)
			}
			if err != nil {
				if r.ctx.Err() == nil && end.Err() == nil {
					t.Errorf("%s: read: %v", l.name, err)
				}
				return
			}
			l.got(strings.TrimSuffix(line, "\n"))
		}
	})
}

// writeAll writes messages from..to-1 of a stream with write, in order.
func writeAll(ctx context.Context, name string, from, to int, write func(context.Context, string) error) error {
	for i := from; i < to; i++ {
		if err := write(ctx, msg(name, i)); err != nil {
			return fmt.Errorf("write %s %d: %w", name, i, err)
		}
	}
	return nil
}

// writeSpread writes messages from..to-1 of a stream with k concurrent
// writers, writer w taking the numbers from+w, from+w+k, ...
func writeSpread(ctx context.Context, name string, from, to, k int, write func(context.Context, string) error) error {
	var wg sync.WaitGroup
	errs := make([]error, k)
	for w := range k {
		wg.Go(func() {
			for i := from + w; i < to; i += k {
				if err := write(ctx, msg(name, i)); err != nil {
					errs[w] = fmt.Errorf("write %s %d: %w", name, i, err)
					return
				}
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// writeNoWait writes messages 0..n-1 of a stream: message 0 with first,
// which must wait for its ACK, then the others with k concurrent writers
// using spread. A legacy sender whose message 00 is still unACKed when it
// sends later ids makes any receiver, ours included, take a late 00 for a
// restart (see the report in doc.go); waiting for the ACK of 00 avoids it.
func writeNoWait(ctx context.Context, name string, n, k int, first, spread func(context.Context, string) error) error {
	if err := writeAll(ctx, name, 0, 1, first); err != nil {
		return err
	}
	return writeSpread(ctx, name, 1, n, k, spread)
}

// nodeLag is how many of our messages a legacy node's application may
// have left unread when our server writes the next one.
const nodeLag = 8

// paced wraps write so that message i of a stream waits until reader has
// read i-lag messages of it. A legacy node ACKs a message before its
// application reads it and drops the 21st unread line (an outage, and the
// message is lost though ACKed); its applications must keep pace, and so
// do the tests.
func paced(reader *ledger, lag int, write func(context.Context, string) error) func(context.Context, string) error {
	return func(ctx context.Context, p string) error {
		name, seq, ok := parseMsg(p)
		if !ok {
			return fmt.Errorf("paced: bad payload %q", p)
		}
		if err := reader.wait(ctx, name, seq-lag); err != nil {
			return err
		}
		return write(ctx, p)
	}
}

// settle waits until both ledgers hold n messages from their writers,
// verifies each (exactly once, and in order where expected), and checks
// that the outages were never taken for peer restarts.
func settle(ctx context.Context, t *testing.T, ev *events, up *ledger, upName string, down *ledger, downName string, n int) {
	t.Helper()
	if err := up.wait(ctx, upName, n); err != nil {
		t.Fatal(err)
	}
	if err := down.wait(ctx, downName, n); err != nil {
		t.Fatal(err)
	}
	up.verify(t, upName, n)
	down.verify(t, downName, n)
	if got := ev.count(link.PeerRestart); got != 0 {
		t.Errorf("%d PeerRestart events: outages are not restarts", got)
	}
}
