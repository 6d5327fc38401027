package adversarial

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tether-iot/tether/client"
	"github.com/tether-iot/tether/gateway"
	"github.com/tether-iot/tether/internal/harness/pkitest"
	"github.com/tether-iot/tether/internal/harness/testutil"
	"github.com/tether-iot/tether/link"
)

// TestClaimsWithoutCredentials: attackers try, over and over from
// several addresses, every way of claiming node IDs they have no right
// to (issue 9): a plain-TCP claim of an ID that has a certificate, TLS
// without a certificate, with a certificate for another ID, expired,
// from another CA, revoked; a pinned ID from another address; and a
// flood of new IDs in approval mode. Every claim is refused and counted,
// the victims' IDs never get a link, the pending list stays bounded,
// and the honest node's traffic flows on.
func TestClaimsWithoutCredentials(t *testing.T) {
	const maxPending = 16
	var pk *pkitest.PKI
	h := start(t, options{configure: func(c *gateway.Config) {
		pk = pkitest.ForData(t, c.Data)
		pk.Node("victim") // the CA issued it a certificate: victim is TLS-only
		c.TLS.Enabled = true
		c.Nodes.Expect = []string{honestID, "victim", "pinned"}
		c.Nodes.Pin = map[string][]string{"pinned": {"127.0.0.1"}}
		c.Nodes.Approval = true
		c.Nodes.MaxPending = maxPending
	}})
	other, _ := pk.Node("someone-else")
	attacks := []struct {
		name, id string
		tls      *tls.Config
	}{
		{"plain claim of an ID with a certificate", "victim", nil},
		{"TLS without a certificate", "victim", pk.NoCert()},
		{"a certificate for another ID", "victim", other},
		{"an expired certificate", "victim", pk.Expired("victim")},
		{"a certificate from another CA", "victim", pk.Foreign("victim")},
		{"a pinned ID from another address", "pinned", nil},
	}
	const rounds = 5
	var refused, flood atomic.Int64
	var e errs
	before := h.g.Server().Stats()
	h.attack(func(ctx context.Context) {
		parallel(len(attacks), func(i int) {
			a := attacks[i]
			for range rounds {
				conn, err := pkitest.Claim(ctx, h.nodeAddr, source(i), a.tls, a.id)
				if !errors.Is(err, pkitest.ErrRefused) {
					if conn != nil {
						conn.Close()
					}
					e.add(fmt.Errorf("%s: %v, want refused", a.name, err))
					return
				}
				refused.Add(1)
			}
		})
		// New IDs by the hundred in approval mode.
		parallel(4, func(i int) {
			for k := range 50 {
				conn, err := pkitest.Claim(ctx, h.nodeAddr, source(i), nil, fmt.Sprintf("new-%d-%d", i, k))
				if !errors.Is(err, pkitest.ErrRefused) {
					if conn != nil {
						conn.Close()
					}
					e.add(fmt.Errorf("new ID served in approval mode: %v", err))
					return
				}
				flood.Add(1)
			}
		})
	})
	e.check(t)
	st := h.g.Server().Stats()
	t.Logf("refused %d claims and %d new IDs; server stats %+v", refused.Load(), flood.Load(), st)
	for name, d := range map[string]uint64{
		"PlainRefused": st.PlainRefused - before.PlainRefused,
		"NoCert":       st.NoCert - before.NoCert,
		"CertMismatch": st.CertMismatch - before.CertMismatch,
		"CertInvalid":  st.CertInvalid - before.CertInvalid,
		"PinRefused":   st.PinRefused - before.PinRefused,
	} {
		want := uint64(rounds)
		if name == "CertInvalid" {
			want = 2 * rounds // expired and foreign
		}
		if d != want {
			t.Errorf("%s moved by %d, want %d", name, d, want)
		}
	}
	if d := st.Pending - before.Pending; d != 200 {
		t.Errorf("Pending moved by %d, want 200", d)
	}
	if n, dropped := len(h.g.Pending()), h.g.PendingDropped(); n != maxPending || dropped != 200-maxPending {
		t.Errorf("pending list: %d listed, %d unlisted; want %d and %d", n, dropped, maxPending, 200-maxPending)
	}
	for _, id := range []string{"victim", "pinned"} {
		if _, err := h.g.Server().Lookup(id); err == nil {
			t.Errorf("%s got a link: an attacker's claim was served", id)
		}
	}
}

