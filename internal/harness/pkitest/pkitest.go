// Package pkitest gives tests a CA, a gateway's TLS config and node
// credentials of every kind (good, expired, for another ID, from another
// CA), and an attacker's claim of a node ID: the access-control tests of
// server, gateway, e2e and test/adversarial share them.
package pkitest

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/tether-iot/tether/internal/pki"
)

// PKI is a test CA in a temporary directory, and the gateway's
// credentials.
type PKI struct {
	t   testing.TB
	CA  *pki.CA
	Dir string
	// Server is the gateway's node-listener TLS config (pki.ServerTLS).
	Server *tls.Config
	// RevokedSerials are the serials of the certificates Stolen issued:
	// put them in the server's revocation list.
	RevokedSerials []string
}

// New makes a CA and the gateway's certificate in a temporary directory.
func New(t testing.TB) *PKI { return ForData(t, t.TempDir()) }

// ForData opens (or makes) the CA of the gateway whose data directory is
// data, as the gateway itself does with tls.enabled.
func ForData(t testing.TB, data string) *PKI {
	t.Helper()
	dir := pki.Dir(data)
	ca, _, err := pki.Ensure(dir)
	if err != nil {
		t.Fatal(err)
	}
	cert, key, err := ca.GatewayCredentials(nil)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := pki.ServerTLS(cert, key, ca.Pool())
	if err != nil {
		t.Fatal(err)
	}
	return &PKI{t: t, CA: ca, Dir: dir, Server: srv}
}

// Node returns the TLS config of node id, with a good certificate, and
// the certificate's serial.
func (p *PKI) Node(id string) (*tls.Config, string) {
	p.t.Helper()
	is, err := p.CA.IssueNode(id, 0)
	if err != nil {
		p.t.Fatal(err)
	}
	return p.config(is), is.Serial
}

// Stolen returns node id's TLS config with a good certificate whose
// serial it adds to RevokedSerials.
func (p *PKI) Stolen(id string) *tls.Config {
	p.t.Helper()
	c, serial := p.Node(id)
	p.RevokedSerials = append(p.RevokedSerials, serial)
	return c
}

// NodeFiles writes node id's credentials as tether ca issue does and
// returns the directory.
func (p *PKI) NodeFiles(id string) string {
	p.t.Helper()
	is, err := p.CA.IssueNode(id, 0)
	if err != nil {
		p.t.Fatal(err)
	}
	dir := filepath.Join(p.t.TempDir(), "node-"+id)
	if _, _, _, err := p.CA.WriteNode(dir, is); err != nil {
		p.t.Fatal(err)
	}
	return dir
}

// Expired returns node id's TLS config with a certificate that expired
// an hour ago.
func (p *PKI) Expired(id string) *tls.Config {
	p.t.Helper()
	now := time.Now()
	is, err := p.CA.IssueNodeAt(id, now.Add(-48*time.Hour), now.Add(-time.Hour))
	if err != nil {
		p.t.Fatal(err)
	}
	return p.config(is)
}

// Foreign returns node id's TLS config with a certificate from another
// CA, which trusts this gateway all the same.
func (p *PKI) Foreign(id string) *tls.Config {
	p.t.Helper()
	other, _, err := pki.Ensure(pki.Dir(p.t.TempDir()))
	if err != nil {
		p.t.Fatal(err)
	}
	is, err := other.IssueNode(id, 0)
	if err != nil {
		p.t.Fatal(err)
	}
	return p.config(is)
}

// NoCert returns a TLS config that trusts the gateway but has no client
// certificate.
func (p *PKI) NoCert() *tls.Config {
	return &tls.Config{RootCAs: p.CA.Pool(), ServerName: pki.ServerName, MinVersion: tls.VersionTLS13}
}

func (p *PKI) config(is pki.Issued) *tls.Config {
	p.t.Helper()
	c, err := tls.X509KeyPair(is.CertPEM, is.KeyPEM)
	if err != nil {
		p.t.Fatal(err)
	}
	cfg := p.NoCert()
	cfg.Certificates = []tls.Certificate{c}
	return cfg
}

// ErrRefused: the server closed the connection instead of serving the
// claimed ID.
var ErrRefused = errors.New("claim refused")

// Claim is an attacker's (or a test's) claim of node id on addr, from
// the local address from ("" for any; 127.0.0.2 and the like are other
// loopback addresses), over TLS with tc or plain TCP if tc is nil. It
// writes the ID line and reads the server's first byte: nil means the
// server serves the ID (its first keepalive came), an error wrapping
// ErrRefused that it closed the connection. It leaves the connection
// open while ctx lasts if accepted (the caller's ID is then taken).
func Claim(ctx context.Context, addr, from string, tc *tls.Config, id string) (net.Conn, error) {
	d := net.Dialer{Timeout: 5 * time.Second}
	if from != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(from)}
	}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	fail := func(err error) (net.Conn, error) {
		if errors.Is(err, ErrRefused) {
			// A TLS alert comes before the server has counted and
			// closed: wait for the close, which comes after.
			io.Copy(io.Discard, conn)
		}
		stop()
		conn.Close()
		return nil, err
	}
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	c := conn
	if tc != nil {
		t := tls.Client(conn, tc)
		if err := t.HandshakeContext(ctx); err != nil {
			// TLS 1.2 would fail here; TLS 1.3 fails on the first read.
			return fail(fmt.Errorf("%w: TLS handshake: %v", ErrRefused, err))
		}
		c = t
	}
	if _, err := c.Write([]byte(id + "\n")); err != nil {
		return fail(fmt.Errorf("%w: write: %v", ErrRefused, err))
	}
	b, err := bufio.NewReader(c).ReadByte()
	switch {
	case err == nil && b == '\n':
		conn.SetDeadline(time.Time{})
		return c, nil
	case err == nil:
		return fail(fmt.Errorf("first byte %q from the server, not a keepalive", b))
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return fail(fmt.Errorf("no verdict from the server in 10 s: %w", err))
	}
	return fail(fmt.Errorf("%w: %v", ErrRefused, err))
}
