package client

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"

	"github.com/tether-iot/tether/internal/pki"
)

// LoadTLS returns the TLS config of a node from the three files that
// tether ca issue writes: the node's certificate (whose Common Name is
// its ID), its key, and the gateway's CA certificate. The node then
// verifies that the gateway's certificate is signed by that CA and names
// "tether-gateway" (the name tether ca gives every gateway), whatever
// address it dials.
func LoadTLS(certFile, keyFile, caFile string) (*tls.Config, error) {
	if certFile == "" || keyFile == "" || caFile == "" {
		return nil, errors.New("client: TLS needs the node's certificate, its key and the CA certificate")
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("client: node certificate: %w", err)
	}
	b, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("client: CA certificate: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("client: no PEM certificate in %s", caFile)
	}
	return &tls.Config{
		Certificates: []tls.Certificate{cert},
		RootCAs:      pool,
		ServerName:   pki.ServerName,
		MinVersion:   tls.VersionTLS13,
	}, nil
}

// certID returns the ID the first certificate of c names, if any.
func certID(c *tls.Config) (string, bool) {
	if len(c.Certificates) == 0 || len(c.Certificates[0].Certificate) == 0 {
		return "", false
	}
	x, err := x509.ParseCertificate(c.Certificates[0].Certificate[0])
	if err != nil {
		return "", false
	}
	return pki.NodeID(x), true
}

// secure runs the TLS handshake on a new socket, bounded by 2T (it
// costs a round trip: on a path whose round trip nears T, a T bound
// would never let the node back); without Config.TLS it returns conn as
// it is.
func (c *Client) secure(ctx context.Context, conn net.Conn) (net.Conn, error) {
	if c.cfg.TLS == nil {
		return conn, nil
	}
	tc := tls.Client(conn, c.cfg.TLS)
	hctx, cancel := context.WithTimeout(ctx, 2*c.cfg.Timeout)
	defer cancel()
	if err := tc.HandshakeContext(hctx); err != nil {
		conn.Close()
		return nil, fmt.Errorf("TLS handshake: %w", err)
	}
	return tlsConn{Conn: tc, raw: conn}, nil
}

// tlsConn is the node's TLS connection, closed at once: its Close closes
// the socket without the close_notify alert, whose write may block for
// 5 s on a server that stopped reading, while the link holds its lock.
type tlsConn struct {
	*tls.Conn
	raw net.Conn
}

// Close closes the socket under the TLS connection.
func (c tlsConn) Close() error { return c.raw.Close() }

// NetConn returns the socket under the TLS connection, as Config.Dial
// returned it (for its TCP_INFO, say). Reading or writing it directly
// corrupts the TLS stream.
func (c tlsConn) NetConn() net.Conn { return c.raw }
