package main

import (
	"context"
	"strings"
	"testing"
	"time"
)

// TestNodesForget (issue 10.2): a typo'd stdin ID makes a durable queue;
// tether nodes forget removes it, from the running gateway (its admin
// socket) or, with none running, from the store.
func TestNodesForget(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	data := t.TempDir()
	s := startServe(t, "--data", data, "--addr", "127.0.0.1:0", "--timeout", serveT.String(), "--broker", "none")
	// stdin is read in order: once node m has its marker, the line for
	// typo is queued.
	m := dialNode(t, ctx, s.addr, "m")
	s.send("typo", "for nobody")
	s.send("m", "marker 1")
	readLine(t, ctx, m, "marker 1")
	out, err := runCmd(t, ctx, "nodes", "forget", "typo", "--data", data)
	if err != nil || !strings.Contains(out, "forgotten by the running gateway; 1 queued") {
		t.Fatalf("nodes forget (running): %v\n%s", err, out)
	}
	s.send("typo2", "for nobody either")
	s.send("m", "marker 2")
	readLine(t, ctx, m, "marker 2")
	if err := s.stop(); err != nil {
		t.Fatal(err)
	}
	out, err = runCmd(t, ctx, "nodes", "forget", "typo2", "--data", data)
	if err != nil || !strings.Contains(out, "in the store (no gateway running)") || !strings.Contains(out, "1 queued") {
		t.Fatalf("nodes forget (stopped): %v\n%s", err, out)
	}
	out, err = runCmd(t, ctx, "nodes", "forget", "bad\u200bid", "--data", data)
	if err == nil || !strings.Contains(out+err.Error(), `\u200b`) {
		t.Fatalf("nodes forget of a bad ID: %v\n%s", err, out)
	}
}
