package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/tether-iot/tether/internal/passwd"
)

// TestServeWebFlags: the access flags set the config, and are in the
// usage.
func TestServeWebFlags(t *testing.T) {
	e := &env{stdout: io.Discard, stderr: io.Discard}
	cfg, _, err := parseServe(e, []string{"--web", "0.0.0.0:8080", "--web-token-file", "/etc/tether/token",
		"--web-users", "/etc/tether/users", "--web-insecure", "--web-hosts", "tether.lan, proxy.lan"})
	if err != nil {
		t.Fatal(err)
	}
	w := cfg.Web
	if w.Addr != "0.0.0.0:8080" || w.TokenFile != "/etc/tether/token" || w.UsersFile != "/etc/tether/users" || !w.Insecure ||
		!slices.Equal(w.Hosts, []string{"tether.lan", "proxy.lan"}) {
		t.Errorf("web config %+v", w)
	}
	var out bytes.Buffer
	run(context.Background(), &env{stdout: &out, stderr: io.Discard}, []string{"serve", "-h"})
	for _, f := range []string{"-web-token-file", "-web-users", "-web-insecure", "-web-hosts", "127.0.0.1:8080"} {
		if !strings.Contains(out.String(), f) {
			t.Errorf("usage lacks %s", f)
		}
	}
}

// TestServeWebBeyondLoopback: serve refuses a status page on every
// interface without credentials, and says which flags fix it.
func TestServeWebBeyondLoopback(t *testing.T) {
	err := run(context.Background(), &env{stdin: strings.NewReader(""), stdout: io.Discard, stderr: io.Discard},
		[]string{"serve", "--addr", "127.0.0.1:0", "--broker", "none", "--data", t.TempDir(), "--web", "0.0.0.0:0"})
	if err == nil || !strings.Contains(err.Error(), "--web-token-file") || !strings.Contains(err.Error(), "--web-insecure") {
		t.Fatalf("serve --web 0.0.0.0:0 without credentials: %v, want a refusal naming --web-token-file and --web-insecure", err)
	}
}

// TestWebPasswd: tether web passwd FILE USER makes the file (mode
// 0600) with a line that verifies the password read from stdin, changes
// a user's password in place and adds another user.
func TestWebPasswd(t *testing.T) {
	file := filepath.Join(t.TempDir(), "web-users")
	set := func(user, pw string) error {
		return run(context.Background(), &env{stdin: strings.NewReader(pw + "\n"), stdout: io.Discard, stderr: io.Discard},
			[]string{"web", "passwd", file, user})
	}
	if err := set("alice", "s3cret pass"); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(file); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("file: %v, mode %v; want 0600", err, fi.Mode())
	}
	if err := set("bob", "builder"); err != nil {
		t.Fatal(err)
	}
	if err := set("alice", "new pass"); err != nil {
		t.Fatal(err)
	}
	f, err := passwd.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	if f.Len() != 2 || !f.Verify("alice", "new pass") || f.Verify("alice", "s3cret pass") || !f.Verify("bob", "builder") {
		t.Error("the file does not hold alice's new password and bob's")
	}
	for _, args := range [][]string{{"web"}, {"web", "passwd", file}, {"web", "passwd", file, "a:b"}, {"web", "user", file, "a"}} {
		if err := run(context.Background(), &env{stdin: strings.NewReader("pw\n"), stdout: io.Discard, stderr: io.Discard}, args); err == nil {
			t.Errorf("%v accepted", args)
		}
	}
	if err := run(context.Background(), &env{stdin: strings.NewReader(""), stdout: io.Discard, stderr: io.Discard}, []string{"web", "passwd", file, "carol"}); err == nil {
		t.Error("web passwd with no password on stdin succeeded")
	}
}
