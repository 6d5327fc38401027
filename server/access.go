package server

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"
)

// ErrPending, wrapped in the error of Config.Admit, means the ID waits
// for an operator's approval: the connection is closed and counted as
// Stats.Pending (not Refused); the node tries again later.
var ErrPending = errors.New("server: node ID waiting for approval")

// ErrTLSRequired, wrapped in the error of Config.Admit, refuses a plain
// claim of an ID that must use TLS: counted as Stats.PlainRefused.
var ErrTLSRequired = errors.New("server: the node ID must connect over TLS")

// Access says who may claim which node ID. The zero Access lets anyone
// claim any ID from anywhere, over plain TCP, as the original
// micropython-iot server did. A claim that breaks it is refused (the
// connection closed before the node's link sees it), logged and counted
// by reason in Stats.
type Access struct {
	// TLSRequired refuses every plain-TCP claim: every node must connect
	// over TLS with a client certificate naming its ID (Config.TLS).
	TLSRequired bool
	// TLSOnly lists the IDs that must connect over TLS (nodes that run
	// Go and have credentials); the others may still use plain TCP.
	TLSOnly []string
	// RevokedSerials lists client certificates refused although valid,
	// by serial number in hex (colons, spaces and case do not matter).
	RevokedSerials []string
	// RevokedIDs lists node IDs refused whatever they present.
	RevokedIDs []string
	// AllowFrom lists the networks that may claim an ID not in Pins; an
	// address without /n is that address alone. Empty means anywhere.
	AllowFrom []netip.Prefix
	// Pins lists, per node ID, the networks that may claim it; it
	// overrides AllowFrom for that ID.
	Pins map[string][]netip.Prefix
}

// Claim is a connection's claim of a node ID, once the server's own checks
// (Access, Expected) have passed; Config.Admit sees it.
type Claim struct {
	ID     string
	Remote netip.AddrPort
	// TLS says the node proved its ID with a client certificate; Serial
	// is that certificate's serial number (hex).
	TLS    bool
	Serial string
}

// access is Access, compiled for lookups.
type access struct {
	tlsAll     bool
	tlsOnly    map[string]bool
	revSerials map[string]bool
	revIDs     map[string]bool
	allowFrom  []netip.Prefix
	pins       map[string][]netip.Prefix
}

func compileAccess(a Access) (*access, error) {
	c := &access{
		tlsAll:     a.TLSRequired,
		tlsOnly:    make(map[string]bool, len(a.TLSOnly)),
		revSerials: make(map[string]bool, len(a.RevokedSerials)),
		revIDs:     make(map[string]bool, len(a.RevokedIDs)),
		allowFrom:  a.AllowFrom,
		pins:       make(map[string][]netip.Prefix, len(a.Pins)),
	}
	for _, id := range a.TLSOnly {
		c.tlsOnly[id] = true
	}
	for _, s := range a.RevokedSerials {
		n := normalizeSerial(s)
		if n == "" {
			return nil, fmt.Errorf("server: revoked serial %q is not hex", s)
		}
		c.revSerials[n] = true
	}
	for _, id := range a.RevokedIDs {
		c.revIDs[id] = true
	}
	for id, ps := range a.Pins {
		if len(ps) == 0 {
			return nil, fmt.Errorf("server: pin of node %q lists no network (it could never connect)", id)
		}
		c.pins[id] = ps
	}
	return c, nil
}

// normalizeSerial is pki.NormalizeSerial (the server does not import the
// CA): lower-case hex, no separators nor leading zeros; "" if not hex.
func normalizeSerial(s string) string {
	s = strings.ToLower(strings.TrimSpace(s))
	s = strings.TrimPrefix(s, "0x")
	s = strings.NewReplacer(":", "", " ", "", "-", "").Replace(s)
	s = strings.TrimLeft(s, "0")
	for _, r := range s {
		if !strings.ContainsRune("0123456789abcdef", r) {
			return ""
		}
	}
	if s == "" {
		return "0"
	}
	return s
}

