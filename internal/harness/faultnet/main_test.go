package faultnet

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// failsafe bounds every wait in these tests; reaching it is a failure.
const failsafe = 5 * time.Second

// testServer is a loopback TCP server that either echoes or hands each
// accepted connection to the test on conns.
type testServer struct {
	ln    net.Listener
	conns chan net.Conn // when not echoing
	wg    sync.WaitGroup
	mu    sync.Mutex
	all   []net.Conn
}

func newTestServer(t *testing.T, echo bool) *testServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	s := &testServer{ln: ln, conns: make(chan net.Conn, 64)}
	s.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.all = append(s.all, c)
			s.mu.Unlock()
			if echo {
				s.wg.Go(func() { _, _ = io.Copy(c, c); _ = c.Close() })
				continue
			}
			select {
			case s.conns <- c:
			default:
				t.Errorf("test server: too many connections")
				_ = c.Close()
			}
		}
	})
	t.Cleanup(func() {
		_ = ln.Close()
		s.mu.Lock()
		for _, c := range s.all {
			_ = c.Close()
		}
		s.mu.Unlock()
		s.wg.Wait()
	})
	return s
}

// accept returns the next connection the server accepted.
func (s *testServer) accept(t *testing.T) net.Conn {
	t.Helper()
	select {
	case c := <-s.conns:
		return c
	case <-time.After(failsafe):
		t.Fatal("server accepted no connection")
		return nil
	}
}

// startProxy starts a proxy in front of a new test server; both are closed
// when the test ends, the proxy first.
func startProxy(t *testing.T, cfg Config, echo bool) (*Proxy, *testServer) {
	t.Helper()
	srv := newTestServer(t, echo)
	cfg.Target = srv.ln.Addr().String()
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	p, err := Start(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return p, srv
}

// dial connects a client to the proxy; it is closed when the test ends.
func dial(t *testing.T, p *Proxy) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatalf("dial proxy: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// pair connects a client through the proxy and returns both ends.
func pair(t *testing.T, p *Proxy, srv *testServer) (client, server net.Conn) {
	t.Helper()
	client = dial(t, p)
	return client, srv.accept(t)
}

func write(t *testing.T, c net.Conn, s string) {
	t.Helper()
	if _, err := c.Write([]byte(s)); err != nil {
		t.Fatalf("write %q: %v", s, err)
	}
}

// expect reads exactly len(want) bytes from c and compares them to want.
func expect(t *testing.T, c net.Conn, want string) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(failsafe))
	got := make([]byte, len(want))
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatalf("read %q: got %q, %v", want, got, err)
	}
	if string(got) != want {
		t.Fatalf("read %q, want %q", got, want)
	}
}

// expectErr reads from c until it fails and checks the error is want.
func expectErr(t *testing.T, c net.Conn, want error) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(failsafe))
	n, err := c.Read(make([]byte, 64))
	if n != 0 || !errors.Is(err, want) {
		t.Fatalf("read: %d bytes, err %v; want %v", n, err, want)
	}
}

// expectSilence checks that nothing, neither bytes nor EOF, arrives on c
// within d.
func expectSilence(t *testing.T, c net.Conn, d time.Duration) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(d))
	n, err := c.Read(make([]byte, 64))
	if n != 0 || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read during silence: %d bytes, err %v", n, err)
	}
	_ = c.SetReadDeadline(time.Time{})
}

// wait waits for ch to be closed.
func wait(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(failsafe):
		t.Fatalf("timed out waiting for %s", what)
	}
}

// rec is a parsed transcript line.
type rec struct {
	T       float64 `json:"t"`
	Ev      string  `json:"ev"`
	Conn    int     `json:"conn"`
	Dir     string  `json:"dir"`
	Dropped *bool   `json:"dropped"`
	Data    *string `json:"data"`
	RST     *bool   `json:"rst"`
}

// transcript is a Config.Record sink that parses every line and passes it
// to the test on lines.
type transcript struct {
	t     *testing.T
	mu    sync.Mutex
	buf   bytes.Buffer
	lines chan rec
	seen  []rec // received by waitFor but not yet matched
}

func newTranscript(t *testing.T) *transcript {
	return &transcript{t: t, lines: make(chan rec, 1024)}
}

func (tr *transcript) Write(b []byte) (int, error) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	tr.buf.Write(b)
	var r rec
	if err := json.Unmarshal(b, &r); err != nil {
		tr.t.Errorf("transcript line %q: %v", b, err)
	}
	select {
	case tr.lines <- r:
	default:
		tr.t.Errorf("transcript: too many lines")
	}
	return len(b), nil
}

// waitFor waits for a line that satisfies match and consumes it. Lines
// that do not match stay available to later calls.
func (tr *transcript) waitFor(match func(rec) bool, what string) rec {
	tr.t.Helper()
	for i, r := range tr.seen {
		if match(r) {
			tr.seen = append(tr.seen[:i], tr.seen[i+1:]...)
			return r
		}
	}
	timeout := time.After(failsafe)
	for {
		select {
		case r := <-tr.lines:
			if match(r) {
				return r
			}
			tr.seen = append(tr.seen, r)
		case <-timeout:
			tr.t.Fatalf("transcript: timed out waiting for %s", what)
		}
	}
}

func droppedData(conn int, dir Dir, data string) func(rec) bool {
	return func(r rec) bool {
		return r.Ev == "" && r.Conn == conn && r.Dir == dir.String() &&
			r.Dropped != nil && *r.Dropped && r.Data != nil && *r.Data == data
	}
}
