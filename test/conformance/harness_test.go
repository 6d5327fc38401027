package conformance

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tether-iot/tether/client"
	"github.com/tether-iot/tether/internal/harness/faultnet"
	"github.com/tether-iot/tether/internal/harness/lagprobe"
	"github.com/tether-iot/tether/internal/harness/legacy"
	"github.com/tether-iot/tether/internal/harness/testutil"
	"github.com/tether-iot/tether/link"
	"github.com/tether-iot/tether/server"
)

// end is our end of a link: a server's *link.Link or a *client.Client.
type end interface {
	Write(ctx context.Context, line string, opts ...link.WriteOption) error
	ReadLine(ctx context.Context) (string, error)
	Buffered() int
	Stats() link.Stats
}

// T is the link timeout of every test, on both sides. The legacy models
// scale their fixed delays with it (the node's ID delay is T/40, the
// legacy server's write pause T/10); our server keeps its own 200 ms
// write pause, the legacy value.
const T = 250 * time.Millisecond

// failsafe bounds each test; reaching it is a failure (something hung).
const failsafe = 45 * time.Second

func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), failsafe)
	t.Cleanup(cancel)
	return ctx
}

// events collects the link events of one side and lets a test wait for
// one, past or future.
type events struct {
	mu  sync.Mutex
	evs []link.Event
	ch  chan struct{} // closed and replaced on each event
}

func newEvents() *events { return &events{ch: make(chan struct{})} }

func (e *events) add(ev link.Event) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.evs = append(e.evs, ev)
	close(e.ch)
	e.ch = make(chan struct{})
}

// wait returns the first event, past or future, that pred accepts.
func (e *events) wait(ctx context.Context, what string, pred func(link.Event) bool) (link.Event, error) {
	seen := 0
	for {
		e.mu.Lock()
		for ; seen < len(e.evs); seen++ {
			if pred(e.evs[seen]) {
				ev := e.evs[seen]
				e.mu.Unlock()
				return ev, nil
			}
		}
		ch := e.ch
		e.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return link.Event{}, fmt.Errorf("waiting for %s: %w (events: %v)", what, ctx.Err(), e.all())
		}
	}
}

// waitUp waits for the Up event of the connects-th socket.
func (e *events) waitUp(ctx context.Context, connects int) error {
	_, err := e.wait(ctx, fmt.Sprintf("up #%d", connects), func(ev link.Event) bool {
		return ev.Kind == link.Up && ev.Connects == connects
	})
	return err
}

// waitDown waits for the Down event of the connects-th socket.
func (e *events) waitDown(ctx context.Context, connects int) error {
	_, err := e.wait(ctx, fmt.Sprintf("down #%d", connects), func(ev link.Event) bool {
		return ev.Kind == link.Down && ev.Connects == connects
	})
	return err
}

// stallTimeout finds an outage that the process's stalls explain: a Down
// event for silence (link.ErrTimeout) with at least need of the window
// before it stalled (see lagprobe). A link times out, as it must, when its
// peer is silent for its timeout; in a test whose peer is never silent
// that long but for the stall, the outage is the machine's doing.
func (e *events) stallTimeout(probe *lagprobe.Probe, window, need time.Duration) (at time.Time, stalled time.Duration, ok bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, ev := range e.evs {
		if ev.Kind != link.Down || !errors.Is(ev.Err, link.ErrTimeout) {
			continue
		}
		if st := probe.MaxStalled(ev.Time.Add(-window), ev.Time, window); st >= need {
			return ev.Time, st, true
		}
	}
	return time.Time{}, 0, false
}

// stallDown is stallTimeout for an outage of any kind: a peer's timeout
// shows here as the socket's end.
func (e *events) stallDown(probe *lagprobe.Probe, window, need time.Duration) (at time.Time, stalled time.Duration, ok bool) {
	e.mu.Lock()
	downs := []time.Time{}
	for _, ev := range e.evs {
		if ev.Kind == link.Down {
			downs = append(downs, ev.Time)
		}
	}
	e.mu.Unlock()
	for _, at := range downs {
		if st := probe.MaxStalled(at.Add(-window), at, window); st >= need {
			return at, st, true
		}
	}
	return time.Time{}, 0, false
}

