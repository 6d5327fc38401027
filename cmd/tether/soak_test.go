package main

import (
	"bufio"
	"context"
	"io"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestSoakCommand(t *testing.T) {
	t.Parallel()
	var stdout, stderr nodeStderr
	err := run(context.Background(), &env{stdout: &stdout, stderr: &stderr},
		[]string{"soak", "--nodes", "4", "--outages", "20", "--timeout", "200ms"})
	if err != nil {
		t.Fatalf("soak: %v\n%s\n%s", err, stdout.String(), stderr.String())
	}
	out := stdout.String()
	for _, want := range []string{"PASS: 0 lost, 0 duplicated, 0 out of order", "time to recover", "node->server", "faults injected"} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
}

// TestSoakSplit runs the soak's server side and its nodes as two commands,
// as on two hosts.
func TestSoakSplit(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	outR, outW := io.Pipe()
	served := make(chan error, 1)
	go func() {
		served <- run(ctx, &env{stdout: outW, stderr: io.Discard},
			[]string{"soak", "--serve", "--addr", "127.0.0.1:0", "--timeout", "200ms"})
		outW.Close()
	}()
	first, err := bufio.NewReader(outR).ReadString('\n')
	if err != nil {
		t.Fatalf("soak --serve printed nothing: %v", err)
	}
	go io.Copy(io.Discard, outR)
	addr := regexp.MustCompile(`127\.0\.0\.1:\d+`).FindString(first)
	if addr == "" {
		t.Fatalf("no address in %q", first)
	}
	var stdout nodeStderr
	err = run(ctx, &env{stdout: &stdout, stderr: io.Discard},
		[]string{"soak", "--server", addr, "--nodes", "3", "--outages", "9", "--faults", "cut,reset,refuse", "--timeout", "200ms", "--quiet"})
	if err != nil || !strings.Contains(stdout.String(), "PASS") {
		t.Errorf("soak --server: %v\n%s", err, stdout.String())
	}
	cancel()
	if err := <-served; err != nil {
		t.Errorf("soak --serve: %v", err)
	}
}

func TestSoakBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"--nodes", "0"},
		{"--faults", "flood"},
		{"--timeout", "-1s"},
		{"extra"},
		{"--log-level", "loud"},
	} {
		err := run(context.Background(), &env{stdout: io.Discard, stderr: io.Discard}, append([]string{"soak"}, args...))
		if err == nil {
			t.Errorf("soak %q: no error", args)
		}
	}
}

func TestSoakNoServer(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := run(ctx, &env{stdout: io.Discard, stderr: io.Discard},
		[]string{"soak", "--server", "127.0.0.1:1", "--nodes", "1", "--faults", "none", "--timeout", "200ms"})
	if err == nil || !strings.Contains(err.Error(), "cannot reach the server") {
		t.Errorf("err = %v, want cannot reach the server", err)
	}
}
