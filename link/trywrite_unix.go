//go:build unix

package link

import "syscall"

const canTryWrite = true

// tryWrite writes as much of buf as the socket takes without blocking and
// returns how much that was.
func tryWrite(rc syscall.RawConn, buf []byte) (n int, err error) {
	werr := rc.Write(func(fd uintptr) bool {
		for n < len(buf) {
			m, e := syscall.Write(int(fd), buf[n:])
			if m > 0 {
				n += m
			}
			switch {
			case e == syscall.EINTR:
			case e == syscall.EAGAIN:
				return true
			case e != nil:
				err = e
				return true
			case m <= 0:
				return true
			}
		}
		return true
	})
	if err == nil {
		err = werr
	}
	return n, err
}