func (e *events) count(kind link.EventKind) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := 0
	for _, ev := range e.evs {
		if ev.Kind == kind {
			n++
		}
	}
	return n
}

func (e *events) all() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	var s []string
	for _, ev := range e.evs {
		s = append(s, fmt.Sprintf("%s#%d", ev.Kind, ev.Connects))
	}
	return s
}

// killListener is our server's listener. It keeps the sockets it accepted
// so that a test can close the server's end of them: an outage seen first
// by the server.
type killListener struct {
	net.Listener
	opaque bool // hand the server opaqueConns (no TCP evidence)
	mu     sync.Mutex
	conns  []net.Conn
}

func (l *killListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.mu.Lock()
		l.conns = append(l.conns, c)
		l.mu.Unlock()
		if l.opaque {
			c = opaqueConn{c}
		}
	}
	return c, err
}

// kill closes the server's end of every socket accepted so far.
func (l *killListener) kill() {
	l.mu.Lock()
	conns := l.conns
	l.conns = nil
	l.mu.Unlock()
	for _, c := range conns {
		c.Close()
	}
}

// ourServer is a Tether server on loopback with its events.
type ourServer struct {
	*server.Server
	addr   string
	ln     *killListener
	events *events
}

// startServer starts our server on 127.0.0.1:0; cfg's zero Timeout means
// T. It is closed at the end of the test.
func startServer(t *testing.T, cfg server.Config) *ourServer {
	t.Helper()
	return startServerOn(t, cfg, false)
}

// startServerOn is startServer; with opaque, the server's sockets hide
// their TCP state from it (see opaqueConn).
func startServerOn(t *testing.T, cfg server.Config, opaque bool) *ourServer {
	t.Helper()
	if cfg.Timeout == 0 {
		cfg.Timeout = T
	}
	cfg.Logger = testutil.Logger()
	s := &ourServer{events: newEvents()}
	cfg.OnEvent = s.events.add
	srv, err := server.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.Server, s.addr, s.ln = srv, ln.Addr().String(), &killListener{Listener: ln, opaque: opaque}
	var serving sync.WaitGroup
	serving.Go(func() { _ = srv.Serve(s.ln) })
	t.Cleanup(func() {
		srv.Close()
		serving.Wait()
	})
	return s
}

// killDialer dials for our client and keeps its sockets, so that a test
// can close the client's end of them: an outage seen first by the client.
type killDialer struct {
	mu    sync.Mutex
	conns []net.Conn
}

func (d *killDialer) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	nd := net.Dialer{Timeout: T}
	c, err := nd.DialContext(ctx, network, addr)
	if err == nil {
		d.mu.Lock()
		d.conns = append(d.conns, c)
		d.mu.Unlock()
	}
	return c, err
}

// kill makes the client's socket fail under it: reads see the end of the
// stream, so the client declares an outage and closes the socket.
//
// It does not close the socket itself: the client would then stop for
// good (see the report in doc.go: a read error wrapping net.ErrClosed is
// taken for link.ErrClosed).
func (d *killDialer) kill() {
	d.mu.Lock()
	conns := d.conns
	d.conns = nil
	d.mu.Unlock()
	for _, c := range conns {
		if tc, ok := c.(*net.TCPConn); ok {
			tc.CloseRead()
		}
	}
}

