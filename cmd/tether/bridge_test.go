package main

import (
	"context"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/creack/pty"
	"github.com/tether-iot/tether/bridge"
	"github.com/tether-iot/tether/internal/harness/testutil"
	"github.com/tether-iot/tether/server"
	"golang.org/x/sys/unix"
)

// boardPty returns a pseudo-terminal: the bridge opens its slave (path),
// the board model talks on its master. The test keeps the slave open
// too, so that the master outlives a bridge process that dies.
func boardPty(t *testing.T) (path string, master *os.File) {
	t.Helper()
	m, s, err := pty.Open()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	tio, err := unix.IoctlGetTermios(int(s.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	tio.Iflag &^= unix.ICRNL | unix.IXON | unix.INLCR | unix.IGNCR
	tio.Oflag &^= unix.OPOST
	tio.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
	if err := unix.IoctlSetTermios(int(s.Fd()), unix.TCSETS, tio); err != nil {
		t.Fatal(err)
	}
	// pty.Open leaves the master blocking; the runtime poller needs it
	// non-blocking, so that Close ends a pending Read.
	fd, err := unix.Dup(int(m.Fd()))
	if err == nil {
		err = unix.SetNonblock(fd, true)
	}
	if err != nil {
		t.Fatal(err)
	}
	m.Close()
	return s.Name(), os.NewFile(uintptr(fd), "ptmx")
}

// TestBridgeCommandKilled runs "tether bridge" as a process between a
// board (bridge.Board on a pty) and a server, and kills it with SIGKILL
// twice while lines flow both ways: a new process on the same --state
// loses and repeats nothing.
func TestBridgeCommandKilled(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	srv, err := server.New(server.Config{Timeout: 600 * time.Millisecond, Logger: testutil.Logger()})
	if err != nil {
		t.Fatal(err)
	}
	ln := testutil.Listen(t)
	served := make(chan struct{})
	go func() { defer close(served); srv.Serve(ln) }()
	defer func() { srv.Close(); <-served }()
	path, master := boardPty(t)
	state := t.TempDir()

	start := func() (*exec.Cmd, chan struct{}) {
		cmd := exec.Command(os.Args[0], "bridge", "--serial", path, "--id", "pump1", "--server", ln.Addr().String(),
			"--state", state, "--timeout", "600ms", "--serial-timeout", "400ms", "--log-level", "warn")
		cmd.Env = append(os.Environ(), runMainEnv+"=1")
		var stderr strings.Builder
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		t.Cleanup(func() { cmd.Process.Kill(); <-done })
		return cmd, done
	}
	cmd, exited := start()
	bd, err := bridge.StartBoard(master, bridge.BoardConfig{Timeout: 400 * time.Millisecond, Logger: testutil.Logger()})
	if err != nil {
		t.Fatal(err)
	}
	defer bd.Close()

	var mu sync.Mutex
	seen := map[string]int{}
	got := make(chan struct{}, 1000)
	note := func(line string) {
		mu.Lock()
		seen[line]++
		mu.Unlock()
		got <- struct{}{}
	}
	node, err := srv.Node(ctx, "pump1")
	if err != nil {
		t.Fatal(err)
	}
	var readers sync.WaitGroup
	for _, rd := range []func(context.Context) (string, error){node.ReadLine, bd.ReadLine} {
		readers.Add(1)
		go func() {
			defer readers.Done()
			for {
				line, err := rd(ctx)
				if err != nil {
					return
				}
				note(line)
			}
		}()
	}
	const nUp, nDown = 60, 30
	sent := make(chan error, 1)
	go func() {
		for i := 1; i <= nDown; i++ {
			if err := node.Write(ctx, "s"+strconv.Itoa(i)); err != nil {
				sent <- err
				return
			}
		}
		sent <- nil
	}()
	for i := 1; i <= nUp; i++ {
		if i == 20 || i == 40 {
			cmd.Process.Kill() // SIGKILL: no chance to save anything
			<-exited
			cmd, exited = start()
		}
		if err := bd.Write(ctx, "b"+strconv.Itoa(i)); err != nil {
			t.Fatalf("board write %d: %v", i, err)
		}
	}
	if err := <-sent; err != nil {
		t.Fatal(err)
	}
	for n := 0; n < nUp+nDown; n++ {
		mu.Lock()
		done := len(seen) >= nUp+nDown
		mu.Unlock()
		if done {
			break
		}
		select {
		case <-got:
		case <-ctx.Done():
			t.Fatalf("%d of %d lines arrived", len(seen), nUp+nDown)
		}
	}
	mu.Lock()
	for i := 1; i <= nUp; i++ {
		if c := seen["b"+strconv.Itoa(i)]; c != 1 {
			t.Errorf("b%d arrived %d times", i, c)
		}
	}
	for i := 1; i <= nDown; i++ {
		if c := seen["s"+strconv.Itoa(i)]; c != 1 {
			t.Errorf("s%d arrived %d times", i, c)
		}
	}
	mu.Unlock()
	cmd.Process.Kill()
	<-exited
	bd.Close()
	srv.Close()
	readers.Wait()
}
