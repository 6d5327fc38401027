package server_test

import (
	"context"
	"crypto/tls"
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/tether-iot/tether/client"
	"github.com/tether-iot/tether/internal/harness/pkitest"
	"github.com/tether-iot/tether/internal/harness/testutil"
	"github.com/tether-iot/tether/internal/harness/tethertest"
	"github.com/tether-iot/tether/link"
	"github.com/tether-iot/tether/server"
)

// A Go node with its certificate and a legacy plain node share the port;
// TLS is transparent to the link.
func TestTLSNodeAndPlainNodeShareThePort(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	p := pkitest.New(t)
	T := 300 * time.Millisecond
	srv, addr := tethertest.NewServer(t, server.Config{Timeout: T, TLS: p.Server, Access: server.Access{TLSOnly: []string{"pump1"}}})
	tc, _ := p.Node("pump1")
	secure := tethertest.Dial(t, ctx, client.Config{ID: "pump1", Server: addr, Timeout: T, TLS: tc})
	plain := tethertest.Dial(t, ctx, client.Config{ID: "legacy", Server: addr, Timeout: T})
	for _, c := range []*client.Client{secure, plain} {
		if err := c.Write(ctx, "hello from "+c.ID()); err != nil {
			t.Fatal(err)
		}
		l, err := srv.Node(ctx, c.ID())
		if err != nil {
			t.Fatal(err)
		}
		if got, err := l.ReadLine(ctx); err != nil || got != "hello from "+c.ID() {
			t.Fatalf("%s: got %q, %v", c.ID(), got, err)
		}
		if err := l.Write(ctx, "back to "+c.ID()); err != nil {
			t.Fatal(err)
		}
		if got, err := c.ReadLine(ctx); err != nil || got != "back to "+c.ID() {
			t.Fatalf("%s: got %q, %v", c.ID(), got, err)
		}
	}
	if st := srv.Stats(); st.TLSHandshakes != 1 || st.Handshakes != 2 {
		t.Fatalf("stats %+v", st)
	}
}

// attack is one attempt to claim pump1, which has credentials.
type attack struct {
	name  string
	from  string
	tls   func(p *pkitest.PKI) *tls.Config
	count func(server.Stats) uint64
}

