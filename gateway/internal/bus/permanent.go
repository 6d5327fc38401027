package bus

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"reflect"

	"github.com/eclipse/paho.mqtt.golang/packets"
)

// ErrBadURL is returned (wrapped) by Dial for a broker URL that does not
// parse, has no host, or has a scheme it does not support.
var ErrBadURL = errors.New("bad broker URL")

// Permanent reports whether a connection error is one that retrying
// cannot cure, because the gateway's settings or the broker's must
// change first:
//
//   - ErrBadURL (a bad URL or scheme);
//   - a CONNACK that refuses the client for a reason of its own: bad user
//     name or password, not authorized, identifier rejected, unacceptable
//     protocol version;
//   - a broker certificate that does not verify (unknown authority, wrong
//     host name, expired...);
//   - an answer to the TLS handshake that is not TLS (mqtts:// to a port
//     that is not);
//   - a TLS alert from the broker about the client's certificate or TLS
//     settings (bad, unknown, expired or missing client certificate,
//     unknown CA, access denied, no common version or cipher suite).
//
// Every other error may pass, and is retried: connection refused or
// reset, host or network unreachable, timeouts, DNS failures, the
// connection closed during the TLS or MQTT handshake, a CONNACK "server
// unavailable", a TLS alert "internal error".
func Permanent(err error) bool {
	if err == nil {
		return false
	}
	for _, p := range []error{ErrBadURL,
		packets.ErrorRefusedBadUsernameOrPassword, packets.ErrorRefusedNotAuthorised,
		packets.ErrorRefusedIDRejected, packets.ErrorRefusedBadProtocolVersion} {
		if errors.Is(err, p) {
			return true
		}
	}
	var (
		ce *tls.CertificateVerificationError
		ua x509.UnknownAuthorityError
		he x509.HostnameError
		ci x509.CertificateInvalidError
		rh tls.RecordHeaderError
	)
	switch {
	case errors.As(err, &ce), errors.As(err, &ua), errors.As(err, &he), errors.As(err, &ci), errors.As(err, &rh):
		return true
	}
	return IsTLSRefusal(err)
}

// IsTLSRefusal reports whether err is a TLS alert from the broker that
// refuses the client's certificate or TLS settings (see Permanent).
func IsTLSRefusal(err error) bool {
	var ae tls.AlertError
	if errors.As(err, &ae) {
		return permanentAlert(uint8(ae))
	}
	// An alert that the peer sent: crypto/tls reports it as a
	// *net.OpError "remote error" around its unexported alert type, a
	// uint8.
	var ope *net.OpError
	if !errors.As(err, &ope) || ope.Op != "remote error" {
		return false
	}
	v := reflect.ValueOf(ope.Err)
	return v.IsValid() && v.Kind() == reflect.Uint8 && permanentAlert(uint8(v.Uint()))
}

// permanentAlert reports whether a TLS alert (RFC 8446, section 6)
// refuses the client's certificate or settings.
func permanentAlert(code uint8) bool {
	switch code {
	case 40, // handshake_failure: no common parameters
		42,  // bad_certificate
		43,  // unsupported_certificate
		44,  // certificate_revoked
		45,  // certificate_expired
		46,  // certificate_unknown
		48,  // unknown_ca
		49,  // access_denied
		70,  // protocol_version
		71,  // insufficient_security
		116: // certificate_required
		return true
	}
	return false
}

// Hint says what to check, in the gateway's settings (mqtt.* in its
// config file, --broker) or the broker's, when a connection to the
// broker failed with err; a Permanent error gets a precise one.
func Hint(err error) string {
	var (
		ce *tls.CertificateVerificationError
		rh tls.RecordHeaderError
	)
	switch {
	case errors.Is(err, packets.ErrorRefusedNotAuthorised), errors.Is(err, packets.ErrorRefusedBadUsernameOrPassword):
		return "check mqtt.username and mqtt.password"
	case errors.Is(err, packets.ErrorRefusedIDRejected):
		return "the broker rejected the client ID: set mqtt.client_id"
	case errors.Is(err, packets.ErrorRefusedBadProtocolVersion):
		return "the broker does not speak MQTT 3.1.1 or 3.1: enable them on the broker"
	case errors.Is(err, ErrBadURL):
		return "check mqtt.broker / --broker: mqtt://host:1883, mqtts://host:8883"
	case errors.As(err, &ce):
		return "the broker's certificate is not trusted: set mqtt.tls.ca"
	case errors.As(err, &rh):
		return "the broker's port does not answer in TLS: use mqtt:// or its TLS port"
	case IsTLSRefusal(err):
		return "the broker refused the TLS handshake: check mqtt.tls.cert and mqtt.tls.key (a client certificate that it trusts) and its TLS versions"
	case errors.Is(err, packets.ErrorRefusedServerUnavailable):
		return "the broker is not ready to take clients"
	}
	return "is the broker running? check mqtt.broker / --broker, or leave it empty for the embedded broker"
}
