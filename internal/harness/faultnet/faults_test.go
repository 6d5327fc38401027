package faultnet

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"syscall"
	"testing"
	"time"
)

func TestCut(t *testing.T) {
	p, srv := startProxy(t, Config{}, false)
	c, s := pair(t, p, srv)
	write(t, c, "a\n")
	expect(t, s, "a\n")

	p.Cut()
	expectErr(t, c, io.EOF)
	expectErr(t, s, io.EOF)
	if st := p.Stats(); st.Cuts != 1 || p.Conns() != 0 {
		t.Errorf("after Cut: Stats %+v, Conns %d; want 1 cut, 0 conns", st, p.Conns())
	}

	// The proxy still serves new connections.
	c2, s2 := pair(t, p, srv)
	write(t, c2, "again\n")
	expect(t, s2, "again\n")
}

func TestReset(t *testing.T) {
	p, srv := startProxy(t, Config{}, false)
	c, s := pair(t, p, srv)
	write(t, c, "a\n")
	expect(t, s, "a\n")

	p.Reset()
	expectErr(t, c, syscall.ECONNRESET)
	expectErr(t, s, syscall.ECONNRESET)
	if st := p.Stats(); st.Resets != 1 || st.Cuts != 0 {
		t.Errorf("after Reset: Stats %+v, want 1 reset", st)
	}
}

// blackholeFor is how long the blackholes of the tests below last: far
// longer than the few steps each test takes during one, even on a slow,
// shared machine, and each test checks afterwards that they did fit.
const blackholeFor = 3 * time.Second

// stillOn fails the test if the blackhole that done belongs to has ended:
// the steps taken during it were meant to run while it was on.
func stillOn(t *testing.T, done <-chan struct{}) {
	t.Helper()
	select {
	case <-done:
		t.Fatalf("the blackhole (%v) ended before the checks made during it were done: machine too slow?", blackholeFor)
	default:
	}
}

func TestBlackhole(t *testing.T) {
	t.Parallel() // mostly waits for the blackhole to end
	tr := newTranscript(t)
	p, srv := startProxy(t, Config{Record: tr}, false)
	c, s := pair(t, p, srv)
	write(t, c, "before\n")
	expect(t, s, "before\n")

	done := p.Blackhole(blackholeFor)
	// A connection opened now is accepted but never reaches the server.
	limbo := dial(t, p)
	write(t, limbo, "limbo\n")
	write(t, c, "lost c2s\n")
	write(t, s, "lost s2c\n")
	tr.waitFor(droppedData(2, C2S, "limbo\n"), "limbo bytes dropped")
	tr.waitFor(droppedData(1, C2S, "lost c2s\n"), "c2s bytes dropped")
	tr.waitFor(droppedData(1, S2C, "lost s2c\n"), "s2c bytes dropped")
	// Neither bytes nor EOF arrive during the blackhole.
	expectSilence(t, c, 50*time.Millisecond)
	expectSilence(t, s, 50*time.Millisecond)
	stillOn(t, done)

	wait(t, done, "the blackhole to end")
	expectErr(t, limbo, io.EOF)
	select {
	case sc := <-srv.conns:
		t.Fatalf("server saw the connection made during the blackhole: %v", sc.RemoteAddr())
	default:
	}
	// Traffic flows again; what was sent during the blackhole is gone.
	write(t, c, "after\n")
	expect(t, s, "after\n")
	write(t, s, "after too\n")
	expect(t, c, "after too\n")

	st := p.Stats()
	if want := int64(len("limbo\nlost c2s\nlost s2c\n")); st.Blackholes != 1 || st.Dropped != want {
		t.Errorf("Stats() = %+v, want 1 blackhole, %d dropped", st, want)
	}
}

func TestBlackholeHoldsClose(t *testing.T) {
	t.Parallel() // mostly waits for the blackhole to end
	tr := newTranscript(t)
	p, srv := startProxy(t, Config{Record: tr}, false)
	c, s := pair(t, p, srv)
	write(t, c, "x")
	expect(t, s, "x")

	done := p.Blackhole(blackholeFor)
	_ = c.Close()
	tr.waitFor(func(r rec) bool { return r.Ev == "eof" && r.Dir == "c2s" }, "client eof")
	expectSilence(t, s, 50*time.Millisecond)
	stillOn(t, done)
	wait(t, done, "the blackhole to end")
	expectErr(t, s, io.EOF)
}