// Every way to claim a node ID without its credentials is refused,
// logged and counted; the node's queued message is not taken, and it
// gets it exactly once when it comes back.
func TestClaimsWithoutCredentialsAreRefused(t *testing.T) {
	attacks := []attack{
		{"plain TCP claim of a TLS-only ID", "127.0.0.1", nil, func(s server.Stats) uint64 { return s.PlainRefused }},
		{"TLS without a certificate", "127.0.0.1", (*pkitest.PKI).NoCert, func(s server.Stats) uint64 { return s.NoCert }},
		{"a certificate for another ID", "127.0.0.1", func(p *pkitest.PKI) *tls.Config { c, _ := p.Node("pump2"); return c }, func(s server.Stats) uint64 { return s.CertMismatch }},
		{"an expired certificate", "127.0.0.1", func(p *pkitest.PKI) *tls.Config { return p.Expired("pump1") }, func(s server.Stats) uint64 { return s.CertInvalid }},
		{"a certificate from another CA", "127.0.0.1", func(p *pkitest.PKI) *tls.Config { return p.Foreign("pump1") }, func(s server.Stats) uint64 { return s.CertInvalid }},
		{"a revoked certificate", "127.0.0.1", nil /* set below */, func(s server.Stats) uint64 { return s.CertRevoked }},
		{"a good certificate from an address pump1 is not pinned to", "127.0.0.2", nil /* set below */, func(s server.Stats) uint64 { return s.PinRefused }},
	}
	for _, a := range attacks {
		t.Run(a.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			p := pkitest.New(t)
			good, _ := p.Node("pump1")
			stolen, serial := p.Node("pump1")
			acc := server.Access{
				TLSOnly:        []string{"pump1"},
				RevokedSerials: []string{serial},
				Pins:           map[string][]netip.Prefix{"pump1": {netip.MustParsePrefix("127.0.0.1/32")}},
			}
			T := 300 * time.Millisecond
			srv, addr := tethertest.NewServer(t, server.Config{Timeout: T, TLS: p.Server, Access: acc})
			var tc *tls.Config
			switch {
			case a.tls != nil:
				tc = a.tls(p)
			case a.name == "a revoked certificate":
				tc = stolen
			case a.from == "127.0.0.2":
				tc = good
			}
			// pump1 connects, then goes away with a message queued for it.
			c, err := client.Dial(ctx, client.Config{ID: "pump1", Server: addr, Timeout: T, TLS: good, Logger: testutil.Logger()})
			if err != nil {
				t.Fatal(err)
			}
			l, err := srv.Node(ctx, "pump1")
			if err != nil {
				t.Fatal(err)
			}
			if err := c.WaitUp(ctx); err != nil {
				t.Fatal(err)
			}
			c.Close()
			waitDown(t, ctx, l)
			sent := make(chan error, 1)
			go func() { sent <- l.Write(ctx, "secret for pump1") }()

			before := a.count(srv.Stats())
			conn, err := pkitest.Claim(ctx, addr, a.from, tc, "pump1")
			if !errors.Is(err, pkitest.ErrRefused) {
				if conn != nil {
					conn.Close()
				}
				t.Fatalf("claim: %v, want refused", err)
			}
			if got := a.count(srv.Stats()) - before; got != 1 {
				t.Fatalf("counter moved by %d, want 1; stats %+v", got, srv.Stats())
			}
			// The real pump1 comes back and gets its message, once.
			c2 := tethertest.Dial(t, ctx, client.Config{ID: "pump1", Server: addr, Timeout: T, TLS: good})
			if got, err := c2.ReadLine(ctx); err != nil || got != "secret for pump1" {
				t.Fatalf("got %q, %v", got, err)
			}
			if err := <-sent; err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TLSRequired refuses every plain claim; a revoked ID is refused whatever
// it presents; AllowFrom pins every ID without a pin of its own.
func TestAccessRules(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	p := pkitest.New(t)
	T := 300 * time.Millisecond
	srv, addr := tethertest.NewServer(t, server.Config{Timeout: T, TLS: p.Server, Access: server.Access{
		TLSRequired: true,
		RevokedIDs:  []string{"lost"},
		AllowFrom:   []netip.Prefix{netip.MustParsePrefix("127.0.0.0/30")},
		Pins:        map[string][]netip.Prefix{"far": {netip.MustParsePrefix("127.0.0.9/32")}},
	}})
	lost, _ := p.Node("lost")
	ok, _ := p.Node("ok")
	far, _ := p.Node("far")
	for _, c := range []struct {
		id, from string
		tc       *tls.Config
		refused  bool
	}{
		{"any", "127.0.0.1", nil, true},   // plain: TLS required
		{"lost", "127.0.0.1", lost, true}, // revoked ID
		{"ok", "127.0.0.5", ok, true},     // outside AllowFrom
		{"far", "127.0.0.1", far, true},   // outside its pin
		{"far", "127.0.0.9", far, false},  // its pin
		{"ok", "127.0.0.2", ok, false},    // within AllowFrom
	} {
		conn, err := pkitest.Claim(ctx, addr, c.from, c.tc, c.id)
		if c.refused != errors.Is(err, pkitest.ErrRefused) || (!c.refused && err != nil) {
			t.Fatalf("%s from %s: %v, refused want %v", c.id, c.from, err, c.refused)
		}
		if conn != nil {
			conn.Close()
		}
	}
	st := srv.Stats()
	if st.PlainRefused != 1 || st.CertRevoked != 1 || st.PinRefused != 2 || st.Handshakes != 2 {
		t.Fatalf("stats %+v", st)
	}
}

// Admit holds new IDs back (approval mode): counted as pending.
func TestAdmitPending(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	approved := map[string]bool{"known": true}
	var claims []server.Claim
	srv, addr := tethertest.NewServer(t, server.Config{Timeout: 300 * time.Millisecond, Admit: func(c server.Claim) error {
		claims = append(claims, c) // the handshakes below are one at a time
		if approved[c.ID] {
			return nil
		}
		return server.ErrPending
	}})
	if _, err := pkitest.Claim(ctx, addr, "127.0.0.3", nil, "new"); !errors.Is(err, pkitest.ErrRefused) {
		t.Fatalf("new ID: %v", err)
	}
	conn, err := pkitest.Claim(ctx, addr, "", nil, "known")
	if err != nil {
		t.Fatal(err)
	}
	conn.Close()
	if st := srv.Stats(); st.Pending != 1 || st.Refused != 0 {
		t.Fatalf("stats %+v", st)
	}
	if len(claims) != 2 || claims[0].ID != "new" || claims[0].Remote.Addr() != netip.MustParseAddr("127.0.0.3") || claims[0].TLS {
		t.Fatalf("claims %+v", claims)
	}
}

// A TLS node at a server without TLS is told apart from a bad ID line,
// with a hint in the log.
func TestTLSWithoutServerTLS(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	p := pkitest.New(t)
	srv, addr := tethertest.NewServer(t, server.Config{Timeout: 300 * time.Millisecond})
	tc, _ := p.Node("pump1")
	if _, err := pkitest.Claim(ctx, addr, "", tc, "pump1"); !errors.Is(err, pkitest.ErrRefused) {
		t.Fatalf("claim: %v", err)
	}
	if st := srv.Stats(); st.TLSFailed != 1 || st.BadID != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestAccessConfigErrors(t *testing.T) {
	for _, cfg := range []server.Config{
		{Access: server.Access{TLSOnly: []string{"a"}}},                    // no TLS config
		{Access: server.Access{RevokedSerials: []string{"xyz"}}},           // not hex
		{Access: server.Access{Pins: map[string][]netip.Prefix{"a": nil}}}, // no network
		{TLS: &tls.Config{}, Access: server.Access{TLSRequired: true}},     // no certificate
	} {
		if srv, err := server.New(cfg); err == nil {
			srv.Close()
			t.Errorf("%+v: no error", cfg.Access)
		}
	}
}

func waitDown(t *testing.T, ctx context.Context, l *link.Link) {
	t.Helper()
	ch := make(chan link.Event, 16)
	l.Notify(ch)
	defer l.Stop(ch)
	for l.Up() {
		select {
		case <-ch:
		case <-ctx.Done():
			t.Fatal("link still up")
		}
	}
}
