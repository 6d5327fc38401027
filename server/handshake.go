package server

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"strconv"
	"syscall"
	"time"

	"github.com/tether-iot/tether/internal/rarelog"
	"github.com/tether-iot/tether/internal/wire"
	"github.com/tether-iot/tether/link"
)

// handle reads a new connection's ID line and then serves the node on it
// until the socket fails.
func (s *Server) handle(conn net.Conn, ip string) {
	defer s.wg.Done()
	id, nc, pre, ok := s.handshake(conn, ip)
	if !ok {
		conn.Close()
		return
	}
	l, ok := s.linkFor(id, conn)
	if !ok {
		conn.Close()
		return
	}
	sg := s.ident.observe(id, addrPort(conn.RemoteAddr()).Addr(), l.Up(), time.Now())
	s.sighted(sg, l)
	// What a Tether client wrote with its ID tells its 00's repeats from
	// its restarts (see link.Window).
	// Its source address tells the link when the peer on the ID may be
	// another device (see link.Peer).
	err := l.AttachWith(s.ctx, &prefixConn{Conn: nc, pre: pre}, link.Greeted(link.ParseGreeting(pre)), link.Peer(sg.Addr.String()))
	if errors.Is(err, link.ErrBusy) {
		if sg.Kind != AddrConcurrent && sg.Kind != AddrSame {
			s.sighted(s.ident.busy(sg), l) // the link came up meanwhile
		}
		// Counted before the close, so that whoever sees the close sees
		// the count.
		s.mu.Lock()
		s.stats.DuplicateID++
		n := s.stats.DuplicateID
		s.mu.Unlock()
		conn.Close()
		rarelog.Warn(s.log, n, "duplicate node ID: its link is up, new connection closed", "node", id, "remote", conn.RemoteAddr().String(), "live", l.Stats().Remote)
	}
}

// handshake reads the ID line within HandshakeTimeout (after the TLS
// handshake, if the node speaks TLS), checks the claim, and releases the
// handshake slot. It returns the ID, the connection to attach (conn, or
// the TLS connection over it) and the bytes read past the ID's LF.
func (s *Server) handshake(conn net.Conn, ip string) (id string, nc net.Conn, pre []byte, ok bool) {
	defer func() {
		s.mu.Lock()
		if s.perIP[ip]--; s.perIP[ip] <= 0 {
			delete(s.perIP, ip)
		}
		delete(s.shaking, conn)
		s.mu.Unlock()
		<-s.slots
	}()
	remote := conn.RemoteAddr().String()
	if err := conn.SetReadDeadline(time.Now().Add(s.cfg.HandshakeTimeout)); err != nil {
		return "", nil, nil, false
	}
	sc, ok := s.secure(conn, remote)
	if !ok {
		return "", nil, nil, false
	}
	id, pre, err := readID(io.MultiReader(bytes.NewReader(sc.pre), sc.conn), s.cfg.MaxIDLen)
	if err != nil {
		if errors.Is(err, wire.ErrBadNodeID) {
			// Escaped: a refused ID may hold invisible characters.
			s.count(&s.stats.BadID, "bad node ID: connection closed", "err", err, "id", strconv.QuoteToASCII(truncated(id)), "remote", remote)
		} else {
			s.rejectHandshake(err, remote)
		}
		return "", nil, nil, false
	}
	ap := addrPort(conn.RemoteAddr())
	if !s.checkClaim(sc, id, ap) {
		return "", nil, nil, false
	}
	unknown := len(s.expect) > 0 && !s.expect[id]
	if unknown && s.cfg.Strict {
		s.count(&s.stats.UnknownID, "unknown node ID rejected (strict)", "node", id, "remote", remote)
		return "", nil, nil, false
	}
	claim := Claim{ID: id, Remote: ap, TLS: sc.tls}
	if sc.cert != nil {
		claim.Serial = serialOf(sc.cert)
	}
	if !s.admit(claim) {
		return "", nil, nil, false
	}
	if unknown {
		s.count(&s.stats.UnknownID, "unknown node ID accepted (not in the expected set)", "node", id, "remote", remote)
	}
	if err := conn.SetReadDeadline(time.Time{}); err != nil {
		return "", nil, nil, false
	}
	s.mu.Lock()
	s.stats.Handshakes++
	s.mu.Unlock()
	return id, sc.conn, pre, true
}

// readID reads a node's ID line from r and returns it with the bytes read
// past its LF, which belong to the node's stream. The ID is checked by
// wire.CheckNodeID; an error wrapping wire.ErrBadNodeID comes with the
// offending ID for the log.
func readID(r io.Reader, maxLen int) (id string, pre []byte, err error) {
	lr := wire.NewLineReader(r, maxLen, nil)
	line, err := lr.ReadLine()
	if err != nil {
		return "", nil, err
	}
	id = string(line)
	if err := wire.CheckNodeID(id, maxLen); err != nil {
		return id, nil, err
	}
	return id, append([]byte(nil), lr.Buffered()...), nil
}

