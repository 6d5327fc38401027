//go:build unix

package link

import "syscall"

const canTryWrite = true

// rawWriter writes without blocking through a syscall.RawConn. A session
// has one, used only by the writer holding its turn, and its callback is
// bound once: a closure made at every write would escape into
// RawConn.Write with what it captures, three allocations per write (per
// message, per ACK batch, per keepalive).
type rawWriter struct {
	rc  syscall.RawConn
	fn  func(fd uintptr) bool // w.write, bound at the first write
	buf []byte
	n   int
	err error
}

// tryWrite writes as much of buf as the socket takes without blocking and
// returns how much that was.
func (w *rawWriter) tryWrite(buf []byte) (n int, err error) {
	if w.fn == nil {
		w.fn = w.write
	}
	w.buf, w.n, w.err = buf, 0, nil
	werr := w.rc.Write(w.fn)
	n, err = w.n, w.err
	w.buf, w.err = nil, nil
	if err == nil {
		err = werr
	}
	return n, err
}

func (w *rawWriter) write(fd uintptr) bool {
	for w.n < len(w.buf) {
		m, e := syscall.Write(int(fd), w.buf[w.n:])
		if m > 0 {
			w.n += m
		}
		switch {
		case e == syscall.EINTR:
		case e == syscall.EAGAIN:
			return true
		case e != nil:
			w.err = e
			return true
		case m <= 0:
			return true
		}
	}
	return true
}
