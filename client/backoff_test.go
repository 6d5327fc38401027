package client

import (
	"context"
	"errors"
	"log/slog"
	"math"
	"math/rand/v2"
	"net"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tether-iot/tether/internal/harness/testutil"
)

// defaultRanges are the ranges of the waits with the default delays
// (2T and 16T): attempt 1 after an outage, 2, 3, 4 and after.
var defaultRanges = [][2]time.Duration{{2 * T, 3 * T}, {3 * T, 6 * T}, {6 * T, 12 * T}, {8 * T, 16 * T}}

// rangeOf returns the range of the wait before the given attempt (1, ...).
func rangeOf(attempt int) [2]time.Duration {
	return defaultRanges[min(attempt, len(defaultRanges))-1]
}

func seeded() func(int64) int64 { return rand.New(rand.NewPCG(1, 2)).Int64N }

// The waits start at the lowest, highest or a random point of each range;
// the ranges double up to the cap, and reset starts them afresh.
func TestBackoffRanges(t *testing.T) {
	for name, randN := range map[string]func(int64) int64{
		"lowest":  func(int64) int64 { return 0 },
		"highest": func(n int64) int64 { return n - 1 },
		"random":  seeded(),
	} {
		b := backoff{base: 2 * T, max: 16 * T, randN: randN}
		for round := range 2 {
			var prev time.Duration
			for i := 1; i <= 8; i++ {
				d, n := b.next()
				r := rangeOf(i)
				if n != i || d < r[0] || d > r[1] {
					t.Fatalf("%s, round %d: wait %d is %v (attempt %d), want %v to %v (attempt %d)", name, round, i, d, n, r[0], r[1], i)
				}
				if name == "lowest" && d != r[0] || name == "highest" && d != r[1] {
					t.Fatalf("%s: wait %d is %v, want %v", name, i, d, r)
				}
				if d < prev && i < len(defaultRanges) { // the ranges overlap at the cap
					t.Fatalf("%s: wait %d (%v) is shorter than wait %d (%v)", name, i, d, i-1, prev)
				}
				prev = d
			}
			b.reset()
		}
	}
}

// A cap equal to the base is the legacy fixed wait; a cap a little above
// it bounds the jitter; a huge cap does not overflow.
func TestBackoffCaps(t *testing.T) {
	highest := func(n int64) int64 { return n - 1 }
	fixed := backoff{base: 2 * T, max: 2 * T, randN: highest}
	near := backoff{base: 2 * T, max: 2*T + T/4, randN: highest}
	huge := backoff{base: 2 * T, max: math.MaxInt64, randN: highest}
	var prev time.Duration
	for range 100 {
		if d, _ := fixed.next(); d != 2*T {
			t.Fatalf("cap = base: wait %v, want 2T", d)
		}
		if d, _ := near.next(); d != 2*T+T/4 {
			t.Fatalf("cap = 2T + T/4: wait %v, want the cap", d)
		}
		d, _ := huge.next()
		if d < prev || d <= 0 {
			t.Fatalf("huge cap: wait %v after %v", d, prev)
		}
		prev = d
	}
}

func TestBackoffConfig(t *testing.T) {
	base := Config{ID: "n", Server: "x", Timeout: T}
	cfg, err := base.withDefaults()
	if err != nil || cfg.ReconnectDelay != 2*T || cfg.MaxReconnectDelay != 16*T || cfg.randN == nil {
		t.Fatalf("defaults: %v, %v, %v", cfg.ReconnectDelay, cfg.MaxReconnectDelay, err)
	}
	base.ReconnectDelay = time.Second
	if cfg, err = base.withDefaults(); err != nil || cfg.MaxReconnectDelay != 8*time.Second {
		t.Fatalf("ReconnectDelay 1 s: MaxReconnectDelay %v, %v; want 8 s", cfg.MaxReconnectDelay, err)
	}
	base.MaxReconnectDelay = time.Second
	if _, err = base.withDefaults(); err != nil {
		t.Fatalf("MaxReconnectDelay = ReconnectDelay: %v", err)
	}
	for _, bad := range []Config{
		{ID: "n", Server: "x", ReconnectDelay: -time.Second},
		{ID: "n", Server: "x", ReconnectDelay: time.Second, MaxReconnectDelay: time.Second / 2},
		{ID: "n", Server: "x", MaxReconnectDelay: -time.Second},
	} {
		if _, err := bad.withDefaults(); err == nil {
			t.Errorf("%v, %v: no error", bad.ReconnectDelay, bad.MaxReconnectDelay)
		}
	}
}

// logRecorder is a slog.Handler that keeps the records with one message.
type logRecorder struct {
	msg  string
	mu   sync.Mutex
	recs []slog.Record
}

func (h *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (h *logRecorder) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *logRecorder) WithGroup(string) slog.Handler            { return h }
func (h *logRecorder) Handle(_ context.Context, r slog.Record) error {
	if r.Message == h.msg {
		h.mu.Lock()
		h.recs = append(h.recs, r.Clone())
		h.mu.Unlock()
	}
	return nil
}

