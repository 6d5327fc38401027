package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tether-iot/tether/internal/harness/faultnet"
	"github.com/tether-iot/tether/internal/harness/legacy"
	"github.com/tether-iot/tether/internal/harness/testutil"
	"github.com/tether-iot/tether/server"
)

// TestMain (goleak) is in serve_test.go.

// nodeStderr is a bytes.Buffer safe for concurrent use: a command's stderr.
type nodeStderr struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *nodeStderr) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *nodeStderr) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startNode runs "tether node" in-process with piped stdin and stdout.
func runNodeCmd(t *testing.T, ctx context.Context, args ...string) (stdin io.WriteCloser, stdout *bufio.Reader, stderr *nodeStderr, done <-chan error) {
	t.Helper()
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	stderr = &nodeStderr{}
	errc := make(chan error, 1)
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		err := run(ctx, &env{stdin: inR, stdout: outW, stderr: stderr}, append([]string{"node"}, args...))
		outW.Close()
		inR.Close()
		errc <- err
	}()
	t.Cleanup(func() {
		inW.Close()
		outR.Close() // unblock a last print
		<-finished
	})
	return inW, bufio.NewReader(outR), stderr, errc
}

func nodeStdoutLine(t *testing.T, r *bufio.Reader) string {
	t.Helper()
	s, err := r.ReadString('\n')
	if err != nil {
		t.Fatalf("stdout: %v (got %q)", err, s)
	}
	return strings.TrimSuffix(s, "\n")
}

func TestNodeAgainstLegacyServer(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	srv, err := legacy.StartServer(ctx, legacy.ServerConfig{Timeout: 200 * time.Millisecond, Logger: testutil.Logger()})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	stdin, stdout, stderr, done := runNodeCmd(t, ctx, "--id", "7", "--server", srv.Addr(), "--timeout", "200ms")
	fmt.Fprint(stdin, "one\ntwo\n")
	conn, err := srv.Conn(ctx, "7")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"one\n", "two\n"} {
		got, err := conn.ReadLine(ctx)
		if err != nil || got != want {
			t.Fatalf("server read %q, %v; want %q", got, err, want)
		}
	}
	if err := conn.Write(ctx, "back", true, true); err != nil {
		t.Fatal(err)
	}
	if got := nodeStdoutLine(t, stdout); got != "back" {
		t.Errorf("node printed %q, want back", got)
	}
	stdin.Close()
	if err := <-done; err != nil {
		t.Fatalf("node: %v\n%s", err, stderr)
	}
	if !strings.Contains(stderr.String(), "node=7 state=up") {
		t.Errorf("no state=up line on stderr:\n%s", stderr)
	}
}

// TestNodeExactlyOnceThroughOutages writes numbered lines with qos and no
// wait while the proxy cuts, resets and silences the link, and checks
// that the server gets each line once and the node exits 0 at EOF.
func TestNodeExactlyOnceThroughOutages(t *testing.T) {
	for _, wait := range []string{"true", "false"} {
		t.Run("wait="+wait, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			const T = 200 * time.Millisecond
			srv, err := server.New(server.Config{Timeout: T, Logger: testutil.Logger()})
			if err != nil {
				t.Fatal(err)
			}
			ln := testutil.Listen(t)
			go srv.Serve(ln)
			defer srv.Close()
			p, err := faultnet.Start(ctx, faultnet.Config{Target: ln.Addr().String()})
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			stdin, _, stderr, done := runNodeCmd(t, ctx, "--id", "n1", "--server", p.Addr(), "--timeout", T.String(),
				"--wait="+wait, "--reconnect-delay", "100ms")
			l, err := srv.Node(ctx, "n1")
			if err != nil {
				t.Fatal(err)
			}
			// Each group of lines is written, then a fault strikes while
			// they are in flight, then the server reads them.
			const group, lines = 15, 60
			faults := []func(){p.Cut, p.Reset, func() { p.Blackhole(2 * T) }, func() {}}
			seen := map[string]int{}
			for g, fault := range faults {
				for i := range group {
					fmt.Fprintf(stdin, "line %d\n", g*group+i)
				}
				if g == len(faults)-1 {
					stdin.Close()
				}
				fault()
				for range group {
					s, err := l.ReadLine(ctx)
					if err != nil {
						t.Fatalf("group %d: %v", g, err)
					}
					seen[s]++
				}
			}
			if err := <-done; err != nil {
				t.Fatalf("node: %v\n%s", err, stderr)
			}
			for i := range lines {
				if n := seen[fmt.Sprintf("line %d", i)]; n != 1 {
					t.Errorf("line %d received %d times", i, n)
				}
			}
			if l.Stats().Received != lines {
				t.Errorf("server received %d lines, want %d", l.Stats().Received, lines)
			}
		})
	}
}

func TestNodeNoServer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nobody listens there now
	var stderr nodeStderr
	err = run(context.Background(), &env{stdin: strings.NewReader("x\n"), stdout: io.Discard, stderr: &stderr},
		[]string{"node", "--id", "1", "--server", addr, "--timeout", "200ms"})
	if err == nil || !strings.Contains(err.Error(), "connection refused") || !strings.Contains(err.Error(), "--retry") {
		t.Errorf("err = %v; want connection refused and advice", err)
	}
}

func TestNodeBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"--server", "h:1"},
		{"--id", "1"},
		{"--id", "1", "--server", "h:1", "--timeout", "0s"},
		{"--id", "1", "--server", "h:1", "extra"},
	} {
		err := run(context.Background(), &env{stdin: strings.NewReader(""), stdout: io.Discard, stderr: io.Discard}, append([]string{"node"}, args...))
		if err == nil {
			t.Errorf("node %q: no error", args)
		}
	}
}

// TestHelpExplainsEveryFlag checks that each command of this file's
// family documents every one of its flags in its help.
func TestHelpExplainsEveryFlag(t *testing.T) {
	for name, flags := range map[string][]string{
		"node": {"id", "server", "timeout", "qos", "wait", "retry", "stay", "reconnect-delay", "max-line", "log-level"},
		"soak": {"nodes", "outages", "duration", "timeout", "interval", "faults", "fault-every", "seed", "server", "serve", "addr", "drain-timeout", "log-level", "quiet"},
		"demo": {"outages", "interval", "duration", "timeout", "serve", "addr", "server", "node", "nodes", "seed", "log-level", "switch", "retry"},
	} {
		var out bytes.Buffer
		if err := run(context.Background(), &env{stdout: &out, stderr: io.Discard}, []string{"help", name}); err != nil && err.Error() != "flag: help requested" {
			t.Fatalf("help %s: %v", name, err)
		}
		for _, f := range flags {
			if !strings.Contains(out.String(), "  -"+f) {
				t.Errorf("help %s does not explain -%s:\n%s", name, f, out.String())
			}
		}
	}
}
