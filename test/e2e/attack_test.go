package e2e

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"

	"github.com/tether-iot/tether/internal/harness/faultnet"
	"github.com/tether-iot/tether/internal/harness/pkitest"
)

// maxClaims bounds the attacker's claims in one test.
const maxClaims = 2000

// badCredential is an attacker's way of claiming a node's ID without its
// credentials.
type badCredential struct {
	name string
	id   string
	tls  *tls.Config // nil: plain TCP
}

// badCredentials are, for each node of a TLS cluster, the ways of
// claiming its ID that the server must refuse: plain TCP, TLS without a
// certificate, a certificate for another ID, expired, from another CA,
// revoked (which must be made before the server: see RevokedSerials).
func badCredentials(p *pkitest.PKI, nodes int) []badCredential {
	var bad []badCredential
	other, _ := p.Node("not-a-node")
	for i := range nodes {
		id := fmt.Sprintf("node-%d", i)
		bad = append(bad,
			badCredential{"plain TCP", id, nil},
			badCredential{"no certificate", id, p.NoCert()},
			badCredential{"another ID's certificate", id, other},
			badCredential{"expired certificate", id, p.Expired(id)},
			badCredential{"another CA's certificate", id, p.Foreign(id)},
			badCredential{"revoked certificate", id, p.Stolen(id)},
		)
	}
	return bad
}

// attack claims the cluster's node IDs with bad credentials, one claim
// at a time through a proxy of the fault network, while the nodes go
// through their outages (when an ID is free to take), until the returned
// stop is called. Every claim must be refused; the checker then proves
// that no message was taken. Nothing happens without bad credentials.
func (c *cluster) attack(ctx context.Context, bad []badCredential, seed uint64) (stop func()) {
	if len(bad) == 0 {
		return func() {}
	}
	t := c.t
	px, err := faultnet.Start(context.Background(), faultnet.Config{Target: c.addr})
	if err != nil {
		t.Fatal(err)
	}
	actx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	var refused, served int
	wg.Go(func() {
		rng := rand.New(rand.NewPCG(seed, 99))
		for range maxClaims {
			if actx.Err() != nil {
				break
			}
			b := bad[rng.IntN(len(bad))]
			conn, err := pkitest.Claim(actx, px.Addr(), "", b.tls, b.id)
			switch {
			case errors.Is(err, pkitest.ErrRefused):
				refused++
			case actx.Err() != nil:
			case err == nil:
				served++
				conn.Close()
				t.Errorf("%s: claim of %s with %s served", b.id, b.id, b.name)
			default:
				t.Errorf("%s: claim with %s: %v", b.id, b.name, err)
			}
		}
	})
	return func() {
		cancel()
		wg.Wait()
		if err := px.Close(); err != nil {
			t.Errorf("attacker's proxy: %v", err)
		}
		st := c.srv.Stats()
		t.Logf("attacker: %d claims without credentials refused, %d served; server: plain %d, no certificate %d, other ID %d, invalid %d, revoked %d",
			refused, served, st.PlainRefused, st.NoCert, st.CertMismatch, st.CertInvalid, st.CertRevoked)
		if refused == 0 {
			t.Error("the attacker made no claim")
		}
	}
}
