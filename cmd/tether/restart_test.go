package main

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"
)

// TestNodeRestartSameFirstLine is the scenario of issue 8: tether node
// run twice with the same first line, against tether serve with a store.
// Each run is a new node life; both lines reach serve's stdout.
func TestNodeRestartSameFirstLine(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s := startServe(t, "--addr", "127.0.0.1:0", "--timeout", serveT.String(), "--broker", "none")
	for run := range 3 {
		var stderr nodeStderr
		err := runNodeOnce(ctx, &stderr, "--id", "deep", "--server", s.addr, "--timeout", serveT.String())
		if err != nil {
			t.Fatalf("run %d: node: %v\n%s", run+1, err, stderr.String())
		}
		s.expectLine(ctx, "deep\tboot")
	}
	if err := s.stop(); err != nil {
		t.Fatalf("serve after SIGINT: %v", err)
	}
}

// runNodeOnce runs tether node with "boot" on its stdin, until it exits.
func runNodeOnce(ctx context.Context, stderr io.Writer, args ...string) error {
	return run(ctx, &env{stdin: strings.NewReader("boot\n"), stdout: io.Discard, stderr: stderr}, append([]string{"node"}, args...))
}
