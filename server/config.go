package server

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/tether-iot/tether/internal/wire"
	"github.com/tether-iot/tether/link"
)

// DefaultAddr is where ListenAndServe listens by default: the legacy port.
const DefaultAddr = ":8123"

// Config configures a Server. The zero value serves on :8123 with T = 2 s,
// accepting any well-formed node ID. New copies it.
type Config struct {
	// Addr is the TCP address ListenAndServe listens on; "" means :8123.
	Addr string

	// Timeout is T, which must match the nodes' (see link.Config).
	// Zero means 2 s.
	Timeout time.Duration

	// Expected lists the node IDs this server expects. An unknown ID is
	// logged and accepted, unless Strict is set. WaitAll waits for them.
	Expected []string
	// Strict rejects IDs that are not in Expected.
	Strict bool

	// MaxLine is the longest line accepted from or written to a node, id
	// included, LF excluded. Zero means link.DefaultMaxLine (4096).
	MaxLine int
	// MaxIDLen is the longest node ID, in bytes. Zero means 64.
	MaxIDLen int
	// RecvQueue is how many received lines a node's link holds for
	// ReadLine acknowledged; beyond that, ACKs wait until the application
	// reads (see link.Config.RecvQueue). Zero means 64.
	RecvQueue int
	// WritePause holds messages to a node until its first bytes on a new
	// socket, then this long (legacy ESP8266 firmware needs it). Zero
	// means 200 ms; negative means no pause.
	WritePause time.Duration

	// RepeatHorizon bounds how long after the server acknowledged a node's
	// message 00 an identical 00, first on a new socket, with neither a
	// greeting (a legacy node sends none) nor TCP evidence that the node
	// got the ACK, is taken for a repeat rather than for a restart (see
	// link.Window and link.Config.RepeatHorizon). Zero means 5T+13 s, the
	// longest a legacy node takes to repeat; negative means none: every
	// such 00 is a restart. Configure can set it per node.
	RepeatHorizon time.Duration

	// NoTCPEvidence is link.Config.NoTCPEvidence for every node: for a
	// server whose nodes connect through a proxy that terminates TCP.
	// Configure can set it per node.
	NoTCPEvidence bool

	// Pace paces the messages written to each node (see link.Pace): for
	// original micropython-iot nodes, whose application may read slower
	// than the server writes. Zero does not pace; Configure can set it
	// per node.
	Pace link.Pace

	// AddrMemory is how long the server remembers an address a node ID
	// left: a connection of the ID from that address within it is a
	// return (AddrBack: the ID alternates between addresses, as two
	// devices sharing it do), after it a move (AddrMoved). Zero means
	// 24 h.
	AddrMemory time.Duration
	// OnSighting, if set, is called with every node connection that
	// passed the handshake, classified by its source address against the
	// ID's earlier ones (see Sighting), before its socket is attached. It
	// runs on the connection's goroutine and must return quickly.
	OnSighting func(Sighting)

	// HandshakeTimeout bounds the wait for a new connection's ID line
	// (a TLS node gets 2 HandshakeTimeout more for its TLS handshake and
	// ID line). Zero means Timeout.
	HandshakeTimeout time.Duration
	// MaxHandshakes bounds the connections waiting for their ID line;
	// further connections wait in the kernel's backlog (a reconnect storm
	// of thousands of nodes overflows it). Zero means 8192.
	MaxHandshakes int
	// MaxHandshakesPerIP bounds them per source address; a connection past
	// it is closed at once. Zero means 64; negative means no limit.
	MaxHandshakesPerIP int
	// MaxNodes bounds how many node IDs the server keeps; a new ID past it
	// is rejected. Zero means 100000.
	MaxNodes int

	// TLS, if set, serves nodes that speak TLS on the same listener as
	// the plain ones: a connection whose first byte is 0x16 (a TLS
	// handshake record, which can never start an ID line) is a TLS one.
	// It needs Certificates and ClientCAs; a node's client certificate
	// must name (Common Name) the ID it then claims, else the claim is
	// refused. Use ClientAuth tls.VerifyClientCertIfGiven (as tether
	// serve does): a claim without a certificate is then refused
	// with its ID in the log (Stats.NoCert). Access says which IDs must
	// use it.
	TLS *tls.Config
	// Access says who may claim which ID: TLS-only IDs, revoked
	// certificates and IDs, IDs pinned to networks (see Access).
	// SetAccess replaces it while the server runs.
	Access Access
	// Admit, if set, is asked about each claim that passed Access and
	// Expected, before the node's link is made or attached: an error
	// refuses it (counted as Stats.Pending if it wraps ErrPending, else
	// Stats.Refused). It runs on the connection's handshake goroutine,
	// within the handshake timeout.
	Admit func(Claim) error

	// Logger receives the server's and the links' log lines; nil means
	// slog.Default().
	Logger *slog.Logger
	// OnEvent, if set, receives every node's events (see link.Config.OnEvent).
	OnEvent func(link.Event)
	// Configure, if set, adjusts the link.Config of a node before its
	// link is made, when its ID first connects: to resume a saved
	// sequence, say, or to deliver messages elsewhere. It runs on the
	// node's handshake goroutine. An error refuses the connection (logged
	// and counted as Stats.Refused); the node tries again later.
	Configure func(id string, c *link.Config) error
}

func (c Config) withDefaults() (Config, error) {
	if c.Addr == "" {
		c.Addr = DefaultAddr
	}
	if c.Timeout == 0 {
		c.Timeout = link.DefaultTimeout
	}
	if c.Timeout < 0 {
		return c, fmt.Errorf("server: negative Timeout %v", c.Timeout)
	}
	if c.MaxIDLen == 0 {
		c.MaxIDLen = wire.MaxNodeID
	}
	if c.WritePause == 0 {
		c.WritePause = 200 * time.Millisecond
	}
	if c.WritePause < 0 {
		c.WritePause = 0
	}
	if c.AddrMemory == 0 {
		c.AddrMemory = 24 * time.Hour
	}
	if c.HandshakeTimeout == 0 {
		c.HandshakeTimeout = c.Timeout
	}
	if c.MaxHandshakes == 0 {
		c.MaxHandshakes = 8192
	}
	if c.MaxHandshakesPerIP == 0 {
		c.MaxHandshakesPerIP = 64
	}
	if c.MaxNodes == 0 {
		c.MaxNodes = 100000
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.MaxIDLen < 0 || c.MaxHandshakes < 0 || c.MaxNodes < 0 || c.HandshakeTimeout < 0 {
		return c, errors.New("server: negative limit in Config")
	}
	for _, id := range c.Expected {
		if err := wire.CheckNodeID(id, c.MaxIDLen); err != nil {
			return c, fmt.Errorf("server: expected ID %q: %w", id, err)
		}
	}
	if c.TLS != nil && len(c.TLS.Certificates) == 0 && c.TLS.GetCertificate == nil && c.TLS.GetConfigForClient == nil {
		return c, errors.New("server: TLS config without a certificate")
	}
	if c.TLS == nil && (c.Access.TLSRequired || len(c.Access.TLSOnly) > 0) {
		return c, errors.New("server: Access requires TLS for some IDs but Config.TLS is not set: they could never connect")
	}
	if c.Strict && len(c.Expected) == 0 {
		return c, errors.New("server: Strict needs Expected IDs")
	}
	return c, nil
}
