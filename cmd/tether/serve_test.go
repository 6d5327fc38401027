package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/tether-iot/tether/client"
	"github.com/tether-iot/tether/internal/harness/testutil"
	"go.uber.org/goleak"
)

// TestMain checks for leaked goroutines; it is the package's only one.
// With TETHER_TEST_RUN_MAIN set, the test binary is the tether command
// (see signal_test.go).
func TestMain(m *testing.M) {
	if os.Getenv(runMainEnv) != "" {
		os.Args = append([]string{"tether"}, os.Args[1:]...)
		main()
		os.Exit(0)
	}
	goleak.VerifyTestMain(m)
}

const serveT = 300 * time.Millisecond

// served is a tether serve running in-process, with pipes.
type served struct {
	t      *testing.T
	cancel context.CancelFunc
	done   chan error
	stdin  *io.PipeWriter
	lines  chan string // stdout
	stderr *logBuffer
	addr   string
}

// startServe runs tether serve with args (plus a temp data dir and no
// web, unless given) and waits until it listens for nodes.
func startServe(t *testing.T, args ...string) *served {
	t.Helper()
	joined := strings.Join(args, " ")
	if !strings.Contains(joined, "--data") {
		args = append(args, "--data", t.TempDir())
	}
	if !strings.Contains(joined, "-web") {
		args = append(args, "--no-web")
	}
	ctx, cancel := context.WithCancel(context.Background())
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	s := &served{t: t, cancel: cancel, done: make(chan error, 1), stdin: inW,
		lines: make(chan string, 100), stderr: newLogBuffer()}
	go func() {
		err := run(ctx, &env{stdin: inR, stdout: outW, stderr: s.stderr}, append([]string{"serve"}, args...))
		outW.Close()
		s.done <- err
	}()
	linesDone := make(chan struct{})
	go func() {
		defer close(linesDone)
		sc := bufio.NewScanner(outR)
		for sc.Scan() {
			s.lines <- sc.Text()
		}
	}()
	t.Cleanup(func() {
		s.stop()
		<-linesDone
	})
	m, err := s.stderr.wait(regexp.MustCompile(`msg=serving addr=(\S+)`), s.done)
	if err != nil {
		t.Fatalf("serve did not start: %v\nstderr:\n%s", err, s.stderr)
	}
	s.addr = m[1]
	return s
}

// stop cancels serve (SIGINT) and returns its error.
func (s *served) stop() error {
	s.cancel()
	err, ok := <-s.done
	if ok {
		close(s.done)
		s.stdin.Close()
	}
	return err
}

func (s *served) send(id, payload string) {
	s.t.Helper()
	if _, err := io.WriteString(s.stdin, id+"\t"+payload+"\n"); err != nil {
		s.t.Fatal(err)
	}
}

func (s *served) expectLine(ctx context.Context, want string) {
	s.t.Helper()
	select {
	case got := <-s.lines:
		if got != want {
			s.t.Fatalf("stdout: got %q, want %q", got, want)
		}
	case <-ctx.Done():
		s.t.Fatalf("stdout: no %q: %v\nstderr:\n%s", want, ctx.Err(), s.stderr)
	}
}

