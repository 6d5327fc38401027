package legacy

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"
)

// reconnect waits until the server saw the old socket close, then connects
// again as id.
func reconnect(t *testing.T, ctx context.Context, srv *Server, sc *ServerConn, old *peer, id string) *peer {
	t.Helper()
	old.close()
	if err := sc.WaitStatus(ctx, false); err != nil {
		t.Fatal(err)
	}
	p := dialNode(t, srv.Addr(), id)
	if err := sc.WaitStatus(ctx, true); err != nil {
		t.Fatal(err)
	}
	return p
}

func connect(t *testing.T, ctx context.Context, srv *Server, id string) (*peer, *ServerConn) {
	t.Helper()
	p := dialNode(t, srv.Addr(), id)
	sc, err := srv.Conn(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	return p, sc
}

func wantLines(t *testing.T, ctx context.Context, sc *ServerConn, want ...string) {
	t.Helper()
	got := readN(t, ctx, sc.ReadLine, len(want))
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("server read %q, want %q", got, want)
		}
	}
}

// The ACK of message 00 is lost: the node repeats it on the next
// connection, and the legacy server delivers it twice. A repeat of any
// other id is dropped by the window.
func TestServerDeliversRepeated00Twice(t *testing.T) {
	t.Parallel()
	retry(t, func() {
		ctx := testCtx(t)
		srv := startServer(t, ServerConfig{})
		p, sc := connect(t, ctx, srv, "m0")
		p.send("00hello\n")
		p.expect("00")
		p = reconnect(t, ctx, srv, sc, p, "m0") // as if the ACK had been lost
		p.send("00hello\n")
		p.expect("00")
		p.send("01world\n")
		p.expect("01")
		p.send("01world\n")
		p.expect("01")
		p.send("02end\n")
		p.expect("02")
		wantLines(t, ctx, sc, "hello\n", "hello\n", "world\n", "end\n")
		if n := sc.NConns(); n != 2 {
			t.Errorf("nconns = %d, want 2", n)
		}
	})
}

// A link dies mid-line: the fragment is glued onto the first line of the
// next connection, which is ACKed and delivered.
func TestServerKeepsPartialLine(t *testing.T) {
	t.Parallel()
	retry(t, func() {
		ctx := testCtx(t)
		srv := startServer(t, ServerConfig{})
		p, sc := connect(t, ctx, srv, "pl")
		p.send("00first\n")
		p.expect("00")
		p.send("01frag")
		p = reconnect(t, ctx, srv, sc, p, "pl")
		p.send("01fragment\n")
		p.expect("01")
		wantLines(t, ctx, sc, "first\n", "frag01fragment\n")
	})
}

// Bytes that come with the ID in one read start the stream of a new
// connection object, but only once more data comes; on a reconnect they
// are lost.
func TestServerBytesAfterID(t *testing.T) {
	t.Parallel()
	retry(t, func() {
		ctx := testCtx(t)
		srv := startServer(t, ServerConfig{})
		p := dialNode(t, srv.Addr(), "ib\n00a")
		sc, err := srv.Conn(ctx, "ib")
		if err != nil {
			t.Fatal(err)
		}
		short, cancel := context.WithTimeout(ctx, T/2)
		defer cancel()
		if _, err := sc.ReadLine(short); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("line before more data: %v", err)
		}
		p.send("01b\n")
		p.expect("00")
		p.expect("01")
		wantLines(t, ctx, sc, "a\n", "b\n")

		p.close()
		if err := sc.WaitStatus(ctx, false); err != nil {
			t.Fatal(err)
		}
		p = dialNode(t, srv.Addr(), "ib\n02c")
		if s := p.line(); s != "" { // the ID has been read: "03d" comes alone
			t.Fatalf("first line %q, want a keepalive", s)
		}
		p.send("03d\n")
		p.expect("03") // no ACK for 02: it was dropped
		wantLines(t, ctx, sc, "d\n")
	})
}

// Only keepalives go out until the node's first bytes on a socket, then
// for T/10 more.
func TestServerWritePause(t *testing.T) {
	t.Parallel()
	retry(t, func() {
		ctx := testCtx(t)
		srv := startServer(t, ServerConfig{})
		p, sc := connect(t, ctx, srv, "wp")
		done := make(chan error, 1)
		go func() { done <- sc.Write(ctx, "m", false, false) }()
		p.silentFor(3 * T / 4)
		start := time.Now()
		p.send("\n")
		p.expect("00m")
		if el := time.Since(start); el < T/10 {
			t.Errorf("message %v after the node's first bytes, want >= %v", el, T/10)
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	})
}

// A qos message is repeated with the same id after T; a qos=false message
// whose ACK is lost blocks every later qos+wait write.
func TestServerQos(t *testing.T) {
	t.Parallel()
	retry(t, func() {
		ctx := testCtx(t)
		srv := startServer(t, ServerConfig{})
		p, sc := connect(t, ctx, srv, "q")
		p.keepalive()
		done := make(chan error, 1)
		go func() { done <- sc.Write(ctx, "r", true, true) }()
		p.expect("00r")
		start := time.Now()
		p.expect("00r")
		if el := time.Since(start); el < T {
			t.Errorf("repeat after %v, want >= T", el)
		}
		p.send("00\n")
		if err := <-done; err != nil {
			t.Fatal(err)
		}

		if err := sc.Write(ctx, "a", false, true); err != nil {
			t.Fatal(err)
		}
		p.expect("01a") // its ACK is lost
		short, cancel := context.WithTimeout(ctx, 2*T)
		defer cancel()
		if err := sc.Write(short, "b", true, true); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("qos+wait write after a lost qos=false ACK: %v, want blocked", err)
		}
		p.send("01\n")
		go func() { done <- sc.Write(ctx, "c", true, true) }()
		p.expect("02c")
		p.send("02\n")
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	})
}

