package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestDemoOneProcess runs each demo in one process with outages, briefly,
// and checks its story and, for the qos demos, the verdict.
func TestDemoOneProcess(t *testing.T) {
	for _, tc := range []struct {
		name, duration string
		want           []string
	}{
		{"qos", "6s", []string{"VERDICT", "PASS: 0 lost, 0 duplicated, 0 out of order", "REPORT uptime", "got [0,"}},
		{"qos-fast", "5s", []string{"VERDICT", "PASS: 0 lost, 0 duplicated", "REPORT uptime"}},
		{"main", "3s", []string{"node 1", "app 4", "from the server app", "VERDICT", "PASS: 0 lost, 0 duplicated; ", "over:"}},
		{"remote", "4s", []string{"all peers are connected", "LED", "over:"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var stdout, stderr nodeStderr
			err := run(context.Background(), &env{stdout: &stdout, stderr: &stderr}, []string{"demo", tc.name,
				"--outages", "--duration", tc.duration, "--timeout", "200ms", "--interval", "300ms"})
			if err != nil {
				t.Fatalf("demo %s: %v\n%s\n%s", tc.name, err, stdout.String(), stderr.String())
			}
			for _, w := range tc.want {
				if !strings.Contains(stdout.String(), w) {
					t.Errorf("demo %s: no %q in:\n%s", tc.name, w, stdout.String())
				}
			}
		})
	}
}

// TestDemoEndings: each demo ends with words that say what happened, in
// every way it can end.
func TestDemoEndings(t *testing.T) {
	t.Run("remote without outages", func(t *testing.T) {
		t.Parallel()
		var stdout, stderr nodeStderr
		if err := run(context.Background(), &env{stdout: &stdout, stderr: &stderr}, []string{"demo", "remote",
			"--duration", "1s", "--timeout", "200ms"}); err != nil {
			t.Fatalf("%v\n%s", err, stderr.String())
		}
		out := stdout.String()
		if strings.Contains(out, "outages none injected") || !strings.Contains(out, "over: no outages injected (add --outages to inject some)") {
			t.Errorf("remote demo ending:\n%s", out)
		}
	})
	t.Run("qos interrupted", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		w := &lineWaiter{want: regexp.MustCompile(`server +got \[1,`), found: make(chan struct{})}
		var stderr nodeStderr
		done := make(chan error, 1)
		go func() {
			done <- run(ctx, &env{stdout: w, stderr: &stderr}, []string{"demo", "qos", "--timeout", "200ms", "--interval", "100ms"})
		}()
		select {
		case <-w.found:
		case <-time.After(time.Minute):
			t.Fatal("the qos demo did not start")
		}
		cancel() // Ctrl-C
		if err := <-done; err != nil {
			t.Fatalf("%v\n%s", err, stderr.String())
		}
		out := w.buf.String()
		if strings.Contains(out, "time is up") || !strings.Contains(out, "interrupted: both sides stop writing") || !strings.Contains(out, "VERDICT") {
			t.Errorf("an interrupted qos demo says:\n%s", out)
		}
	})
}

// TestOutageSummary: an outage still in progress at the end is said so,
// not left as a difference between two counts.
func TestOutageSummary(t *testing.T) {
	for _, tc := range []struct {
		survived, injected int
		injecting, intr    bool
		want               string
	}{
		{5, 6, true, true, "5 outages survived; 6 injected: cut 6; 1 still in progress when the demo was interrupted (the links were down, waiting to recover)"},
		{6, 6, true, false, "6 outages survived; 6 injected: cut 6"},
		{0, 0, false, false, "no outages injected (add --outages to inject some), none seen"},
	} {
		kinds := fmt.Sprintf("%d injected: cut %d", tc.injected, tc.injected)
		if got := outageSummary(tc.survived, tc.injected, kinds, tc.injecting, tc.intr); got != tc.want {
			t.Errorf("got  %q\nwant %q", got, tc.want)
		}
	}
}

// startDemoServer runs "tether demo NAME --serve" and returns its address.
func startDemoServer(t *testing.T, ctx context.Context, name string) string {
	t.Helper()
	outR, outW := io.Pipe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		run(ctx, &env{stdout: outW, stderr: io.Discard}, []string{"demo", name, "--serve", "--addr", "127.0.0.1:0", "--timeout", "200ms", "--interval", "200ms"})
		outW.Close()
	}()
	t.Cleanup(func() { <-done })
	first, err := bufio.NewReader(outR).ReadString('\n')
	if err != nil {
		t.Fatalf("demo --serve printed nothing: %v", err)
	}
	go io.Copy(io.Discard, outR)
	addr := regexp.MustCompile(`127\.0\.0\.1:\d+`).FindString(first)
	if addr == "" {
		t.Fatalf("no address in %q", first)
	}
	return addr
}

