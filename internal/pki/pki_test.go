package pki_test

import (
	"crypto/x509"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/tether-iot/tether/internal/pki"
)

func TestCA(t *testing.T) {
	dir := pki.Dir(t.TempDir())
	if _, err := pki.Open(dir); !errors.Is(err, pki.ErrNoCA) {
		t.Fatalf("open before init: %v", err)
	}
	ca, created, err := pki.Ensure(dir)
	if err != nil || !created {
		t.Fatalf("ensure: %v, created %v", err, created)
	}
	again, created, err := pki.Ensure(dir)
	if err != nil || created || !again.Cert.Equal(ca.Cert) {
		t.Fatalf("second ensure: %v, created %v", err, created)
	}
	for f, want := range map[string]os.FileMode{pki.CAKeyFile: 0o600, pki.CAFile: 0o644} {
		fi, err := os.Stat(filepath.Join(dir, f))
		if err != nil || fi.Mode().Perm() != want {
			t.Fatalf("%s: %v, mode %v, want %v", f, err, fi.Mode().Perm(), want)
		}
	}

	is, err := ca.IssueNode("pump 1 é", 48*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	cert, key, caFile, err := ca.WriteNode(out, is)
	if err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(key); fi.Mode().Perm() != 0o600 {
		t.Fatalf("node key mode %v", fi.Mode().Perm())
	}
	if _, _, _, err := ca.WriteNode(out, is); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("overwriting a key: %v", err)
	}
	pool, err := pki.LoadPool(caFile)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(cert)
	certs, err := ca.List()
	if err != nil || len(certs) != 1 {
		t.Fatalf("list: %v, %d", err, len(certs))
	}
	c := certs[0]
	if pki.NodeID(c) != "pump 1 é" || pki.Serial(c) != is.Serial || len(b) == 0 {
		t.Fatalf("issued %q %s", pki.NodeID(c), pki.Serial(c))
	}
	// A node certificate verifies as a client, never as a server.
	if _, err := c.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Verify(x509.VerifyOptions{Roots: pool, DNSName: pki.ServerName}); err == nil {
		t.Fatal("a node certificate passes as the gateway's")
	}
	gwCert, _, err := ca.GatewayCredentials([]string{"gw.lan", "192.168.1.10"})
	if err != nil {
		t.Fatal(err)
	}
	gb, _ := os.ReadFile(gwCert)
	if len(gb) == 0 {
		t.Fatal("no gateway certificate")
	}
	if got := pki.NormalizeSerial(" 0X0A:BC:de "); got != "abcde" {
		t.Fatalf("normalized %q", got)
	}
}
