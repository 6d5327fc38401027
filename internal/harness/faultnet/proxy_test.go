package faultnet

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"syscall"
	"testing"
)

func TestStartRejectsBadConfig(t *testing.T) {
	tests := []struct {
		name           string
		listen, target string
		notLoopback    bool
	}{
		{"all interfaces", "0.0.0.0:0", "127.0.0.1:1", true},
		{"empty host", ":0", "127.0.0.1:1", true},
		{"private listen", "10.1.2.3:0", "127.0.0.1:1", true},
		{"host name", "localhost:0", "127.0.0.1:1", true},
		{"remote target", "", "192.0.2.1:8123", true},
		{"ipv6 unspecified target", "", "[::]:8123", true},
		{"no target", "", "", false},
		{"no port", "127.0.0.1", "127.0.0.1:1", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Start(context.Background(), Config{Listen: tt.listen, Target: tt.target})
			if err == nil {
				_ = p.Close()
				t.Fatal("Start succeeded")
			}
			if got := errors.Is(err, ErrNotLoopback); got != tt.notLoopback {
				t.Errorf("errors.Is(%v, ErrNotLoopback) = %v, want %v", err, got, tt.notLoopback)
			}
		})
	}
}

func TestForwardBothWays(t *testing.T) {
	p, srv := startProxy(t, Config{}, false)
	c, s := pair(t, p, srv)

	write(t, c, "ping\n")
	expect(t, s, "ping\n")
	write(t, s, "pong\n")
	expect(t, c, "pong\n")

	// Larger than one chunk, both ways at once.
	big := bytes.Repeat([]byte("0123456789abcdef"), 8<<10) // 128 KiB
	errc := make(chan error, 2)
	go func() { _, err := c.Write(big); errc <- err }()
	go func() { _, err := s.Write(big); errc <- err }()
	expect(t, s, string(big))
	expect(t, c, string(big))
	for range 2 {
		if err := <-errc; err != nil {
			t.Fatalf("write: %v", err)
		}
	}

	// A client's close reaches the server, and the proxy drops the conn.
	_ = c.Close()
	expectErr(t, s, io.EOF)
	if n := p.Conns(); n != 0 {
		t.Errorf("Conns() = %d after close, want 0", n)
	}
	st := p.Stats()
	want := int64(len("ping\n") + len(big))
	if st.Accepted != 1 || st.BytesC2S != want || st.BytesS2C != want || st.Cuts != 0 {
		t.Errorf("Stats() = %+v, want 1 accepted, %d bytes each way, no cuts", st, want)
	}
}

func TestServerCloseReachesClient(t *testing.T) {
	p, srv := startProxy(t, Config{}, false)
	c, s := pair(t, p, srv)
	write(t, s, "bye\n")
	_ = s.Close()
	expect(t, c, "bye\n")
	expectErr(t, c, io.EOF)
}

func TestDialFailureResetsClient(t *testing.T) {
	// Two distinct free ports: one for the proxy, one where nothing listens.
	var lns [2]net.Listener
	for i := range lns {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns[i] = ln
	}
	_ = lns[0].Close()
	p, err := Start(context.Background(), Config{Listen: lns[0].Addr().String(), Target: lns[1].Addr().String()})
	_ = lns[1].Close()
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	// The reset may come so fast that it fails the connect itself.
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		if !errors.Is(err, syscall.ECONNRESET) {
			t.Fatalf("dial: %v, want ECONNRESET", err)
		}
		return
	}
	defer c.Close()
	expectErr(t, c, syscall.ECONNRESET)
}

func TestWaitConns(t *testing.T) {
	p, srv := startProxy(t, Config{}, true)
	_ = srv
	for range 3 {
		dial(t, p)
	}
	ctx, cancel := context.WithTimeout(context.Background(), failsafe)
	defer cancel()
	if err := p.WaitConns(ctx, 3); err != nil {
		t.Fatalf("WaitConns(3): %v", err)
	}
	if got := p.Stats().Accepted; got != 3 {
		t.Errorf("Accepted = %d, want 3", got)
	}
	cctx, ccancel := context.WithCancel(context.Background())
	ccancel()
	if err := p.WaitConns(cctx, 4); !errors.Is(err, context.Canceled) {
		t.Errorf("WaitConns with cancelled ctx = %v, want context.Canceled", err)
	}
}

func TestClose(t *testing.T) {
	srv := newTestServer(t, false)
	p, err := Start(context.Background(), Config{Target: srv.ln.Addr().String()})
	if err != nil {
		t.Fatal(err)
	}
	c, s := pair(t, p, srv)
	write(t, c, "x")
	expect(t, s, "x")

	waitErr := make(chan error, 1)
	go func() { waitErr <- p.WaitConns(context.Background(), 2) }()

	if err := p.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := p.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	expectErr(t, c, io.EOF)
	expectErr(t, s, io.EOF)
	if err := <-waitErr; !errors.Is(err, net.ErrClosed) {
		t.Errorf("WaitConns after Close = %v, want net.ErrClosed", err)
	}
	if _, err := net.Dial("tcp", p.Addr()); err == nil {
		t.Error("dial after Close succeeded")
	}
	wait(t, p.Blackhole(failsafe), "Blackhole on a closed proxy")
	wait(t, p.Refuse(failsafe), "Refuse on a closed proxy")
	p.Cut()
	p.Reset()
}

func TestContextEndsProxy(t *testing.T) {
	srv := newTestServer(t, false)
	ctx, cancel := context.WithCancel(context.Background())
	p, err := Start(ctx, Config{Target: srv.ln.Addr().String()})
	if err != nil {
		t.Fatal(err)
	}
	c, _ := pair(t, p, srv)
	cancel()
	expectErr(t, c, io.EOF)
	if err := p.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

// With Source, the proxy's connections to the target come from that
// loopback address; a Source that is not loopback is refused.
func TestSource(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	p, err := Start(context.Background(), Config{Target: ln.Addr().String(), Source: "127.0.0.5"})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if ip := s.RemoteAddr().(*net.TCPAddr).IP.String(); ip != "127.0.0.5" {
		t.Errorf("the target sees %s, want 127.0.0.5", ip)
	}
	if _, err := Start(context.Background(), Config{Target: ln.Addr().String(), Source: "192.0.2.1"}); !errors.Is(err, ErrNotLoopback) {
		t.Errorf("Source 192.0.2.1: %v, want ErrNotLoopback", err)
	}
}
