//go:build unix

package main

import (
	"errors"
	"io"
	"os"
	"sync"

	"golang.org/x/sys/unix"
)

// pollReader reads a file descriptor that may block (a terminal, a pipe
// whose writer stays open) so that Close ends a blocked Read: closing
// os.Stdin does not end a read of fd 0 blocked in the kernel. It polls
// the descriptor together with a pipe of its own, and reads only once the
// descriptor is readable. The descriptor's flags are left alone (making
// fd 0 non-blocking would make the terminal non-blocking for the shell
// too).
type pollReader struct {
	fd        int
	wakeR     int // readable once Close has been called
	wakeW     int
	closeOnce sync.Once
	releaseMu sync.Mutex
	released  bool
}

// interruptible returns a reader of f whose Close ends a blocked Read
// with os.ErrClosed. Release frees its own descriptors once nothing
// reads any more; f itself is not closed.
func interruptible(f *os.File) (*pollReader, error) {
	// Not f.Fd(), which would make the descriptor blocking.
	rc, err := f.SyscallConn()
	if err != nil {
		return nil, err
	}
	fd := -1
	if err := rc.Control(func(u uintptr) { fd = int(u) }); err != nil {
		return nil, err
	}
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC|unix.O_NONBLOCK); err != nil {
		return nil, err
	}
	return &pollReader{fd: fd, wakeR: p[0], wakeW: p[1]}, nil
}

func (r *pollReader) Read(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	fds := []unix.PollFd{{Fd: int32(r.fd), Events: unix.POLLIN}, {Fd: int32(r.wakeR), Events: unix.POLLIN}}
	for {
		fds[0].Revents, fds[1].Revents = 0, 0
		if _, err := unix.Poll(fds, -1); err != nil {
			if errors.Is(err, unix.EINTR) {
				continue
			}
			return 0, err
		}
		if fds[1].Revents != 0 {
			return 0, os.ErrClosed
		}
		if fds[0].Revents == 0 {
			continue
		}
		n, err := unix.Read(r.fd, b)
		switch {
		case errors.Is(err, unix.EINTR), errors.Is(err, unix.EAGAIN):
			continue
		case err != nil:
			return 0, err
		case n == 0:
			return 0, io.EOF
		}
		return n, nil
	}
}

// Close ends a blocked Read, and every later one, with os.ErrClosed.
func (r *pollReader) Close() error {
	r.closeOnce.Do(func() { unix.Write(r.wakeW, []byte{0}) })
	return nil
}

// release frees the reader's own pipe; call it once no Read runs.
func (r *pollReader) release() {
	r.releaseMu.Lock()
	defer r.releaseMu.Unlock()
	if !r.released {
		r.released = true
		unix.Close(r.wakeR)
		unix.Close(r.wakeW)
	}
}
