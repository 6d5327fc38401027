//go:build linux

package link

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// tcpProgress returns, for a TCP socket, how far the bytes written to it
// reach (written) and how far the peer's TCP stack has acknowledged them
// (acked), both counted from the same origin: the kernel's count of
// acknowledged bytes (TCP_INFO tcpi_bytes_acked) and the bytes written but
// not yet acknowledged (SIOCOUTQ). ok is false if they cannot be read.
// Both survive a reset: they can be read until the socket is closed.
func tcpProgress(rc syscall.RawConn) (written, acked uint64, ok bool) {
	err := rc.Control(func(fd uintptr) {
		ti, err := unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO)
		if err != nil {
			return
		}
		q, err := unix.IoctlGetInt(int(fd), unix.SIOCOUTQ)
		if err != nil || q < 0 {
			return
		}
		written, acked, ok = ti.Bytes_acked+uint64(q), ti.Bytes_acked, true
	})
	return written, acked, ok && err == nil
}