// TestRevokedCertificate: a stolen certificate, revoked in the config, is
// refused at the TLS handshake every time.
func TestRevokedCertificate(t *testing.T) {
	var stolen *tls.Config
	h := start(t, options{configure: func(c *gateway.Config) {
		pk := pkitest.ForData(t, c.Data)
		var serial string
		stolen, serial = pk.Node("victim")
		c.TLS.Enabled = true
		c.TLS.RevokedSerials = []string{serial}
	}})
	var e errs
	begin := time.Now()
	h.attack(func(ctx context.Context) {
		parallel(4, func(i int) {
			for range 10 {
				conn, err := pkitest.Claim(ctx, h.nodeAddr, source(i), stolen, "victim")
				if !errors.Is(err, pkitest.ErrRefused) {
					if conn != nil {
						conn.Close()
					}
					e.add(fmt.Errorf("revoked certificate: %v, want refused", err))
					return
				}
			}
		})
	})
	end := time.Now()
	e.check(t)
	// Each claim is counted as revoked, unless the server gave up on its
	// TLS handshake first: that takes 2 HandshakeTimeout (2T) of a
	// handshake of milliseconds, so only a process stalled for T or more
	// of it; such a claim is counted and logged as a failed handshake
	// with its timeout. (Seen under load: CertRevoked 39, want 40.)
	st := h.g.Server().Stats()
	timeouts := uint64(0)
	for line := range strings.Lines(h.logs.text()) {
		if strings.Contains(line, "TLS handshake failed") && strings.Contains(line, "timeout") {
			timeouts++
		}
	}
	if st.CertRevoked+timeouts != 40 || st.TLSFailed != timeouts || st.CertInvalid != 0 {
		t.Errorf("CertRevoked %d, TLS handshakes timed out %d (of %d failed), CertInvalid %d; want 40 revoked or timed out, nothing else", st.CertRevoked, timeouts, st.TLSFailed, st.CertInvalid)
	}
	if stalled := h.probe.MaxStalled(begin, end, 2*T); timeouts > 0 && stalled < T {
		t.Errorf("%d TLS handshakes timed out, but the process stalled at most %v of any 2T: the server is slow to refuse a revoked certificate", timeouts, stalled.Round(time.Millisecond))
	}
}

// TestDeniedDeviceIsDropped: a device has taken an ID (a stolen node, an
// impostor that got in before anyone noticed) and is connected; the
// operator denies the ID. The device is disconnected at once, not at its
// next connection, and every claim of the ID after that is refused,
// while the honest node's traffic flows on.
func TestDeniedDeviceIsDropped(t *testing.T) {
	h := start(t, options{})
	var e errs
	h.attack(func(ctx context.Context) {
		c, err := client.Dial(ctx, client.Config{ID: "thief", Server: h.nodeAddr, Timeout: T, Logger: testutil.Logger(),
			BadServer: func(context.Context, error) error { return nil }}) // keeps trying once denied
		if err != nil {
			e.add(err)
			return
		}
		defer c.Close()
		if err := c.Write(ctx, "in"); err != nil {
			e.add(err)
			return
		}
		l, err := h.g.Server().Lookup("thief")
		if err != nil {
			e.add(err)
			return
		}
		events := make(chan link.Event, 16)
		l.Notify(events)
		defer l.Stop(events)
		denied := time.Now()
		if err := h.g.Deny("thief"); err != nil {
			e.add(err)
			return
		}
		timer := time.NewTimer(T / 2) // sooner than any outage detection
		defer timer.Stop()
		for down := false; !down; {
			select {
			case ev := <-events:
				down = ev.Kind == link.Down
			case <-timer.C:
				e.add(errors.New("the denied device is still connected"))
				return
			}
		}
		t.Logf("FIGURE denied device disconnected %v after the denial", time.Since(denied).Round(time.Millisecond))
		for i := range 10 {
			conn, err := pkitest.Claim(ctx, h.nodeAddr, source(i), nil, "thief")
			if !errors.Is(err, pkitest.ErrRefused) {
				if conn != nil {
					conn.Close()
				}
				e.add(fmt.Errorf("claim of the denied ID: %v, want refused", err))
				return
			}
		}
	})
	e.check(t)
}
