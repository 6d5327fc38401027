package main

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tether-iot/tether/gateway"
)

// TestServeDamagedStore (issue 10.5): an empty gateway.db stops tether
// serve with a message naming the file and what to do; --fresh-store
// moves it aside and starts.
func TestServeDamagedStore(t *testing.T) {
	data := t.TempDir()
	path := filepath.Join(data, "gateway.db")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := run(ctx, &env{stdout: io.Discard, stderr: io.Discard}, []string{"serve", "--data", data, "--addr", "127.0.0.1:0", "--no-web", "--broker", "none"})
	if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "--fresh-store") || !strings.Contains(err.Error(), "backup") {
		t.Fatalf("serve on an empty store: %v; want an error naming %s, a backup and --fresh-store", err, path)
	}
	s := startServe(t, "--data", data, "--addr", "127.0.0.1:0", "--broker", "none", "--fresh-store")
	s.stop()
	if aside, _ := filepath.Glob(path + ".damaged-*"); len(aside) != 1 {
		t.Errorf("the damaged store was not moved aside: %v", aside)
	}
}

// TestBackup (issue 10.5): tether backup copies the store of a running
// gateway; the copy is a store that holds what was queued.
func TestBackup(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	data := t.TempDir()
	s := startServe(t, "--data", data, "--addr", "127.0.0.1:0", "--timeout", serveT.String(), "--broker", "none")
	m := dialNode(t, ctx, s.addr, "m")
	s.send("away", "kept in the backup")
	s.send("m", "marker")
	readLine(t, ctx, m, "marker")
	out := filepath.Join(t.TempDir(), "copy.db")
	got, err := runCmd(t, ctx, "backup", "--data", data, "--out", out)
	if err != nil || !strings.Contains(got, "from the running gateway") {
		t.Fatalf("backup: %v\n%s", err, got)
	}
	restored := t.TempDir()
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(restored, "gateway.db"), b, 0o600); err != nil {
		t.Fatal(err)
	}
	g, err := gateway.New(gateway.Config{Data: restored, MQTT: gateway.MQTTConfig{Broker: gateway.BrokerNone}, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	if n := g.Queue("away").Messages; n != 1 {
		t.Errorf("the restored store holds %d messages for away, want 1", n)
	}
}
