package server_test

import (
	"context"
	"crypto/tls"
	"errors"
	"testing"

	"github.com/tether-iot/tether/internal/harness/pkitest"
	"github.com/tether-iot/tether/internal/harness/testutil"
	"github.com/tether-iot/tether/server"
)

// BenchmarkHandshake is the cost of one node's handshake on loopback,
// plain and TLS (a full TLS 1.3 handshake with ECDSA P-256 client and
// server certificates): connect, [TLS], ID line, the server's checks,
// closed at Admit (so that no link is made and the loop can repeat).
//
//	go test -run '^$' -bench Handshake -benchtime 2000x ./server
func BenchmarkHandshake(b *testing.B) {
	p := pkitest.New(b)
	node, _ := p.Node("bench")
	for _, bc := range []struct {
		name string
		tls  *tls.Config
	}{{"plain", nil}, {"tls", node}} {
		b.Run(bc.name, func(b *testing.B) {
			srv, err := server.New(server.Config{TLS: p.Server, Logger: testutil.Logger(),
				Admit: func(server.Claim) error { return server.ErrPending }})
			if err != nil {
				b.Fatal(err)
			}
			ln := testutil.Listen(b)
			done := make(chan struct{})
			go func() { defer close(done); srv.Serve(ln) }()
			defer func() { srv.Close(); <-done }()
			ctx := context.Background()
			b.ResetTimer()
			for range b.N {
				if _, err := pkitest.Claim(ctx, ln.Addr().String(), "", bc.tls, "bench"); !errors.Is(err, pkitest.ErrRefused) {
					b.Fatal(err)
				}
			}
		})
	}
}