// Silence for T is an outage; keepalives go out meanwhile.
func TestServerOutageOnSilence(t *testing.T) {
	t.Parallel()
	retry(t, func() {
		ctx := testCtx(t)
		srv := startServer(t, ServerConfig{})
		start := time.Now()
		p, sc := connect(t, ctx, srv, "s")
		if n := p.untilEOF(); n < 2 {
			t.Errorf("%d keepalives before the outage, want >= 2", n)
		}
		if el := time.Since(start); el < T {
			t.Errorf("outage after %v, want >= T", el)
		}
		if sc.Up() {
			t.Error("status still up")
		}
	})
}

// A second socket with an ID whose link is up is closed at once.
func TestServerDuplicate(t *testing.T) {
	t.Parallel()
	retry(t, func() {
		ctx := testCtx(t)
		srv := startServer(t, ServerConfig{})
		p, sc := connect(t, ctx, srv, "d")
		p.keepalive()
		dup := dialNode(t, srv.Addr(), "d")
		if n := dup.untilEOF(); n != 0 {
			t.Errorf("duplicate got %d keepalives", n)
		}
		if !sc.Up() {
			t.Error("original link went down")
		}
	})
}

// The ID is read inside the accept loop: a client that sends nothing
// stalls the next one for T.
func TestServerSilentClientStallsAccept(t *testing.T) {
	t.Parallel()
	retry(t, func() {
		ctx := testCtx(t)
		srv := startServer(t, ServerConfig{})
		start := time.Now()
		silent, err := net.Dial("tcp", srv.Addr())
		if err != nil {
			t.Fatal(err)
		}
		defer silent.Close()
		p, _ := connect(t, ctx, srv, "late")
		p.line()
		if el := time.Since(start); el < T {
			t.Errorf("second client served after %v, want >= T", el)
		}
	})
}

// A non-hex id in an ACK-length line kills the reader: nothing more is
// read or ACKed, and no outage is declared.
func TestServerNonHexKillsReader(t *testing.T) {
	t.Parallel()
	retry(t, func() {
		ctx := testCtx(t)
		srv := startServer(t, ServerConfig{})
		p, sc := connect(t, ctx, srv, "nh")
		p.send("zz\n00x\n")
		p.silentFor(2 * T)
		if !sc.Up() {
			t.Error("status went down")
		}
	})
}

// An ID that is not UTF-8 crashes the whole legacy server.
func TestServerCrashOnInvalidUTF8(t *testing.T) {
	t.Parallel()
	retry(t, func() {
		ctx := testCtx(t)
		srv := startServer(t, ServerConfig{})
		p := dialNode(t, srv.Addr(), "\xff")
		p.untilEOF()
		if _, err := srv.Conn(ctx, "x"); !errors.Is(err, ErrInvalidUTF8) {
			t.Fatalf("Conn after crash: %v", err)
		}
		if !errors.Is(srv.Err(), ErrInvalidUTF8) {
			t.Fatalf("Err = %v", srv.Err())
		}
	})
}

func TestServerConfig(t *testing.T) {
	for _, addr := range []string{"10.1.2.3:0", "example.com:80", "nohost"} {
		if _, err := StartServer(t.Context(), ServerConfig{Addr: addr}); err == nil {
			t.Errorf("Addr %q accepted", addr)
		}
	}
	if _, err := StartServer(t.Context(), ServerConfig{Timeout: time.Millisecond}); err == nil {
		t.Error("Timeout 1ms accepted")
	}
	s, err := StartServer(t.Context(), ServerConfig{Addr: ":0"})
	if err != nil {
		t.Fatal(err)
	}
	if h, _, _ := net.SplitHostPort(s.Addr()); h != "127.0.0.1" {
		t.Errorf("listening on %s", s.Addr())
	}
	s.Close()
	if !errors.Is(s.Err(), net.ErrClosed) || s.Close() != nil {
		t.Errorf("after Close: Err %v", s.Err())
	}
}
