package main

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tether-iot/tether/client"
	"github.com/tether-iot/tether/internal/harness/pkitest"
	"github.com/tether-iot/tether/internal/harness/testutil"
)

// runCmd runs a tether command in-process and returns its stdout.
func runCmd(t *testing.T, ctx context.Context, args ...string) (string, error) {
	t.Helper()
	var out, errb bytes.Buffer
	err := run(ctx, &env{stdout: &out, stderr: &errb}, args)
	return out.String() + errb.String(), err
}

// Provisioning in two commands, then approval mode, from the shell: tether
// ca issue writes a node's files, tether node --cert --key --ca uses them
// against tether serve --tls; the ID is TLS-only from then on; a new
// plain ID waits in tether nodes pending until tether nodes approve.
func TestCLIProvisionAndApprove(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	data := t.TempDir()
	dir := filepath.Join(t.TempDir(), "pump1")
	out, err := runCmd(t, ctx, "ca", "issue", "--id", "pump1", "--data", data, "--out", dir, "--days", "30")
	if err != nil || !strings.Contains(out, "serial") {
		t.Fatalf("ca issue: %v\n%s", err, out)
	}
	s := startServe(t, "--data", data, "--addr", "127.0.0.1:0", "--timeout", serveT.String(), "--mqtt-listen", "none", "--tls", "--approval")

	tc, err := client.LoadTLS(filepath.Join(dir, "node.pem"), filepath.Join(dir, "node-key.pem"), filepath.Join(dir, "ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.Dial(ctx, client.Config{ID: "pump1", Server: s.addr, Timeout: serveT, TLS: tc, Logger: testutil.Logger()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Write(ctx, "hello over TLS"); err != nil {
		t.Fatal(err)
	}
	s.expectLine(ctx, "pump1\thello over TLS")
	if _, err := pkitest.Claim(ctx, s.addr, "", nil, "pump1"); !errors.Is(err, pkitest.ErrRefused) {
		t.Fatalf("plain claim of pump1: %v", err)
	}
	if _, err := s.stderr.wait(regexp.MustCompile(`plain-TCP claim refused.*node=pump1`), s.done); err != nil {
		t.Fatal(err)
	}

	if _, err := pkitest.Claim(ctx, s.addr, "", nil, "sensor9"); !errors.Is(err, pkitest.ErrRefused) {
		t.Fatalf("new ID in approval mode: %v", err)
	}
	out, err = runCmd(t, ctx, "nodes", "pending", "--data", data)
	if err != nil || !strings.Contains(out, "sensor9") {
		t.Fatalf("nodes pending: %v\n%s", err, out)
	}
	out, err = runCmd(t, ctx, "nodes", "approve", "sensor9", "--data", data)
	if err != nil || !strings.Contains(out, "approved by the running gateway") {
		t.Fatalf("nodes approve: %v\n%s", err, out)
	}
	conn, err := pkitest.Claim(ctx, s.addr, "", nil, "sensor9")
	if err != nil {
		t.Fatalf("approved ID: %v", err)
	}
	conn.Close()
	out, err = runCmd(t, ctx, "ca", "list", "--data", data)
	if err != nil || !strings.Contains(out, "pump1") {
		t.Fatalf("ca list: %v\n%s", err, out)
	}
}

func TestAccessHelp(t *testing.T) {
	for cmd, flags := range map[string][]string{
		"serve": {"-tls", "-tls-required", "-tls-required-for", "-tls-cert", "-tls-key", "-tls-ca", "-tls-revoke", "-revoke-ids", "-allow-from", "-approval"},
		"node":  {"-cert", "-key", "-ca"},
		"ca":    {"init", "issue", "list", "-days", "-out"},
		"nodes": {"pending", "approve", "deny", "forget"},
	} {
		out, _ := runCmd(t, context.Background(), "help", cmd)
		for _, f := range flags {
			if !strings.Contains(out, f) {
				t.Errorf("tether help %s does not explain %s:\n%s", cmd, f, out)
			}
		}
	}
}
