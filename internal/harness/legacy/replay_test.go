package legacy

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
)

// recConn records the Write calls made on a net.Conn.
type recConn struct {
	net.Conn
	mu     sync.Mutex
	writes []string
}

func (c *recConn) Write(b []byte) (int, error) {
	c.mu.Lock()
	c.writes = append(c.writes, string(b))
	c.mu.Unlock()
	return c.Conn.Write(b)
}

func TestReplayToListener(t *testing.T) {
	t.Parallel()
	retry(t, func() {
		ctx := testCtx(t)
		evs := loadTranscript(t, "cut")
		ln := listen(t)
		var got bytes.Buffer
		var wg sync.WaitGroup
		wg.Go(func() {
			c, err := ln.Accept()
			if err != nil {
				t.Error(err)
				return
			}
			defer c.Close()
			io.Copy(&got, c)
		})
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		rec := &recConn{Conn: c}
		err = ReplayConfig{Speed: 200}.Replay(ctx, rec, evs, 2, C2S)
		c.Close()
		wg.Wait()
		if err != nil {
			t.Fatal(err)
		}
		var want []string
		for _, e := range Chunks(evs, 2, C2S) {
			want = append(want, e.Data)
		}
		if len(want) < 10 || strings.Join(rec.writes, "\x00") != strings.Join(want, "\x00") {
			t.Fatalf("writes %q, want the %d recorded chunks", rec.writes, len(want))
		}
		if got.String() != strings.Join(want, "") {
			t.Fatalf("listener got %q", got.String())
		}
	})
}

func TestReplayCancel(t *testing.T) {
	t.Parallel()
	retry(t, func() {
		evs := loadTranscript(t, "cut")
		a, b := net.Pipe()
		var wg sync.WaitGroup
		wg.Go(func() { io.Copy(io.Discard, b) })
		defer wg.Wait()
		defer b.Close()
		defer a.Close()
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		if err := Replay(ctx, a, evs, 1, C2S); !errors.Is(err, context.Canceled) {
			t.Fatalf("Replay with a cancelled ctx: %v", err)
		}
	})
}

// replayNode plays a recorded node's side of every connection into srv:
// the ID alone first (the legacy node sends nothing else before the
// server's first line), then the rest; each connection closes before the
// next one opens.
func replayNode(t *testing.T, ctx context.Context, srv *Server, evs []Event, id string) *ServerConn {
	t.Helper()
	var sc *ServerConn
	for _, cn := range Conns(evs) {
		chunks := Chunks(evs, cn, C2S)
		c, err := net.Dial("tcp", srv.Addr())
		if err != nil {
			t.Fatal(err)
		}
		p := newPeer(t, c)
		if err := Replay(ctx, c, chunks[:1], cn, C2S); err != nil {
			voidIfStalled(t, err.Error())
			t.Fatal(err)
		}
		p.line()
		if sc == nil {
			if sc, err = srv.Conn(ctx, id); err != nil {
				t.Fatal(err)
			}
		}
		if err := Replay(ctx, c, chunks[1:], cn, C2S); err != nil {
			voidIfStalled(t, err.Error())
			t.Fatal(err)
		}
		p.close()
		if err := sc.WaitStatus(ctx, false); err != nil {
			t.Fatal(err)
		}
	}
	return sc
}

// The recorded node's bytes make the legacy server model deliver message
// 00 twice, as the original server did.
func TestReplayMid0IntoLegacyServer(t *testing.T) {
	t.Parallel()
	retry(t, func() {
		ctx := testCtx(t)
		srv := startServer(t, ServerConfig{Expected: []string{"mid0-c2s"}})
		sc := replayNode(t, ctx, srv, loadTranscript(t, "mid0-c2s"), "mid0-c2s")
		got := readN(t, ctx, sc.ReadLine, 6)
		want := `[0, "c:mid0-c2s", 1795557669.827534]` + "\n"
		if got[0] != want || got[1] != want || !strings.HasPrefix(got[2], "[1, ") || !strings.HasPrefix(got[5], "[4, ") {
			t.Fatalf("server read %q", got)
		}
	})
}

// The recorded node's bytes make the legacy server model glue the
// fragment of a dead link onto the next line, as the original did.
func TestReplayPartialLineIntoLegacyServer(t *testing.T) {
	t.Parallel()
	retry(t, func() {
		ctx := testCtx(t)
		srv := startServer(t, ServerConfig{Expected: []string{"partial-line"}})
		sc := replayNode(t, ctx, srv, loadTranscript(t, "partial-line"), "partial-line")
		got := readN(t, ctx, sc.ReadLine, 9)
		glued := `[7, "c:partial-line07[7, "c:partial-line", 1795557687.576171]` + "\n"
		if got[7] != glued || !strings.HasPrefix(got[6], "[6, ") || !strings.HasPrefix(got[8], "[8, ") {
			t.Fatalf("server read %q", got)
		}
	})
}