func serialOf(c *x509.Certificate) string { return fmt.Sprintf("%x", c.SerialNumber) }

// allowed reports whether addr may claim id, and the networks it may
// come from.
func (a *access) allowed(id string, addr netip.Addr) (bool, []netip.Prefix) {
	nets, ok := a.pins[id]
	if !ok {
		nets = a.allowFrom
	}
	if len(nets) == 0 {
		return true, nil
	}
	addr = addr.Unmap()
	for _, p := range nets {
		if p.Contains(addr) {
			return true, nets
		}
	}
	return false, nets
}

// SetAccess replaces the server's Access (after a config reload, say): it
// applies to the claims that follow; links already up stay up.
func (s *Server) SetAccess(a Access) error {
	c, err := compileAccess(a)
	if err != nil {
		return err
	}
	s.access.Store(c)
	return nil
}

// secured is a connection after its first byte: plain, or TLS with the
// node's verified certificate.
type secured struct {
	conn net.Conn // what the link reads and writes: the TLS conn if TLS
	pre  []byte   // bytes read from conn before the ID line (plain: the first byte)
	cert *x509.Certificate
	tls  bool
}

// secure reads a new connection's first byte: 0x16 (a TLS handshake
// record), which can never start an ID line (wire.CheckNodeID refuses
// control characters), makes it a TLS connection if Config.TLS is set,
// and refuses it with a hint if not; anything else is a plain one. The
// read deadline set by the caller bounds the wait for that byte; the TLS
// handshake and the ID line after it get 2 HandshakeTimeout more.
func (s *Server) secure(conn net.Conn, remote string) (secured, bool) {
	var b [1]byte
	if _, err := conn.Read(b[:]); err != nil {
		s.rejectHandshake(err, remote)
		return secured{}, false
	}
	if b[0] != 0x16 {
		return secured{conn: conn, pre: b[:]}, true
	}
	if s.tlsCfg == nil {
		s.count(&s.stats.TLSFailed, "a node speaks TLS but this server's TLS is off (gateway: tls.enabled, tether serve --tls): connection closed", "remote", remote)
		return secured{}, false
	}
	// The TLS handshake costs a round trip more than an ID line: on a
	// path whose round trip is near T, a TLS node could never come back
	// within HandshakeTimeout. It gets twice as much again.
	if err := conn.SetDeadline(time.Now().Add(2 * s.cfg.HandshakeTimeout)); err != nil {
		s.rejectHandshake(err, remote)
		return secured{}, false
	}
	tc := tls.Server(&firstByteConn{Conn: conn, first: b[0], have: true}, s.tlsCfg)
	if err := tc.HandshakeContext(s.ctx); err != nil {
		var cve *tls.CertificateVerificationError
		switch {
		case errors.Is(err, errRevokedSerial):
			s.count(&s.stats.CertRevoked, "revoked client certificate: connection closed", "err", err, "remote", remote)
		case errors.As(err, &cve):
			id := ""
			if len(cve.UnverifiedCertificates) > 0 {
				id = cve.UnverifiedCertificates[0].Subject.CommonName
			}
			s.count(&s.stats.CertInvalid, "client certificate refused (expired, not yet valid, or not signed by the gateway's CA): connection closed",
				"node", truncated(id), "err", cve.Err, "remote", remote)
		default:
			s.count(&s.stats.TLSFailed, "TLS handshake failed: connection closed", "err", err, "remote", remote)
		}
		return secured{}, false
	}
	s.mu.Lock()
	s.stats.TLSHandshakes++
	s.mu.Unlock()
	sc := secured{conn: tlsConn{Conn: tc, raw: conn}, tls: true}
	if pc := tc.ConnectionState().PeerCertificates; len(pc) > 0 {
		sc.cert = pc[0]
	}
	return sc, true
}

var errRevokedSerial = errors.New("client certificate revoked")

