package link

import (
	"net"
	"syscall"
)

// tcpRaw returns the raw TCP socket under conn, looking through wrappers
// that expose the connection they wrap (NetConn, as crypto/tls.Conn
// does), or nil if there is none. The TCP evidence about message 00 (see
// Window) is read from it, below any TLS layer.
func tcpRaw(conn net.Conn) syscall.RawConn {
	for range 8 {
		switch c := conn.(type) {
		case *net.TCPConn:
			rc, err := c.SyscallConn()
			if err != nil {
				return nil
			}
			return rc
		case interface{ NetConn() net.Conn }:
			conn = c.NetConn()
		default:
			return nil
		}
	}
	return nil
}

// tcpOf returns the raw TCP socket under conn whose evidence the link
// takes, or nil (Config.NoTCPEvidence, or no TCP socket).
func (l *Link) tcpOf(conn net.Conn) syscall.RawConn {
	if l.cfg.NoTCPEvidence {
		return nil
	}
	return tcpRaw(conn)
}
