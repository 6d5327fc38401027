package main

import (
	"bufio"
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"
)

// runMainEnv makes the test binary run the real command (main, with its
// signal handling and os.Stdin) instead of the tests: the signal tests
// run "tether serve" as a process of its own.
const runMainEnv = "TETHER_TEST_RUN_MAIN"

// process is tether serve running as a real process.
type process struct {
	t      *testing.T
	cmd    *exec.Cmd
	stderr *logBuffer
	done   chan error // the process's exit, once
	addr   string     // where it serves nodes
}

// startProcess runs "tether serve args..." as a process whose stdin is
// stdin (a terminal, a pipe), and waits until it serves.
func startProcess(t *testing.T, stdin *os.File, args ...string) *process {
	t.Helper()
	args = append([]string{"serve", "--addr", "127.0.0.1:0", "--broker", "none", "--no-web", "--data", t.TempDir()}, args...)
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), runMainEnv+"=1")
	cmd.Stdin = stdin
	p := &process{t: t, cmd: cmd, stderr: newLogBuffer(), done: make(chan error, 1)}
	cmd.Stderr = p.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		if err, ok := <-p.done; ok {
			p.done <- err
		}
	})
	m, err := p.stderr.wait(regexp.MustCompile(`msg=serving addr=(\S+)`), p.done)
	if err != nil {
		t.Fatalf("serve did not start: %v\nstderr:\n%s", err, p.stderr)
	}
	p.addr = m[1]
	return p
}

func (p *process) signal(sig os.Signal) {
	p.t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		p.t.Fatalf("signal %v: %v", sig, err)
	}
}

// exit waits for the process to end within limit (then kills it and
// fails), and returns how long it took and its exit error.
func (p *process) exit(limit time.Duration) (time.Duration, error) {
	p.t.Helper()
	start := time.Now()
	timer := time.NewTimer(limit)
	defer timer.Stop()
	select {
	case err := <-p.done:
		p.done <- err
		return time.Since(start), err
	case <-timer.C:
		p.cmd.Process.Kill()
		err := <-p.done
		p.done <- err
		p.t.Fatalf("tether serve still running %v after the signal (killed)\nstderr:\n%s", limit, p.stderr)
		return 0, err
	}
}

// waitLog waits for a log line matching re.
func (p *process) waitLog(re string) {
	p.t.Helper()
	if _, err := p.stderr.wait(regexp.MustCompile(re), p.done); err != nil {
		p.t.Fatalf("%v\nstderr:\n%s", err, p.stderr)
	}
}

// exitedCleanly fails unless the process exited with status 0 after
// shutting down the gateway.
func (p *process) exitedCleanly(err error) {
	p.t.Helper()
	if err != nil {
		p.t.Errorf("exit: %v, want status 0\nstderr:\n%s", err, p.stderr)
	}
	if !strings.Contains(p.stderr.String(), "gateway stopped") {
		p.t.Errorf("no clean shutdown (no \"gateway stopped\" logged)\nstderr:\n%s", p.stderr)
	}
}

// openTerminal returns the terminal side of a new pty, as a shell gives
// a command in a terminal; the controller side stays open until the end
// of the test.
func openTerminal(t *testing.T) *os.File {
	t.Helper()
	ptmx, tty, err := pty.Open()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		tty.Close()
		ptmx.Close()
	})
	return tty
}

// openPipe returns the read end of a pipe whose write end stays open
// until the end of the test, as when serve is fed by another program.
func openPipe(t *testing.T) (r, w *os.File) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		r.Close()
		w.Close()
	})
	return r, w
}

// Issue 10.6: SIGINT ends tether serve within the grace period while its
// stdin is a terminal that nobody types on (the read of fd 0 is blocked).
func TestSignalTerminalStdin(t *testing.T) {
	p := startProcess(t, openTerminal(t), "--grace", "2s")
	p.signal(syscall.SIGINT)
	took, err := p.exit(15 * time.Second)
	t.Logf("SIGINT with a terminal on stdin: exited after %v", took.Round(time.Millisecond))
	p.exitedCleanly(err)
}

// Issue 10.6: SIGTERM ends it while its stdin is a pipe that stays open.
func TestSignalPipeStdin(t *testing.T) {
	r, _ := openPipe(t)
	p := startProcess(t, r, "--grace", "2s")
	p.signal(syscall.SIGTERM)
	took, err := p.exit(15 * time.Second)
	t.Logf("SIGTERM with an open pipe on stdin: exited after %v", took.Round(time.Millisecond))
	p.exitedCleanly(err)
}

// Issue 10.6: SIGHUP shuts down cleanly (drain, offline, store closed)
// rather than killing the process.
func TestSignalHangup(t *testing.T) {
	p := startProcess(t, openTerminal(t), "--grace", "2s")
	p.signal(syscall.SIGHUP)
	took, err := p.exit(15 * time.Second)
	t.Logf("SIGHUP: exited after %v", took.Round(time.Millisecond))
	p.exitedCleanly(err)
}

// Issue 10.6: a second SIGINT ends it at once, while the first waits for
// a node that never acknowledges its message (grace 1 minute).
func TestSignalSecondInterrupt(t *testing.T) {
	r, w := openPipe(t)
	p := startProcess(t, r, "--grace", "60s")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// A node that reads its message and never ACKs it.
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", p.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte("stuck\n"))
	if _, err := w.WriteString("stuck\tnever acked\n"); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(20 * time.Second))
	sc := bufio.NewScanner(c)
	for sc.Scan() && !strings.HasSuffix(sc.Text(), "never acked") {
	}
	if sc.Err() != nil {
		t.Fatalf("the node did not get its message: %v", sc.Err())
	}
	p.signal(syscall.SIGINT)
	p.waitLog(`msg="shutting down"`)
	p.signal(syscall.SIGINT)
	took, err := p.exit(15 * time.Second)
	t.Logf("second SIGINT during a 60 s grace: exited after %v", took.Round(time.Millisecond))
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() == 0 {
		t.Errorf("exit %v: want a non-zero status (interrupted)", err)
	}
}
