package conformance

import (
	"bytes"
	"sync"
	"testing"

	"github.com/tether-iot/tether/client"
	"github.com/tether-iot/tether/internal/harness/faultnet"
	"github.com/tether-iot/tether/internal/harness/legacy"
)

// TestClientGreetingsToLegacyServer: our client writes a greeting with its
// ID (link.Window, rule 1): a keepalive on its first socket, which the
// legacy server reads as one; and, once its 00 reached the server but the
// ACK was lost, the 00 itself on the next socket, which the legacy server
// drops (it drops what follows the ID on a reconnect). Our client repeats
// it after T, as usual, and gets its ACK. (The legacy server delivers that
// 00 twice: its known weakness, PROTOCOL.md.)
func TestClientGreetingsToLegacyServer(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	lsrv := legacyServer(t)
	var once sync.Once
	lost := make(chan struct{})
	rec := record(t, lsrv.Addr(), func(dir faultnet.Dir, conn int, data []byte) faultnet.Action {
		act := faultnet.Forward
		if dir == faultnet.S2C && bytes.Equal(data, []byte("00\n")) {
			once.Do(func() { // the legacy server's ACK of our 00, once
				act = faultnet.CutBefore
				close(lost)
			})
		}
		return act
	})
	ev := newEvents()
	cl := ourClient(ctx, t, client.Config{ID: "greet", Server: rec.Addr()}, ev)
	lc, err := lsrv.Conn(ctx, "greet")
	if err != nil {
		t.Fatal(err)
	}
	if err := cl.Write(ctx, "boot"); err != nil {
		t.Fatal(err)
	}
	select {
	case <-lost:
	default:
		t.Fatal("the ACK of 00 was not lost: the test did not run its case")
	}
	for range 2 {
		if got, err := lc.ReadLine(ctx); err != nil || got != "boot\n" {
			t.Fatalf("legacy server read %q, %v", got, err)
		}
	}
	if st := cl.Stats(); st.Repeats < 2 || cl.Connects() < 2 {
		t.Errorf("our client: %d repeats over %d sockets; want the early repeat and one after T, on 2 sockets", st.Repeats, cl.Connects())
	}
	conns := clientBytes(rec.transcript(t))
	if len(conns) < 2 || !bytes.HasPrefix(conns[0], []byte("greet\n\n")) || !bytes.HasPrefix(conns[1], []byte("greet\n00boot\n")) {
		t.Errorf("our client's first bytes on each socket: %q; want the ID with a keepalive, then with its 00", firstBytes(conns))
	}
}

// clientBytes returns, per connection in order, what the client sent.
func clientBytes(evs []legacy.Event) [][]byte {
	var out [][]byte
	for _, c := range legacy.Conns(evs) {
		var b []byte
		for _, e := range evs {
			if e.Conn == c && e.IsData() && e.Dir == legacy.C2S {
				b = append(b, e.Data...)
			}
		}
		out = append(out, b)
	}
	return out
}

func firstBytes(conns [][]byte) []string {
	var out []string
	for _, c := range conns {
		out = append(out, string(c[:min(len(c), 16)]))
	}
	return out
}