// verifyConnection refuses revoked certificates during the handshake, so
// that the node is told (a TLS alert) rather than cut off.
func (s *Server) verifyConnection(cs tls.ConnectionState) error {
	if len(cs.PeerCertificates) == 0 {
		return nil // refused once its ID is read, so that the log names it
	}
	c := cs.PeerCertificates[0]
	if s.access.Load().revSerials[serialOf(c)] {
		return fmt.Errorf("%w: serial %s (node %q)", errRevokedSerial, serialOf(c), truncated(c.Subject.CommonName))
	}
	return nil
}

// checkClaim applies Access to the claim of id on sc; it logs and counts
// a refusal.
func (s *Server) checkClaim(sc secured, id string, remote netip.AddrPort) bool {
	a := s.access.Load()
	r := remote.String()
	switch {
	case a.revIDs[id]:
		s.count(&s.stats.CertRevoked, "claim of a revoked node ID refused", "node", id, "remote", r, "tls", sc.tls)
		return false
	case sc.tls && sc.cert == nil:
		s.count(&s.stats.NoCert, "TLS claim without a client certificate refused", "node", id, "remote", r)
		return false
	case sc.tls && sc.cert.Subject.CommonName != id:
		s.count(&s.stats.CertMismatch, "claim refused: the client certificate names another node",
			"node", id, "certificate_for", truncated(sc.cert.Subject.CommonName), "serial", serialOf(sc.cert), "remote", r)
		return false
	case !sc.tls && (a.tlsAll || a.tlsOnly[id]):
		why := "the ID is TLS-only"
		if a.tlsAll {
			why = "TLS is required"
		}
		s.count(&s.stats.PlainRefused, "plain-TCP claim refused: "+why+" (the node must connect with its certificate)", "node", id, "remote", r)
		return false
	}
	if ok, nets := a.allowed(id, remote.Addr()); !ok {
		s.count(&s.stats.PinRefused, "claim refused: the node ID may not connect from this address", "node", id, "remote", r, "allowed", fmt.Sprint(nets))
		return false
	}
	return true
}

// admit runs Config.Admit; false refuses the claim (logged, counted).
func (s *Server) admit(c Claim) bool {
	if s.cfg.Admit == nil {
		return true
	}
	err := s.cfg.Admit(c)
	switch {
	case err == nil:
		return true
	case errors.Is(err, ErrPending):
		s.count(&s.stats.Pending, "node ID waiting for approval: connection closed", "node", c.ID, "remote", c.Remote.String(), "tls", c.TLS)
	case errors.Is(err, ErrTLSRequired):
		s.count(&s.stats.PlainRefused, "plain-TCP claim refused (the node must connect with its certificate)", "node", c.ID, "remote", c.Remote.String(), "why", err)
	default:
		s.count(&s.stats.Refused, "node refused", "node", c.ID, "remote", c.Remote.String(), "err", err)
	}
	return false
}

// addrPort is a connection's remote address, unmapped.
func addrPort(a net.Addr) netip.AddrPort {
	if ta, ok := a.(*net.TCPAddr); ok {
		ap := ta.AddrPort()
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return netip.AddrPort{}
	}
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

// firstByteConn gives back the byte that told TLS from plain.
type firstByteConn struct {
	net.Conn
	first byte
	have  bool
}

func (c *firstByteConn) Read(p []byte) (int, error) {
	if c.have && len(p) > 0 {
		p[0] = c.first
		c.have = false
		return 1, nil
	}
	return c.Conn.Read(p)
}

// tlsConn is a node's TLS connection, closed at once: its Close closes
// the socket without the close_notify alert, whose write may block for
// 5 s on a peer that stopped reading, while the link holds its lock. The
// socket below is NetConn.
type tlsConn struct {
	*tls.Conn
	raw net.Conn
}

// Close closes the socket under the TLS connection.
func (c tlsConn) Close() error { return c.raw.Close() }

// NetConn returns the socket under the TLS connection (for its TCP_INFO,
// say). Reading or writing it directly corrupts the TLS stream.
func (c tlsConn) NetConn() net.Conn { return c.raw }
