package netns

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tether-iot/tether/internal/harness/netns"
	"github.com/tether-iot/tether/internal/harness/testutil"
	"github.com/tether-iot/tether/internal/notify"
	"github.com/tether-iot/tether/server"
)

// buildTether builds the tether command into a temporary directory.
func buildTether(t *testing.T, ctx context.Context) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "tether")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/tether")
	cmd.Dir = filepath.Join("..", "..")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/tether: %v\n%s", err, out)
	}
	return bin
}

// TestNodeCommandRealOutages runs "tether node" as a process in the
// nodes' namespace, against a server in the other one, and takes the link
// down while lines go both ways: every stdin line reaches the server once,
// every server line is printed once, and the node exits 0 at EOF.
func TestNodeCommandRealOutages(t *testing.T) {
	needNetns(t)
	const (
		cuts  = 4
		lines = 8 // per cut, node to server
		T     = 400 * time.Millisecond
	)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	bin := buildTether(t, ctx)

	pid := os.Getpid()
	pair, err := netns.NewPair(ctx, fmt.Sprintf("tnode-%d", pid), netip.AddrFrom4([4]byte{10, 232, byte(pid % 250), 0}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pair.Close() })
	const srvNS, nodeNS = 0, 1
	addr := netip.AddrPortFrom(pair.Addr[srvNS], 8123).String()
	ln, err := pair.Listen(ctx, srvNS, addr)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(server.Config{Timeout: T, Logger: testutil.Logger()})
	if err != nil {
		t.Fatal(err)
	}
	serveDone := make(chan struct{})
	go func() { defer close(serveDone); srv.Serve(ln) }()
	defer func() { srv.Close(); <-serveDone }()

	cmd := exec.CommandContext(ctx, "ip", "netns", "exec", pair.NS[nodeNS],
		bin, "node", "--id", "sh1", "--server", addr, "--timeout", T.String())
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	printed := make(chan string, 64)
	go func() {
		defer close(printed)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			printed <- sc.Text()
		}
	}()
	l, err := srv.Node(ctx, "sh1")
	if err != nil {
		t.Fatal(err)
	}

	var writes sync.WaitGroup
	writeErrs := make(chan error, cuts)
	got := map[string]int{}
	for c := range cuts {
		// Cut first, then send both ways: the lines go into sockets
		// whose peer is gone, until each end notices within T.
		if err := pair.SetLink(ctx, nodeNS, false); err != nil {
			t.Fatal(err)
		}
		for i := range lines {
			fmt.Fprintf(stdin, "cut %d line %d\n", c, i)
		}
		written := make(chan struct{})
		writes.Add(1)
		go func() { // held up by the outage until acknowledged
			defer writes.Done()
			defer close(written)
			if err := l.Write(ctx, fmt.Sprintf("from server %d", c)); err != nil {
				writeErrs <- err
			}
		}()
		if !notify.Sleep(ctx, 4*T) {
			t.Fatal(ctx.Err())
		}
		if err := pair.SetLink(ctx, nodeNS, true); err != nil {
			t.Fatal(err)
		}
		for range lines {
			s, err := l.ReadLine(ctx)
			if err != nil {
				t.Fatalf("cut %d: server read: %v\nnode's stderr:\n%s", c, err, stderr.String())
			}
			got[s]++
		}
		// Acknowledged after the cut: the node is back, ready for the next.
		<-written
	}
	writes.Wait()
	close(writeErrs)
	for err := range writeErrs {
		t.Errorf("server write: %v", err)
	}
	stdin.Close()
	var out []string
	for s := range printed {
		out = append(out, s)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("tether node: %v\n%s", err, stderr.String())
	}
	for c := range cuts {
		for i := range lines {
			if n := got[fmt.Sprintf("cut %d line %d", c, i)]; n != 1 {
				t.Errorf("cut %d line %d reached the server %d times", c, i, n)
			}
		}
	}
	if n := l.Stats().Received; n != cuts*lines {
		t.Errorf("server received %d lines, want %d", n, cuts*lines)
	}
	want := make([]string, cuts)
	for c := range cuts {
		want[c] = fmt.Sprintf("from server %d", c)
	}
	if strings.Join(out, "|") != strings.Join(want, "|") {
		t.Errorf("node printed %q, want %q", out, want)
	}
	log := stderr.String()
	if strings.Count(log, "node=sh1 state=down") < cuts || !strings.Contains(log, "node=sh1 state=up") {
		t.Errorf("stderr lacks the state lines (node=sh1 state=down at least %d times, state=up):\n%s", cuts, log)
	}
}