func TestRefuse(t *testing.T) {
	p, srv := startProxy(t, Config{}, false)
	c, s := pair(t, p, srv)
	addr := p.Addr()

	done := p.Refuse(200 * time.Millisecond)
	if _, err := net.Dial("tcp", addr); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("dial while refusing: %v, want ECONNREFUSED", err)
	}
	// The live connection is untouched.
	write(t, c, "still\n")
	expect(t, s, "still\n")
	write(t, s, "here\n")
	expect(t, c, "here\n")

	wait(t, done, "the refusal to end")
	if p.Addr() != addr {
		t.Errorf("Addr() = %s after Refuse, want %s", p.Addr(), addr)
	}
	c2, s2 := pair(t, p, srv)
	write(t, c2, "new\n")
	expect(t, s2, "new\n")
	if st := p.Stats(); st.Refusals != 1 || st.Accepted != 2 {
		t.Errorf("Stats() = %+v, want 1 refusal, 2 accepted", st)
	}
}

func TestTrickle(t *testing.T) {
	writes := make(chan int, 64)
	cfg := Config{onWrite: func(dir Dir, n int) {
		if dir == C2S {
			writes <- n
		}
	}}
	p, srv := startProxy(t, cfg, false)
	c, s := pair(t, p, srv)

	p.SetTrickle(true)
	write(t, c, "hello\n")
	expect(t, s, "hello\n")
	for i := range len("hello\n") {
		if n := <-writes; n != 1 {
			t.Fatalf("write %d while trickling: %d bytes, want 1", i, n)
		}
	}

	p.SetTrickle(false)
	write(t, c, "world\n")
	expect(t, s, "world\n")
	if n := <-writes; n != len("world\n") {
		t.Errorf("write after trickling: %d bytes, want %d", n, len("world\n"))
	}
}

func TestDelayKeepsOrder(t *testing.T) {
	const delay = 100 * time.Millisecond
	p, srv := startProxy(t, Config{}, false)
	c, s := pair(t, p, srv)
	p.SetDelay(delay)

	start := time.Now()
	var want bytes.Buffer
	for i := range 20 {
		line := string(rune('a'+i)) + "\n"
		want.WriteString(line)
		write(t, c, line)
		write(t, s, line)
	}
	expect(t, s, want.String())
	expect(t, c, want.String())
	if el := time.Since(start); el < delay {
		t.Errorf("delivered after %v, want at least %v", el, delay)
	}

	p.SetDelay(0)
	start = time.Now()
	write(t, c, "now\n")
	expect(t, s, "now\n")
	if el := time.Since(start); el >= delay {
		t.Logf("undelayed chunk took %v", el) // slow machine; not a failure
	}
}

func TestFilterCutAfter(t *testing.T) {
	tr := newTranscript(t)
	filter := func(dir Dir, conn int, data []byte) Action {
		if dir == C2S && bytes.Contains(data, []byte("last")) {
			return CutAfter
		}
		return Forward
	}
	p, srv := startProxy(t, Config{Filter: filter, Record: tr}, false)
	c, s := pair(t, p, srv)

	write(t, c, "last\n")
	expect(t, s, "last\n")
	expectErr(t, s, io.EOF)
	expectErr(t, c, io.EOF)
	tr.waitFor(func(r rec) bool { return r.Ev == "close" && r.RST != nil && !*r.RST }, "close with FIN")
	if st := p.Stats(); st.Cuts != 1 {
		t.Errorf("Cuts = %d, want 1", st.Cuts)
	}
}