// lineWaiter is a stdout that tells when a line matching want appears.
type lineWaiter struct {
	want  *regexp.Regexp
	found chan struct{}
	buf   strings.Builder
	done  bool
}

func (w *lineWaiter) Write(p []byte) (int, error) {
	w.buf.Write(p)
	if !w.done && w.want.MatchString(w.buf.String()) {
		w.done = true
		close(w.found)
	}
	return len(p), nil
}

// TestDemoSplit runs the main and qos demos as a server process and a
// node process, and stops the node once it has heard from the server.
func TestDemoSplit(t *testing.T) {
	for _, tc := range []struct{ name, node, want string }{
		{"main", "2", `got  \[\d+,\d+,\d+\] from the server app`},
		{"qos", "", `got \[\d+,\d+,0,0\] from the server`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			sctx, stopServer := context.WithCancel(ctx)
			defer stopServer()
			addr := startDemoServer(t, sctx, tc.name)
			nctx, stopNode := context.WithCancel(ctx)
			defer stopNode()
			out := &lineWaiter{want: regexp.MustCompile(tc.want), found: make(chan struct{})}
			args := []string{"demo", tc.name, "--server", addr, "--timeout", "200ms", "--interval", "200ms"}
			if tc.node != "" {
				args = append(args, "--node", tc.node)
			}
			errc := make(chan error, 1)
			go func() { errc <- run(nctx, &env{stdout: out, stderr: io.Discard}, args) }()
			select {
			case <-out.found:
			case err := <-errc:
				t.Fatalf("node ended early: %v", err)
			case <-ctx.Done():
				t.Fatal("the node never heard from the server")
			}
			stopNode()
			if err := <-errc; err != nil {
				t.Errorf("node: %v", err)
			}
			stopServer()
		})
	}
}

func TestDemoErrors(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"demo"}, "which demo"},
		{[]string{"demo", "mqtt"}, "unknown demo"},
		{[]string{"demo", "main", "--node", "1"}, "--server"},
		{[]string{"demo", "main", "--serve", "--server", "h:1"}, "exclude"},
		{[]string{"demo", "main", "--nodes", "5", "--duration", "1ms"}, "1 to 4"},
		{[]string{"demo", "remote", "--server", "h:1", "--node", "7"}, "tx, rx"},
		{[]string{"demo", "main", "--serve", "--addr", ln.Addr().String()}, "already in use"},
		{[]string{"demo", "qos", "--server", "127.0.0.1:1"}, "connection refused"},
	} {
		err := run(context.Background(), &env{stdin: strings.NewReader(""), stdout: io.Discard, stderr: io.Discard}, tc.args)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: err = %v, want %q in it", tc.args, err, tc.want)
		}
	}
}

// TestDemoSplitRemote runs the remote control demo as three processes
// would: the server, tx with its simulated switch, and rx, which must
// light its LED.
func TestDemoSplitRemote(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sctx, stopServer := context.WithCancel(ctx)
	defer stopServer()
	addr := startDemoServer(t, sctx, "remote")
	nctx, stopNodes := context.WithCancel(ctx)
	defer stopNodes()
	// --retry: the server is up; a first dial that a loaded machine holds
	// up past T (its bound) must not end a node (seen: "rx ended early:
	// cannot reach the server ... i/o timeout").
	common := []string{"demo", "remote", "--server", addr, "--timeout", "200ms", "--interval", "200ms", "--retry"}
	txDone := make(chan error, 1)
	go func() {
		txDone <- run(nctx, &env{stdout: io.Discard, stderr: io.Discard}, append(common, "--node", "tx"))
	}()
	out := &lineWaiter{want: regexp.MustCompile(`got \[[01]\]: LED (on|off)`), found: make(chan struct{})}
	rxDone := make(chan error, 1)
	go func() {
		rxDone <- run(nctx, &env{stdout: out, stderr: io.Discard}, append(common, "--node", "rx"))
	}()
	select {
	case <-out.found:
	case err := <-rxDone:
		t.Fatalf("rx ended early: %v", err)
	case <-ctx.Done():
		t.Fatal("rx never lit its LED")
	}
	stopNodes()
	for _, c := range []chan error{txDone, rxDone} {
		if err := <-c; err != nil {
			t.Errorf("node: %v", err)
		}
	}
	stopServer()
}