// ourClient dials our client with cfg, whose zero Timeout means T, and
// sends its events to ev. It is closed at the end of the test.
func ourClient(ctx context.Context, t *testing.T, cfg client.Config, ev *events) *client.Client {
	t.Helper()
	if cfg.Timeout == 0 {
		cfg.Timeout = T
	}
	cfg.Logger = testutil.Logger()
	cfg.OnEvent = ev.add
	if cfg.ReconnectDelay == 0 {
		cfg.ReconnectDelay = 2 * cfg.Timeout
	}
	cfg.MaxReconnectDelay = cfg.ReconnectDelay // the legacy node's fixed wait
	c, err := client.Dial(ctx, cfg)
	if err != nil {
		t.Fatalf("client %s: dial: %v", cfg.ID, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// legacyNode starts a legacy node model that connects to addr at once and,
// after an outage, reconnects after the legacy 2T pause (the WiFi delays
// are left out: they change nothing on the wire).
func legacyNode(t *testing.T, id, addr string) *legacy.Node {
	t.Helper()
	n, err := legacy.StartNode(t.Context(), legacy.NodeConfig{
		ID:         id,
		Addr:       addr,
		Timeout:    T,
		StartDelay: -1,
		WiFiDelay:  -1,
		Logger:     testutil.Logger(),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

// legacyServer starts the legacy server model on 127.0.0.1:0.
func legacyServer(t *testing.T) *legacy.Server {
	t.Helper()
	s, err := legacy.StartServer(t.Context(), legacy.ServerConfig{Timeout: T, Logger: testutil.Logger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// recording is a faultnet proxy that records the traffic through it in the
// format of testdata/transcripts.
type recording struct {
	*faultnet.Proxy
	f     *os.File
	probe *lagprobe.Probe // the process's stalls while it records
}

// stalled says how long the process was stalled between two times of the
// transcript (for wireSpec.stalled).
func (r *recording) stalled(from, to float64) time.Duration {
	at := func(s float64) time.Time { return r.Started().Add(time.Duration(s * float64(time.Second))) }
	return r.probe.Stalled(at(from), at(to))
}

// record starts a recording proxy in front of target; filter may be nil.
func record(t *testing.T, target string, filter func(faultnet.Dir, int, []byte) faultnet.Action) *recording {
	t.Helper()
	f, err := os.Create(filepath.Join(t.TempDir(), "transcript.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	p, err := faultnet.Start(context.Background(), faultnet.Config{
		Target: target,
		Record: f,
		Filter: filter,
		Logger: testutil.Logger(),
	})
	if err != nil {
		f.Close()
		t.Fatal(err)
	}
	r := &recording{Proxy: p, f: f, probe: lagprobe.New(t)}
	t.Cleanup(func() {
		p.Close()
		f.Close()
		if dir := os.Getenv("TETHER_CONFORMANCE_KEEP"); dir != "" {
			b, err := os.ReadFile(f.Name())
			if err == nil {
				err = os.WriteFile(filepath.Join(dir, strings.ReplaceAll(t.Name(), "/", "_")+".jsonl"), b, 0o644)
			}
			if err != nil {
				t.Errorf("keep the transcript: %v", err)
			}
		}
	})
	return r
}

// transcript closes the proxy and returns what it recorded.
func (r *recording) transcript(t *testing.T) []legacy.Event {
	t.Helper()
	if err := r.Close(); err != nil {
		t.Errorf("close proxy: %v", err)
	}
	evs, err := legacy.LoadTranscript(r.f.Name())
	if err != nil {
		t.Fatalf("load the recorded transcript: %v", err)
	}
	return evs
}

// withinNetOfStalls runs f with a context that ends once f has run for d
// beyond the time the process was stalled meanwhile (see lagprobe): a
// bound on how long something may take that still holds on a busy
// machine, where a stall holds up both sides alike.
func withinNetOfStalls(ctx context.Context, probe *lagprobe.Probe, d time.Duration, f func(context.Context) error) error {
	fctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- f(fctx) }()
	tm := time.NewTimer(d)
	defer tm.Stop()
	for {
		select {
		case err := <-done:
			return err
		case <-tm.C:
			now := time.Now()
			stalled := probe.Stalled(start, now)
			if left := d - (now.Sub(start) - stalled); left > 0 {
				tm.Reset(left)
				continue
			}
			cancel(fmt.Errorf("took more than %v beyond the %v the process was stalled", d, stalled.Round(time.Millisecond)))
			err := <-done
			if cause := context.Cause(fctx); err != nil && cause != nil {
				err = fmt.Errorf("%w: %w", err, cause)
			}
			return err
		}
	}
}