func TestFilterDropAndCutBefore(t *testing.T) {
	seen := make(chan string, 16)
	filter := func(dir Dir, conn int, data []byte) Action {
		seen <- string(data)
		switch {
		case dir != C2S:
			return Forward
		case bytes.HasPrefix(data, []byte("drop")):
			return Drop
		case bytes.HasPrefix(data, []byte("kill")):
			return CutBefore
		}
		return Forward
	}
	p, srv := startProxy(t, Config{Filter: filter}, false)
	c, s := pair(t, p, srv)

	write(t, c, "drop\n")
	if got := <-seen; got != "drop\n" {
		t.Fatalf("filter saw %q first", got)
	}
	write(t, c, "keep\n")
	expect(t, s, "keep\n") // not "drop\n"
	<-seen
	write(t, c, "kill\n")
	expectErr(t, s, io.EOF) // without "kill\n"
	expectErr(t, c, io.EOF)
	if st := p.Stats(); st.Dropped != int64(len("drop\nkill\n")) || st.Cuts != 1 || st.BytesC2S != int64(len("keep\n")) {
		t.Errorf("Stats() = %+v, want 10 dropped, 1 cut, 5 forwarded", st)
	}
}

func TestRandomCuts(t *testing.T) {
	p, srv := startProxy(t, Config{}, false)
	c, _ := pair(t, p, srv)

	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		errc <- p.Random(ctx, rand.New(rand.NewPCG(1, 2)), 5*time.Millisecond, Fault{Kind: FaultCut})
	}()
	expectErr(t, c, io.EOF)
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Errorf("Random = %v, want context.Canceled", err)
	}
}

func TestRandomArgsAndClose(t *testing.T) {
	p, _ := startProxy(t, Config{}, false)
	ctx := context.Background()
	bad := [][]Fault{nil, {{Kind: FaultBlackhole}}, {{Kind: FaultKind(99)}}}
	for _, faults := range bad {
		if err := p.Random(ctx, nil, time.Millisecond, faults...); err == nil {
			t.Errorf("Random(%v) succeeded", faults)
		}
	}
	if err := p.Random(ctx, nil, 0, Fault{Kind: FaultCut}); err == nil {
		t.Error("Random with zero interval succeeded")
	}
	errc := make(chan error, 1)
	go func() { errc <- p.Random(ctx, nil, time.Hour, Fault{Kind: FaultCut}) }()
	_ = p.Close()
	if err := <-errc; !errors.Is(err, net.ErrClosed) {
		t.Errorf("Random after Close = %v, want net.ErrClosed", err)
	}
}

// TestRandomSoak runs every kind of fault against clients that keep
// reconnecting and echoing, to shake out races and leaks.
func TestRandomSoak(t *testing.T) {
	p, _ := startProxy(t, Config{}, true)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()

	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() { soakClient(ctx, p.Addr(), i) })
	}
	err := p.Random(ctx, rand.New(rand.NewPCG(3, 4)), 10*time.Millisecond,
		Fault{Kind: FaultCut}, Fault{Kind: FaultReset},
		Fault{Kind: FaultBlackhole, For: 20 * time.Millisecond},
		Fault{Kind: FaultRefuse, For: 20 * time.Millisecond})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Random = %v, want context.DeadlineExceeded", err)
	}
	wg.Wait()
	st := p.Stats()
	t.Logf("soak: %+v", st)
	if st.Cuts+st.Resets+st.Blackholes+st.Refusals == 0 || st.Accepted == 0 {
		t.Errorf("soak injected nothing: %+v", st)
	}
}

// soakClient connects, echoes lines until the link fails, and reconnects
// after a short back-off (as a node does), until ctx ends.
func soakClient(ctx context.Context, addr string, id int) {
	backoff := time.NewTimer(0)
	defer backoff.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-backoff.C:
		}
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", addr)
		if err == nil {
			stop := context.AfterFunc(ctx, func() { _ = c.Close() })
			line := []byte{byte('a' + id), '\n'}
			buf := make([]byte, 2)
			for err == nil {
				if _, err = c.Write(line); err == nil {
					_ = c.SetReadDeadline(time.Now().Add(50 * time.Millisecond)) // a blackhole ends the link
					_, err = io.ReadFull(c, buf)
				}
			}
			stop()
			_ = c.Close()
		}
		backoff.Reset(5 * time.Millisecond)
	}
}