func (s *Server) rejectHandshake(err error, remote string) {
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded):
		s.count(&s.stats.HandshakeTimeout, "no node ID within the handshake timeout: connection closed", "remote", remote, "timeout", s.cfg.HandshakeTimeout)
	case errors.Is(err, wire.ErrLineTooLong):
		s.count(&s.stats.BadID, "node ID too long: connection closed", "remote", remote, "max", s.cfg.MaxIDLen)
	case errors.Is(err, io.EOF):
		s.count(&s.stats.HandshakeClosed, "connection closed before its node ID", "remote", remote)
	default:
		s.count(&s.stats.HandshakeClosed, "handshake failed", "remote", remote, "err", err)
	}
}

// count increments a counter of s.stats and logs the event, rarely.
func (s *Server) count(c *uint64, msg string, args ...any) {
	s.mu.Lock()
	*c++
	n := *c
	s.mu.Unlock()
	rarelog.Warn(s.log, n, msg, args...)
}

func truncated(id string) string {
	if len(id) > 80 {
		return id[:80] + "..."
	}
	return id
}

// linkFor returns the link of id, making it on the ID's first connection.
// Configure runs without the server's lock, so that a slow hook holds up
// only this node; if two first connections race, one link wins.
func (s *Server) linkFor(id string, conn net.Conn) (*link.Link, bool) {
	s.mu.Lock()
	// Links being made count against MaxNodes: concurrent first
	// connections cannot overshoot it (nor run Configure past it).
	l, closed, full := s.nodes[id], s.closed, len(s.nodes)+s.making >= s.cfg.MaxNodes
	if l == nil && !closed && !full {
		s.making++
	}
	s.mu.Unlock()
	switch {
	case closed:
		return nil, false
	case l != nil:
		return l, true
	case full:
		s.count(&s.stats.NodeLimit, "node limit reached: new ID rejected", "node", id, "max", s.cfg.MaxNodes, "remote", conn.RemoteAddr().String())
		return nil, false
	}
	l, err := s.newLink(id)
	s.mu.Lock()
	s.making--
	if err != nil {
		s.mu.Unlock()
		s.count(&s.stats.Refused, "node refused: its link cannot be made", "node", id, "err", err, "remote", conn.RemoteAddr().String())
		return nil, false
	}
	if s.closed || s.nodes[id] != nil {
		other := s.nodes[id]
		s.mu.Unlock()
		l.Close() // never attached: nothing to wait for
		return other, other != nil
	}
	s.nodes[id] = l
	s.newNode.Notify()
	s.mu.Unlock()
	return l, true
}

func (s *Server) newLink(id string) (*link.Link, error) {
	cfg := link.Config{
		ID:         id,
		Timeout:    s.cfg.Timeout,
		MaxLine:    s.cfg.MaxLine,
		RecvQueue:  s.cfg.RecvQueue,
		WritePause: s.cfg.WritePause,
		Logger:     s.log,
		// How long a legacy node's identical 00 on a new socket may be
		// a repeat (see link.Window).
		RepeatHorizon: s.cfg.RepeatHorizon,
		NoTCPEvidence: s.cfg.NoTCPEvidence,
		Pace:          s.cfg.Pace,
		// One read-loop wakeup per node keepalive, rather than that and
		// a timer's: the server's cost per idle node.
		AnswerKeepalives: true,
	}
	if s.cfg.Configure != nil {
		if err := s.cfg.Configure(id, &cfg); err != nil {
			return nil, err
		}
	}
	if own, all := cfg.OnEvent, s.cfg.OnEvent; all != nil {
		cfg.OnEvent = func(ev link.Event) {
			all(ev)
			if own != nil {
				own(ev)
			}
		}
	}
	return link.New(cfg)
}

// prefixConn gives back the bytes read past the ID line before reading
// the socket: they are the start of the node's stream. A new connection
// never sees a fragment of an old one: each has its own prefix.
type prefixConn struct {
	net.Conn
	pre []byte
}

func (c *prefixConn) Read(p []byte) (int, error) {
	if len(c.pre) > 0 {
		n := copy(p, c.pre)
		c.pre = c.pre[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}

// NetConn returns the connection under the prefix: the link reads the TCP
// evidence about a node's 00 from it (see link.Window).
func (c *prefixConn) NetConn() net.Conn { return c.Conn }

// SyscallConn lets the link write to the socket without blocking.
func (c *prefixConn) SyscallConn() (syscall.RawConn, error) {
	if sc, ok := c.Conn.(syscall.Conn); ok {
		return sc.SyscallConn()
	}
	return nil, errors.ErrUnsupported
}