func dialNode(t *testing.T, ctx context.Context, addr, id string) *client.Client {
	t.Helper()
	c, err := client.Dial(ctx, client.Config{ID: id, Server: addr, Timeout: serveT, Logger: testutil.Logger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func readLine(t *testing.T, ctx context.Context, c *client.Client, want string) {
	t.Helper()
	got, err := c.ReadLine(ctx)
	if err != nil {
		t.Fatalf("node %s: %v", c.ID(), err)
	}
	if got != want {
		t.Fatalf("node %s: got %q, want %q", c.ID(), got, want)
	}
}

func TestServeStdinStdout(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s := startServe(t, "--addr", "127.0.0.1:0", "--timeout", serveT.String(), "--broker", "none")

	// A line for node 8, which is not there, holds up nobody.
	s.send("8", "for eight")
	n7 := dialNode(t, ctx, s.addr, "7")
	s.send("7", "for seven")
	readLine(t, ctx, n7, "for seven")

	if err := n7.Write(ctx, "hello from 7"); err != nil {
		t.Fatal(err)
	}
	s.expectLine(ctx, "7\thello from 7")

	n8 := dialNode(t, ctx, s.addr, "8")
	readLine(t, ctx, n8, "for eight")
	if err := n8.Write(ctx, "tab\tinside"); err != nil {
		t.Fatal(err)
	}
	s.expectLine(ctx, "8\ttab\tinside")

	if _, err := s.stderr.wait(regexp.MustCompile(`node=8 state=up .*reconnects=0`), nil); err != nil {
		t.Fatal(err)
	}
	n8.Close()
	if _, err := s.stderr.wait(regexp.MustCompile(`node=8 state=down reason=.* reconnects=0`), nil); err != nil {
		t.Fatal(err)
	}
	if err := s.stop(); err != nil {
		t.Fatalf("serve after SIGINT: %v", err)
	}
}

// TestServeBrokerAway: the external broker is not there when serve
// starts: it serves all the same, says so once on stderr, prints the
// nodes' messages (spooled for the broker) and writes stdin's lines.
func TestServeBrokerAway(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ln := testutil.Listen(t)
	broker := "mqtt://" + ln.Addr().String()
	ln.Close() // nobody listens there now: connection refused
	s := startServe(t, "--addr", "127.0.0.1:0", "--timeout", serveT.String(), "--broker", broker)
	if _, err := s.stderr.wait(regexp.MustCompile(`level=WARN msg="MQTT broker not reachable yet; serving nodes and retrying" broker=`+regexp.QuoteMeta(broker)+` err=.*refused`), s.done); err != nil {
		t.Fatalf("%v\nstderr:\n%s", err, s.stderr)
	}
	n := dialNode(t, ctx, s.addr, "7")
	if err := n.Write(ctx, "while the broker is away"); err != nil {
		t.Fatal(err)
	}
	s.expectLine(ctx, "7\twhile the broker is away")
	s.send("7", "from stdin")
	readLine(t, ctx, n, "from stdin")
	if err := s.stop(); err != nil {
		t.Fatalf("serve after SIGINT: %v", err)
	}
}

// TestServeQueueFull: --queue-max-messages bounds a node's queue; the
// stdin lines it refuses are logged once, not once each, and once a line
// is queued again, with their count.
func TestServeQueueFull(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s := startServe(t, "--addr", "127.0.0.1:0", "--timeout", serveT.String(), "--broker", "none", "--queue-max-messages", "2")
	for _, p := range []string{"1", "2", "3", "4", "5"} {
		s.send("x", p)
	}
	x := dialNode(t, ctx, s.addr, "x")
	readLine(t, ctx, x, "1")
	readLine(t, ctx, x, "2")
	s.send("x", "6") // 1 is acknowledged and removed: there is room
	readLine(t, ctx, x, "6")
	m, err := s.stderr.wait(regexp.MustCompile(`msg="stdin: lines for the node are queued again" node=x refused=(\d+)`), nil)
	if err != nil {
		t.Fatalf("%v\nstderr:\n%s", err, s.stderr)
	}
	if m[1] != "3" {
		t.Errorf("refused lines counted %s, want 3", m[1])
	}
	if n := strings.Count(s.stderr.String(), "stdin: line not queued"); n != 1 {
		t.Errorf("refused lines logged %d times, want once:\n%s", n, s.stderr)
	}
}

func TestServeHelp(t *testing.T) {
	for _, args := range [][]string{{"help", "serve"}, {"serve", "-h"}} {
		var out, errb bytes.Buffer
		err := run(context.Background(), &env{stdout: &out, stderr: &errb}, args)
		if err != nil && !errors.Is(err, errUsage) && err.Error() != "flag: help requested" {
			t.Fatalf("%v: %v", args, err)
		}
		for _, flag := range []string{"-addr", "-timeout", "-expect", "-strict", "-max-line", "-config", "-data", "-broker", "-mqtt-listen", "-discovery", "-web", "-grace", "-queue-max-messages", "-queue-max-bytes", "-queue-max-total-bytes", "-queue-max-nodes", "-queue-max-up-messages"} {
			if !strings.Contains(out.String(), flag) {
				t.Errorf("%v: usage does not explain %s:\n%s", args, flag, out.String())
			}
		}
	}
}

func TestServePortInUse(t *testing.T) {
	ln := testutil.Listen(t)
	port := ln.Addr().(*net.TCPAddr).Port
	var errb bytes.Buffer
	err := run(context.Background(), &env{stdout: io.Discard, stderr: &errb},
		[]string{"serve", "--addr", ln.Addr().String(), "--broker", "none", "--data", t.TempDir(), "--no-web"})
	if err == nil {
		t.Fatal("serve started on a port in use")
	}
	msg := err.Error()
	if !strings.Contains(msg, "port "+strconv.Itoa(port)) || !strings.Contains(msg, "--addr") {
		t.Fatalf("error does not name the port and --addr: %v", err)
	}
}

func TestServeBadFlags(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(cfg, []byte("listen: \":8123\"\ntimeout: 2s\nmqtt:\n  brokr: mqtt://x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	noCA := filepath.Join(dir, "noca.yaml")
	if err := os.WriteFile(noCA, []byte("mqtt:\n  broker: mqtts://127.0.0.1:1\n  tls:\n    ca: "+filepath.Join(dir, "missing.pem")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		want string // in the error or stderr
	}{
		{[]string{"--timeout", "-1s"}, "--timeout"},
		{[]string{"--timeout", "fast"}, "invalid value"},
		{[]string{"--max-line", "2"}, "--max-line"},
		{[]string{"--strict"}, "--expect"},
		{[]string{"--broker", "localhost"}, "mqtt.broker"},
		{[]string{"extra"}, "no arguments"},
		{[]string{"--config", cfg}, "bad.yaml:4:"},
		{[]string{"--config", noCA, "--addr", "127.0.0.1:0"}, "mqtt.tls.ca"},
		{[]string{"--queue-max-bytes", "10"}, "queue.max_bytes"},
		{[]string{"--queue-max-total-bytes", "10"}, "queue.max_total_bytes"},
	} {
		var errb bytes.Buffer
		args := append([]string{"serve", "--data", dir, "--no-web"}, tc.args...)
		err := run(context.Background(), &env{stdout: io.Discard, stderr: &errb}, args)
		if err == nil {
			t.Errorf("%v: accepted", tc.args)
			continue
		}
		if !strings.Contains(err.Error()+errb.String(), tc.want) {
			t.Errorf("%v: %q not in error %v, stderr %q", tc.args, tc.want, err, errb.String())
		}
	}
}

// logBuffer collects stderr and lets a test wait for a line.
type logBuffer struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	changed chan struct{}
}

func newLogBuffer() *logBuffer { return &logBuffer{changed: make(chan struct{})} }

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf.Write(p)
	close(b.changed)
	b.changed = make(chan struct{})
	return len(p), nil
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// wait returns the first match of re, waiting for it for at most 10 s or
// until done delivers (the command ended).
func (b *logBuffer) wait(re *regexp.Regexp, done chan error) ([]string, error) {
	timer := time.NewTimer(10 * time.Second)
	defer timer.Stop()
	for {
		b.mu.Lock()
		m := re.FindStringSubmatch(b.buf.String())
		ch := b.changed
		b.mu.Unlock()
		if m != nil {
			return m, nil
		}
		select {
		case <-ch:
		case err := <-done:
			done <- err
			return nil, errors.Join(errors.New("serve ended"), err)
		case <-timer.C:
			return nil, errors.New("no log line matching " + re.String())
		}
	}
}

// TestServeGateway: the default embedded broker, a config file whose
// listen address a flag overrides, and the remote-control route written
// as config.
func TestServeGateway(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cfg := filepath.Join(t.TempDir(), "gw.yaml")
	text := "listen: \":8123\"\ntimeout: 300ms\nroutes:\n  - {from: tx, to: rx, qos: false}\n"
	if err := os.WriteFile(cfg, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	s := startServe(t, "--config", cfg, "--addr", "127.0.0.1:0", "--mqtt-listen", "127.0.0.1:0", "--web", "127.0.0.1:0")
	m, err := s.stderr.wait(regexp.MustCompile(`mqtt="embedded (\S+)"`), nil)
	if err != nil {
		t.Fatal(err)
	}
	rx := dialNode(t, ctx, s.addr, "rx")
	if err := rx.WaitUp(ctx); err != nil {
		t.Fatal(err)
	}
	tx := dialNode(t, ctx, s.addr, "tx")
	if err := tx.Write(ctx, "button pressed"); err != nil {
		t.Fatal(err)
	}
	s.expectLine(ctx, "tx\tbutton pressed")
	readLine(t, ctx, rx, "button pressed")

	o := paho.NewClientOptions().AddBroker("tcp://" + m[1]).SetClientID("serve-test")
	mc := paho.NewClient(o)
	if tok := mc.Connect(); !waitToken(ctx, tok) {
		t.Fatalf("MQTT connect: %v", tok.Error())
	}
	defer mc.Disconnect(50)
	if tok := mc.Publish("tether/rx/down", 1, false, "from MQTT"); !waitToken(ctx, tok) {
		t.Fatalf("MQTT publish: %v", tok.Error())
	}
	readLine(t, ctx, rx, "from MQTT")
}

func waitToken(ctx context.Context, tok paho.Token) bool {
	select {
	case <-tok.Done():
		return tok.Error() == nil
	case <-ctx.Done():
		return false
	}
}
