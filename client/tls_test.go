package client

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tether-iot/tether/internal/harness/pkitest"
)

// A node's TLS config from tether ca issue's files; a certificate for
// another ID is refused before dialing (the gateway would refuse it);
// missing files are explained.
func TestLoadTLS(t *testing.T) {
	p := pkitest.New(t)
	dir := p.NodeFiles("pump1")
	tc, err := LoadTLS(filepath.Join(dir, "node.pem"), filepath.Join(dir, "node-key.pem"), filepath.Join(dir, "ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	if id, ok := certID(tc); !ok || id != "pump1" || tc.ServerName != "tether-gateway" {
		t.Fatalf("certificate for %q (%v), server name %q", id, ok, tc.ServerName)
	}
	_, err = Dial(context.Background(), Config{ID: "pump2", Server: "127.0.0.1:1", TLS: tc})
	if err == nil || !strings.Contains(err.Error(), `for node "pump1", not "pump2"`) {
		t.Fatalf("dial with another node's certificate: %v", err)
	}
	for _, files := range [][3]string{
		{"", "k", "c"},
		{filepath.Join(dir, "node.pem"), filepath.Join(dir, "missing.pem"), filepath.Join(dir, "ca.pem")},
		{filepath.Join(dir, "node.pem"), filepath.Join(dir, "node-key.pem"), filepath.Join(dir, "node-key.pem")},
	} {
		if _, err := LoadTLS(files[0], files[1], files[2]); err == nil {
			t.Errorf("%v: no error", files)
		}
	}
}
