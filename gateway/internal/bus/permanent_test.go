package bus_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"
	"testing"

	"github.com/eclipse/paho.mqtt.golang/packets"
	"github.com/tether-iot/tether/gateway/internal/bus"
)

// TestPermanent: the errors that retrying cannot cure, and some that it
// may, wrapped as Paho wraps a failed connection attempt.
func TestPermanent(t *testing.T) {
	paho := func(err error) error { return fmt.Errorf("%w : %w", packets.ErrorNetworkError, err) }
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"bad URL", fmt.Errorf("bus: %w %q", bus.ErrBadURL, "x"), true},
		{"bad user name or password", packets.ErrorRefusedBadUsernameOrPassword, true},
		{"not authorized", packets.ErrorRefusedNotAuthorised, true},
		{"identifier rejected", packets.ErrorRefusedIDRejected, true},
		{"unacceptable protocol version", packets.ErrorRefusedBadProtocolVersion, true},
		{"certificate not trusted", paho(&tls.CertificateVerificationError{Err: x509.UnknownAuthorityError{}}), true},
		{"wrong host name", paho(x509.HostnameError{Host: "broker"}), true},
		{"not TLS", paho(tls.RecordHeaderError{Msg: "first record does not look like a TLS handshake"}), true},
		{"client certificate required", paho(remoteAlert(t, 116)), true},
		{"unknown CA (broker's alert)", paho(remoteAlert(t, 48)), true},
		{"TLS internal error", paho(remoteAlert(t, 80)), false},
		{"server unavailable", packets.ErrorRefusedServerUnavailable, false},
		{"connection refused", paho(refused), false},
		{"unreachable", paho(&net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.EHOSTUNREACH)}), false},
		{"timeout", paho(context.DeadlineExceeded), false},
		{"DNS", paho(&net.OpError{Op: "dial", Net: "tcp", Err: &net.DNSError{Err: "no such host", Name: "broker.lan", IsNotFound: true}}), false},
		{"closed during the handshake", paho(io.EOF), false},
		{"reset during the TLS handshake", paho(&net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", syscall.ECONNRESET)}), false},
		{"nil", nil, false},
	} {
		if got := bus.Permanent(tc.err); got != tc.want {
			t.Errorf("%s: Permanent(%v) = %v, want %v", tc.name, tc.err, got, tc.want)
		}
	}
}

// remoteAlert returns the error crypto/tls gives when the peer sends
// alert code: a server that sends it during the handshake.
func remoteAlert(t *testing.T, code uint8) error {
	t.Helper()
	c, s := net.Pipe()
	read := make(chan struct{})
	go func() {
		defer close(read)
		io.Copy(io.Discard, s) // the ClientHello, until c closes
	}()
	wrote := make(chan struct{})
	go func() {
		defer close(wrote)
		s.Write([]byte{21, 3, 3, 0, 2, 2, code}) // an alert record: fatal, code
	}()
	err := tls.Client(c, &tls.Config{ServerName: "x"}).Handshake()
	c.Close()
	<-read
	<-wrote
	s.Close()
	var ope *net.OpError
	if !errors.As(err, &ope) || ope.Op != "remote error" {
		t.Fatalf("alert %d: handshake error %v, want a remote error", code, err)
	}
	return err
}