// retries returns the attempt and delay of each record.
func (h *logRecorder) retries() (attempts []int64, delays []time.Duration) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, r := range h.recs {
		r.Attrs(func(a slog.Attr) bool {
			switch a.Key {
			case "attempt":
				attempts = append(attempts, a.Value.Int64())
			case "delay":
				delays = append(delays, a.Value.Duration())
			}
			return true
		})
	}
	return attempts, delays
}

// dialRecorder wraps a fake server's dial to report each attempt.
func dialRecorder(srv *fakeServer) (func(context.Context, string, string) (net.Conn, error), <-chan time.Time) {
	dials := make(chan time.Time, 64)
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := srv.dial(ctx, network, addr)
		dials <- time.Now()
		return conn, err
	}, dials
}

func (s *fakeServer) set(refuse, hangup bool) {
	s.mu.Lock()
	s.refuse, s.hangup = refuse, hangup
	s.mu.Unlock()
}

// Failed attempts (refused, a socket closed before the link came up, a
// link up for less than 2T) make the waits grow up to the cap, with
// jitter; a link up for 2T starts them afresh. Each wait is logged with
// its attempt number and delay.
func TestReconnectBackoff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := newFakeServer(t)
		dial, dials := dialRecorder(srv)
		logs := &logRecorder{msg: "reconnecting"}
		c := dialTest(t, Config{Dial: dial, Logger: slog.New(logs), randN: seeded()})
		<-dials
		if err := c.WaitUp(t.Context()); err != nil {
			t.Fatal(err)
		}
		time.Sleep(3 * T) // stable
		var gaps []time.Duration
		prev := time.Now()
		redial := func(attempt int) {
			t.Helper()
			at := <-dials
			gap := at.Sub(prev)
			r := rangeOf(attempt)
			if gap < r[0] || gap > r[1] {
				t.Fatalf("attempt %d came %v after the previous one, want %v to %v", attempt, gap, r[0], r[1])
			}
			gaps = append(gaps, gap)
			prev = at
		}
		cutAfter := func(up time.Duration) {
			t.Helper()
			if err := c.WaitUp(t.Context()); err != nil {
				t.Fatal(err)
			}
			time.Sleep(up)
			srv.cut()
			prev = time.Now()
		}

		srv.set(true, false)
		srv.cut()
		redial(1) // refused
		srv.set(false, true)
		redial(2) // accepted, closed by the server before the link is up
		srv.set(false, false)
		redial(3)
		cutAfter(T) // up, but not stable
		srv.set(true, false)
		redial(4)
		redial(5) // refused again: stays at the cap
		srv.set(false, false)
		redial(6)
		cutAfter(2 * T) // stable
		redial(1)
		if err := c.WaitUp(t.Context()); err != nil {
			t.Fatal(err)
		}

		attempts, delays := logs.retries()
		want := []int64{1, 2, 3, 4, 5, 6, 1}
		if len(attempts) != len(want) || len(delays) != len(gaps) {
			t.Fatalf("logged attempts %v, delays %v; want attempts %v, delays %v", attempts, delays, want, gaps)
		}
		for i := range want {
			if attempts[i] != want[i] || delays[i] != gaps[i] {
				t.Fatalf("logged attempts %v, delays %v; want attempts %v, delays %v", attempts, delays, want, gaps)
			}
		}
	})
}

// At start-up, a BadServer hook that keeps trying gets the same waits.
func TestStartupBackoff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := newFakeServer(t)
		srv.refuse = true
		ctx, cancel := context.WithCancel(t.Context())
		var times []time.Time
		dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
			if times = append(times, time.Now()); len(times) == 6 {
				cancel()
			}
			return srv.dial(ctx, network, addr)
		}
		_, err := Dial(ctx, Config{ID: "n", Server: "gw.test", Timeout: T, Dial: dial, randN: seeded(),
			BadServer: func(context.Context, error) error { return nil },
			Logger:    testutil.Logger()})
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Dial: %v, want context.Canceled", err)
		}
		for i := 1; i < len(times); i++ {
			gap, r := times[i].Sub(times[i-1]), rangeOf(i)
			if gap < r[0] || gap > r[1] {
				t.Fatalf("attempt %d came %v after the previous one, want %v to %v", i, gap, r[0], r[1])
			}
		}
	})
}

// Close during a wait returns at once, and stops the client's goroutines
// (synctest.Test fails if any is left blocked; goleak checks the rest).
func TestCloseDuringBackoff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := newFakeServer(t)
		dial, dials := dialRecorder(srv)
		c := dialTest(t, Config{Dial: dial, Radio: &fakeRadio{}})
		<-dials
		if err := c.WaitUp(t.Context()); err != nil {
			t.Fatal(err)
		}
		srv.set(true, false)
		srv.cut()
		<-dials         // refused: the client waits 3T to 6T
		synctest.Wait() // until it is blocked in that wait
		start := time.Now()
		c.Close()
		if d := time.Since(start); d != 0 {
			t.Fatalf("Close took %v of a backoff wait", d)
		}
		time.Sleep(20 * T)
		select {
		case <-dials:
			t.Fatal("the client dialled after Close")
		default:
		}
	})
}
