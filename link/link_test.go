package link

import (
	"context"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"
)

// TestExchange: 300 messages each way, qos with and without wait, over
// each transport.
func TestExchange(t *testing.T) {
	forEachTransport(t, func(t *testing.T, pair func(testing.TB) (net.Conn, net.Conn)) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv := newLink(t, serverCfg("n1", time.Second))
		node := newLink(t, nodeCfg("n1", time.Second))
		var a attacher
		c1, c2 := pair(t)
		a.attach(ctx, srv, c1)
		a.attach(ctx, node, c2)
		defer a.wg.Wait()
		defer srv.Close()
		defer node.Close()

		const n = 300
		errc := make(chan error, 2)
		go func() {
			for i := range n {
				if err := node.Write(ctx, fmt.Sprintf("up %d", i)); err != nil {
					errc <- err
					return
				}
			}
			errc <- nil
		}()
		go func() {
			for i := range n {
				if err := srv.Write(ctx, fmt.Sprintf("down %d", i), Wait(i%2 == 0)); err != nil {
					errc <- err
					return
				}
			}
			errc <- nil
		}()
		for i := range n {
			got, err := srv.ReadLine(ctx)
			if err != nil || got != fmt.Sprintf("up %d", i) {
				t.Fatalf("server read %d: %q, %v", i, got, err)
			}
		}
		seen := map[string]bool{}
		for range n {
			got, err := node.ReadLine(ctx)
			if err != nil || seen[got] {
				t.Fatalf("node read: %q, %v (seen %v)", got, err, seen[got])
			}
			seen[got] = true
		}
		for range 2 {
			if err := <-errc; err != nil {
				t.Fatal(err)
			}
		}
		st := srv.Stats()
		if st.Received != n || st.Duplicates != 0 || st.Acked != n {
			t.Fatalf("server stats %+v", st)
		}
	})
}

func TestWriteMisuse(t *testing.T) {
	l := newLink(t, Config{ID: "x", MaxLine: 10})
	ctx := context.Background()
	for line, want := range map[string]error{
		"":           ErrEmpty,
		"\n":         ErrEmpty,
		"a\nb":       ErrNewline,
		"0123456789": ErrTooLong,
		"\xff\xfe":   ErrNotUTF8,
	} {
		if err := l.Write(ctx, line); !errors.Is(err, want) {
			t.Errorf("Write(%q) = %v, want %v", line, err, want)
		}
		if err := CheckPayload(line, 10); !errors.Is(err, want) {
			t.Errorf("CheckPayload(%q) = %v, want %v", line, err, want)
		}
	}
	if err := CheckPayload("0123456789\n", 0); err != nil {
		t.Errorf("CheckPayload of a line with its LF, no limit = %v", err)
	}
	l.Close()
	if err := l.Write(ctx, "late"); !errors.Is(err, ErrClosed) {
		t.Errorf("Write after Close = %v, want ErrClosed", err)
	}
	if _, err := l.ReadLine(ctx); !errors.Is(err, ErrClosed) {
		t.Errorf("ReadLine after Close = %v, want ErrClosed", err)
	}
}

// A write deadline left on the socket by its caller (the node's ID
// write) must not fail the link's writes once it has passed.
func TestAttachClearsWriteDeadline(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c1, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c2, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	c1.SetWriteDeadline(time.Now().Add(-time.Second))
	l := newLink(t, Config{ID: "n", Timeout: 10 * time.Second})
	done := make(chan error, 1)
	go func() { done <- l.Attach(context.Background(), c1) }()
	p := newPeer(c2)
	if err := l.Write(context.Background(), "x", QoS(false)); err != nil {
		t.Fatal(err)
	}
	if m := p.nextMsg(t); m.s != "00x" {
		t.Fatalf("got %q", m.s)
	}
	l.Close()
	<-done
	c2.Close()
}
