package bridge_test

import (
	"bufio"
	"context"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tether-iot/tether/bridge"
)

// TestMicroPythonLibrary runs the board library (boards/micropython) under
// CPython on a pseudo-terminal against the bridge, through a noisy wire,
// a bridge killed and restarted, the server cut off, and a restart of the
// board: every line arrives exactly once, in order, both ways.
func TestMicroPythonLibrary(t *testing.T) {
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Fatalf("python3 is needed to test the board library (scripts/test installs it): %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	r := newRig(t, ctx, 2)
	stopBridge := r.startBridge()
	const nUp, nDown, restartAt = 120, 40, 90
	cmd := exec.CommandContext(ctx, py, "../boards/micropython/tests/cpython_board.py",
		r.dpty.Path, strconv.Itoa(nUp), strconv.Itoa(nDown), strconv.Itoa(int(serialT/time.Millisecond)), strconv.Itoa(restartAt))
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	up, down := newTally("b"), newTally("s")
	node := r.node()
	serverRead := readAll(t, ctx, up, node.ReadLine)
	restarted := make(chan struct{})
	scanned := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		last := ""
		for sc.Scan() {
			line := sc.Text()
			last = line
			switch {
			case strings.HasPrefix(line, "got "):
				down.add(t, strings.TrimPrefix(line, "got "))
			case line == "restarted":
				close(restarted)
			}
		}
		scanned <- last
	}()
	serverSent := make(chan error, 1)
	noisy := make(chan struct{})
	go func() {
		select { // the server's lines cross the noisy wire
		case <-noisy:
		case <-ctx.Done():
		}
		for i := 1; i <= nDown; i++ {
			if i == nDown/2+1 {
				select {
				case <-restarted:
				case <-ctx.Done():
					serverSent <- ctx.Err()
					return
				}
			}
			if err := node.Write(ctx, "s"+strconv.Itoa(i)); err != nil {
				serverSent <- err
				return
			}
		}
		serverSent <- nil
	}()

	steps := []struct {
		at int
		do func()
	}{
		{10, func() { r.wire.set(0.01, 0.005); close(noisy) }},
		{40, func() { stopBridge(); stopBridge = r.startBridge() }},
		{60, func() { r.proxy.Cut() }},
		{100, func() { r.wire.set(0, 0) }},
	}
	for _, s := range steps {
		if err := up.waitFor(ctx, s.at); err != nil {
			t.Fatalf("%v (python stderr: %s)", err, stderr.String())
		}
		s.do()
	}
	if err := up.waitFor(ctx, nUp); err != nil {
		t.Fatalf("%v (python stderr: %s)", err, stderr.String())
	}
	if err := <-serverSent; err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("board: %v: %s", err, stderr.String())
	}
	last := <-scanned
	t.Logf("python board: %s", last)
	if !strings.HasPrefix(last, "done") {
		t.Errorf("the python board did not finish: last line %q", last)
	}
	up.check(t, nUp)
	down.check(t, nDown)
	if n := node.Stats().PeerRestarts; n != 1 {
		t.Errorf("the server saw %d node restarts, want 1 (the board's)", n)
	}
	if f, d := r.wire.faults(); f == 0 || d == 0 {
		t.Errorf("no faults injected (%d flipped, %d dropped)", f, d)
	}
	stopBridge()
	r.srv.Close()
	<-serverRead
}

// TestPythonFramingMatches: the library's frames, with binascii.crc32 and
// with its pure-Python CRC (for ports without it), are the bridge's.
func TestPythonFramingMatches(t *testing.T) {
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Fatalf("python3 is needed to test the board library: %v", err)
	}
	lines := []string{"", "00", "00boot 1a2b3c4d", "7fhello ~ world", "01é"}
	script := `
import sys
sys.path.insert(0, "../boards/micropython")
import tether_board as tb
for a in sys.argv[1:]:
    f = tb.frame(a.encode())
    assert f[1:-9] == b"-" + a.encode()
    body = f[1:-9]
    assert ("%08x" % tb._crc32_py(body)).encode() == f[-9:-1], a
    assert tb.unframe(f[:-1]) == (b"-", a.encode()), a
    print(f[:-1].decode())
`
	out, err := exec.Command(py, append([]string{"-c", script}, lines...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	got := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
	if len(got) != len(lines) {
		t.Fatalf("python printed %q", out)
	}
	for i, l := range lines {
		want := string(bridge.AppendFrame(nil, bridge.FlagBoard, []byte(l)))
		if got[i]+"\n" != want {
			t.Errorf("%q: python %q, Go %q", l, got[i], want)
		}
	}
}

// TestPythonSelftest runs the library's self-test (a scripted bridge in
// memory: frames, repeats, corruption, ACKs, status) under CPython;
// scripts/test runs the same on MicroPython.
func TestPythonSelftest(t *testing.T) {
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Fatalf("python3 is needed to test the board library: %v", err)
	}
	cmd := exec.Command(py, "../boards/micropython/tests/selftest.py")
	cmd.Env = append(cmd.Environ(), "PYTHONPATH=../boards/micropython")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "selftest ok") {
		t.Fatalf("selftest: %v\n%s", err, out)
	}
}
