package soak

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tether-iot/tether/internal/tools/soak/seqcheck"
	"github.com/tether-iot/tether/link"
)

// The soak's lines, the same both ways. run names one run of a node, so
// that a peer serving several runs in turn never mixes them up.
//
//	hello <run>                  node: a run starts; the peer resets its view
//	d <run> <stream> <n>         data message n (from 0) of a stream
//	end <run> <w> <f>            node: it stopped after w and f messages,
//	                             all acknowledged
//	end <run> <w> <f> <view...>  peer: the same, and its view of the node's
//	                             streams (see parseView)
//
// Stream "w" is written with qos and wait, so it must arrive in order;
// stream "f" with qos and no wait, in bursts of four concurrent writes.
const (
	streamWait   = "w"
	streamNoWait = "f"
	burst        = 4
)

// writer is what the streams write to: a node's client or the server's
// link of a node.
type writer interface {
	Write(ctx context.Context, line string, opts ...link.WriteOption) error
}

// streams writes the two data streams of one side of a run until stop is
// closed, then returns once every message it wrote has been acknowledged.
type streams struct {
	run      string
	interval time.Duration
	w        writer
	sent     [2]atomic.Uint64 // messages given to Write, by stream
	acked    [2]atomic.Uint64 // Write returned nil
	err      atomic.Pointer[error]
}

// loop runs both streams; it returns when stop is closed and every write
// has returned, or ctx is done.
func (s *streams) loop(ctx context.Context, stop <-chan struct{}) {
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); s.waitStream(ctx, stop) }()
	go func() { defer wg.Done(); s.burstStream(ctx, stop) }()
	wg.Wait()
}

func (s *streams) write(ctx context.Context, i int, stream string, n uint64, opts ...link.WriteOption) {
	err := s.w.Write(ctx, dataLine(s.run, stream, n), opts...)
	if err != nil {
		if ctx.Err() == nil && !errors.Is(err, link.ErrClosed) {
			err = fmt.Errorf("write %s %d: %w", stream, n, err)
			s.err.CompareAndSwap(nil, &err)
		}
		return
	}
	s.acked[i].Add(1)
}

func (s *streams) waitStream(ctx context.Context, stop <-chan struct{}) {
	for n := uint64(0); ; n++ {
		s.sent[0].Add(1)
		s.write(ctx, 0, streamWait, n)
		if !pause(ctx, stop, jitter(s.interval)) {
			return
		}
	}
}

// burstStream writes bursts of concurrent wait-free writes. Each write
// starts once the previous one has its id, so that the ids follow the
// numbers and any reordering the receiver sees is the link's doing.
func (s *streams) burstStream(ctx context.Context, stop <-chan struct{}) {
	for n := uint64(0); ; n += burst {
		var wg sync.WaitGroup
		for i := range uint64(burst) {
			s.sent[1].Add(1)
			assigned := make(chan struct{})
			returned := make(chan struct{})
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer close(returned)
				s.write(ctx, 1, streamNoWait, n+i, link.Wait(false), link.Assign(func(uint8) error {
					close(assigned)
					return nil
				}))
			}()
			select {
			case <-assigned:
			case <-returned:
			}
		}
		wg.Wait()
		if !pause(ctx, stop, jitter(burst*s.interval)) {
			return
		}
	}
}

// failure returns the first write error other than a cancellation.
func (s *streams) failure() error {
	if p := s.err.Load(); p != nil {
		return *p
	}
	return nil
}

// pause waits d; it reports false if stop is closed or ctx done first.
func pause(ctx context.Context, stop <-chan struct{}, d time.Duration) bool {
	select {
	case <-stop:
		return false
	default:
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-stop:
		return false
	case <-ctx.Done():
		return false
	}
}

// jitter returns d ± 50%, at random.
func jitter(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return d/2 + rand.N(d)
}

func dataLine(run, stream string, n uint64) string {
	return "d " + run + " " + stream + " " + strconv.FormatUint(n, 10)
}

// line is a parsed soak line.
type line struct {
	kind   string // hello, d, end
	run    string
	stream string // d
	n      uint64 // d
	sent   [2]uint64
	view   *view // a peer's end
}

func parseLine(s string) (line, error) {
	f := strings.Fields(s)
	if len(f) < 2 {
		return line{}, fmt.Errorf("soak: bad line %q", s)
	}
	l := line{kind: f[0], run: f[1]}
	var err error
	switch {
	case l.kind == "hello" && len(f) == 2:
		return l, nil
	case l.kind == "d" && len(f) == 4 && (f[2] == streamWait || f[2] == streamNoWait):
		l.stream = f[2]
		l.n, err = strconv.ParseUint(f[3], 10, 64)
	case l.kind == "end" && (len(f) == 4 || len(f) == 4+2*viewFields):
		nums := make([]uint64, len(f)-2)
		for i := range nums {
			if nums[i], err = strconv.ParseUint(f[i+2], 10, 64); err != nil {
				break
			}
		}
		l.sent = [2]uint64{nums[0], nums[1]}
		if len(nums) > 2 {
			l.view = new(view)
			l.view.set(nums[2:])
		}
	default:
		err = errors.New("unknown form")
	}
	if err != nil {
		return line{}, fmt.Errorf("soak: bad line %q: %w", s, err)
	}
	return l, nil
}

// streamView is what a receiver saw of one stream.
type streamView struct {
	Received, Lost, Duplicated, Late, Unexpected uint64
}

const viewFields = 5

// view is what a receiver saw of both streams: w and f.
type view [2]streamView

func (v *view) set(nums []uint64) {
	for i := range v {
		p := nums[i*viewFields:]
		v[i] = streamView{p[0], p[1], p[2], p[3], p[4]}
	}
}

func (v *view) String() string {
	var b strings.Builder
	for i, s := range v {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%d %d %d %d %d", s.Received, s.Lost, s.Duplicated, s.Late, s.Unexpected)
	}
	return b.String()
}

// checkers are a receiver's checkers of both streams.
type checkers [2]seqcheck.Checker

func (c *checkers) add(stream string, n uint64) {
	if stream == streamWait {
		c[0].Add(n)
	} else {
		c[1].Add(n)
	}
}

// view computes the receiver's view once the sender said how many it sent.
func (c *checkers) view(sent [2]uint64) view {
	var v view
	for i := range c {
		v[i] = streamView{
			Received:   c[i].Received(),
			Lost:       c[i].Missing(sent[i]),
			Duplicated: c[i].Duplicates(),
			Late:       c[i].Late(),
			Unexpected: c[i].Unexpected(sent[i]),
		}
	}
	return v
}
