// Package pki is the small certificate authority that binds Go nodes to
// their IDs: it lives in the gateway's data directory (ca/), is created on
// first use, and issues the gateway's server certificate and one client
// certificate per node, whose Common Name is the node's ID. The gateway
// trusts the nodes it signed; the nodes trust the gateway it signed. It
// uses crypto/x509 and ECDSA P-256 keys only.
//
// Files in the CA's directory:
//
//	ca.pem              the CA certificate (public: every node gets a copy)
//	ca-key.pem          its private key (0600)
//	gateway.pem         the gateway's certificate, named ServerName
//	gateway-key.pem     its private key (0600)
//	issued/<serial>.pem every node certificate issued, to list and revoke
package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/tether-iot/tether/internal/wire"
)

// ServerName is the name every gateway certificate carries, and that
// nodes check by default (client.LoadTLS): the CA is the gateway's own,
// so the name need not be the address the node dials, which changes with
// the network (a DHCP lease, a new router).
const ServerName = "tether-gateway"

// File names in the CA's directory.
const (
	CAFile         = "ca.pem"
	CAKeyFile      = "ca-key.pem"
	GatewayFile    = "gateway.pem"
	GatewayKeyFile = "gateway-key.pem"
	IssuedDir      = "issued"
	// Node credentials written by WriteNode.
	NodeFile    = "node.pem"
	NodeKeyFile = "node-key.pem"
)

// Validity of what the CA issues unless told otherwise.
const (
	CAValidity      = 20 * 365 * 24 * time.Hour
	GatewayValidity = 10 * 365 * 24 * time.Hour
	// NodeValidity is the default life of a node certificate (825
	// days, the longest that browsers accept for a leaf, a usual
	// figure): long enough not to re-provision a fleet often, short
	// enough that a lost device's certificate ends by itself.
	NodeValidity = 825 * 24 * time.Hour
)

// ErrNoCA: the directory holds no CA (see Ensure).
var ErrNoCA = errors.New("pki: no CA in this directory")

// Dir is the CA's directory in a gateway's data directory.
func Dir(data string) string { return filepath.Join(data, "ca") }

// CA is an open certificate authority.
type CA struct {
	dir  string
	Cert *x509.Certificate
	key  crypto.Signer
	pem  []byte
}

// Open opens the CA in dir; ErrNoCA if there is none.
func Open(dir string) (*CA, error) {
	certPEM, err := os.ReadFile(filepath.Join(dir, CAFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s", ErrNoCA, dir)
	}
	if err != nil {
		return nil, fmt.Errorf("pki: %w", err)
	}
	cert, err := parseCert(certPEM)
	if err != nil {
		return nil, fmt.Errorf("pki: %s: %w", CAFile, err)
	}
	keyPEM, err := os.ReadFile(filepath.Join(dir, CAKeyFile))
	if err != nil {
		return nil, fmt.Errorf("pki: the CA's key: %w", err)
	}
	key, err := parseKey(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("pki: %s: %w", CAKeyFile, err)
	}
	return &CA{dir: dir, Cert: cert, key: key, pem: certPEM}, nil
}

// Ensure opens the CA in dir, creating it (and dir, 0700) on first use;
// created says whether it did.
func Ensure(dir string) (ca *CA, created bool, err error) {
	ca, err = Open(dir)
	if !errors.Is(err, ErrNoCA) {
		return ca, false, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, false, fmt.Errorf("pki: %w", err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, false, fmt.Errorf("pki: %w", err)
	}
	host, _ := os.Hostname()
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          newSerial(),
		Subject:               pkix.Name{CommonName: strings.TrimSpace("Tether CA " + host), Organization: []string{"Tether"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(CAValidity),
		IsCA:                  true,
		BasicConstraintsValid: true,
		MaxPathLenZero:        true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, false, fmt.Errorf("pki: %w", err)
	}
	keyPEM, err := encodeKey(key)
	if err != nil {
		return nil, false, err
	}
	// The key first, exclusively: two processes creating the CA at once
	// do not both win.
	if err := writeFile(filepath.Join(dir, CAKeyFile), keyPEM, 0o600, true); err != nil {
		if errors.Is(err, fs.ErrExist) {
			ca, err := Open(dir)
			return ca, false, err
		}
		return nil, false, err
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	if err := writeFile(filepath.Join(dir, CAFile), certPEM, 0o644, false); err != nil {
		return nil, false, err
	}
	ca, err = Open(dir)
	return ca, err == nil, err
}

// CertPEM returns the CA certificate, PEM-encoded.
func (ca *CA) CertPEM() []byte { return slices.Clone(ca.pem) }

// Pool returns a pool holding the CA certificate.
func (ca *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.Cert)
	return p
}

// Dir returns the CA's directory.
func (ca *CA) Dir() string { return ca.dir }

// Issued is a node certificate the CA issued.
type Issued struct {
	ID       string
	Serial   string // lower-case hex, as revocation lists take it
	NotAfter time.Time
	CertPEM  []byte
	KeyPEM   []byte
}

// IssueNode issues a client certificate for node id, valid for valid
// (NodeValidity if zero), and keeps a copy in issued/.
func (ca *CA) IssueNode(id string, valid time.Duration) (Issued, error) {
	if err := wire.CheckNodeID(id, 0); err != nil {
		return Issued{}, fmt.Errorf("pki: %w", err)
	}
	if valid == 0 {
		valid = NodeValidity
	}
	now := time.Now()
	return ca.issue(&x509.Certificate{
		SerialNumber: newSerial(),
		Subject:      pkix.Name{CommonName: id, Organization: []string{"Tether node"}},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(valid),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}, true)
}

// IssueNodeAt is IssueNode with an explicit validity window: for tests of
// expired and not-yet-valid certificates.
func (ca *CA) IssueNodeAt(id string, notBefore, notAfter time.Time) (Issued, error) {
	return ca.issue(&x509.Certificate{
		SerialNumber: newSerial(),
		Subject:      pkix.Name{CommonName: id, Organization: []string{"Tether node"}},
		NotBefore:    notBefore,
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}, true)
}

// IssueGateway issues a server certificate named ServerName and hosts
// (DNS names or IP addresses), valid for valid (GatewayValidity if zero).
func (ca *CA) IssueGateway(hosts []string, valid time.Duration) (Issued, error) {
	if valid == 0 {
		valid = GatewayValidity
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: newSerial(),
		Subject:      pkix.Name{CommonName: ServerName, Organization: []string{"Tether gateway"}},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(valid),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     []string{ServerName},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else if h != "" && h != ServerName {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	return ca.issue(tmpl, false)
}

func (ca *CA) issue(tmpl *x509.Certificate, keep bool) (Issued, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return Issued{}, fmt.Errorf("pki: %w", err)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, key.Public(), ca.key)
	if err != nil {
		return Issued{}, fmt.Errorf("pki: %w", err)
	}
	keyPEM, err := encodeKey(key)
	if err != nil {
		return Issued{}, err
	}
	is := Issued{
		ID:       tmpl.Subject.CommonName,
		Serial:   Serial(tmpl),
		NotAfter: tmpl.NotAfter,
		CertPEM:  pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		KeyPEM:   keyPEM,
	}
	if keep {
		d := filepath.Join(ca.dir, IssuedDir)
		if err := os.MkdirAll(d, 0o700); err != nil {
			return Issued{}, fmt.Errorf("pki: %w", err)
		}
		if err := writeFile(filepath.Join(d, is.Serial+".pem"), is.CertPEM, 0o644, true); err != nil {
			return Issued{}, err
		}
	}
	return is, nil
}

// List returns the node certificates the CA issued (issued/), oldest
// first.
func (ca *CA) List() ([]*x509.Certificate, error) {
	ents, err := os.ReadDir(filepath.Join(ca.dir, IssuedDir))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("pki: %w", err)
	}
	var certs []*x509.Certificate
	for _, e := range ents {
		if !strings.HasSuffix(e.Name(), ".pem") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(ca.dir, IssuedDir, e.Name()))
		if err != nil {
			return nil, fmt.Errorf("pki: %w", err)
		}
		c, err := parseCert(b)
		if err != nil {
			return nil, fmt.Errorf("pki: %s: %w", e.Name(), err)
		}
		certs = append(certs, c)
	}
	slices.SortStableFunc(certs, func(a, b *x509.Certificate) int { return a.NotBefore.Compare(b.NotBefore) })
	return certs, nil
}

// GatewayCredentials returns the files of the gateway's certificate and
// key in the CA's directory, issuing them first if they are missing
// (named ServerName and hosts).
func (ca *CA) GatewayCredentials(hosts []string) (cert, key string, err error) {
	cert, key = filepath.Join(ca.dir, GatewayFile), filepath.Join(ca.dir, GatewayKeyFile)
	if _, err := tls.LoadX509KeyPair(cert, key); err == nil {
		return cert, key, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", "", fmt.Errorf("pki: the gateway's certificate: %w", err)
	}
	is, err := ca.IssueGateway(hosts, 0)
	if err != nil {
		return "", "", err
	}
	if err := writeFile(key, is.KeyPEM, 0o600, false); err != nil {
		return "", "", err
	}
	if err := writeFile(cert, is.CertPEM, 0o644, false); err != nil {
		return "", "", err
	}
	return cert, key, nil
}

// WriteNode writes a node's credentials in dir (made 0700 if missing):
// node.pem, node-key.pem (0600) and ca.pem, the three files that
// tether node --cert --key --ca (or client.LoadTLS) take. It refuses to
// overwrite a key.
func (ca *CA) WriteNode(dir string, is Issued) (cert, key, caFile string, err error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", "", "", fmt.Errorf("pki: %w", err)
	}
	cert, key, caFile = filepath.Join(dir, NodeFile), filepath.Join(dir, NodeKeyFile), filepath.Join(dir, CAFile)
	if err := writeFile(key, is.KeyPEM, 0o600, true); err != nil {
		return "", "", "", err
	}
	if err := writeFile(cert, is.CertPEM, 0o644, false); err != nil {
		return "", "", "", err
	}
	if err := writeFile(caFile, ca.pem, 0o644, false); err != nil {
		return "", "", "", err
	}
	return cert, key, caFile, nil
}

// Serial returns a certificate's serial number as revocation lists take
// it: lower-case hex, no separators.
func Serial(c *x509.Certificate) string { return fmt.Sprintf("%x", c.SerialNumber) }

// NormalizeSerial turns a serial written by a person (upper case, with
// colons or spaces, a 0x prefix) into Serial's form.
func NormalizeSerial(s string) string {
	s = strings.ToLower(strings.TrimSpace(s))
	s = strings.TrimPrefix(s, "0x")
	s = strings.NewReplacer(":", "", " ", "", "-", "").Replace(s)
	return strings.TrimLeft(s, "0")
}

// NodeID returns the node ID a client certificate names: its Common Name.
func NodeID(c *x509.Certificate) string { return c.Subject.CommonName }

// ServerTLS returns the TLS config of a gateway's node listener: its
// certificate, and client certificates verified against the CA pool when
// given (the server refuses a claim without one itself, after reading the
// claimed ID for its log). TLS 1.3 only: only Go nodes speak TLS.
func ServerTLS(cert, key string, clientCAs *x509.CertPool) (*tls.Config, error) {
	c, err := tls.LoadX509KeyPair(cert, key)
	if err != nil {
		return nil, fmt.Errorf("pki: %w", err)
	}
	return &tls.Config{
		Certificates: []tls.Certificate{c},
		ClientCAs:    clientCAs,
		ClientAuth:   tls.VerifyClientCertIfGiven,
		MinVersion:   tls.VersionTLS13,
	}, nil
}

// LoadPool reads a PEM file of CA certificates.
func LoadPool(file string) (*x509.CertPool, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("pki: %w", err)
	}
	p := x509.NewCertPool()
	if !p.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("pki: no PEM certificate in %s", file)
	}
	return p, nil
}

func newSerial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic(err) // crypto/rand does not fail
	}
	return n.Add(n, big.NewInt(1)) // never zero
}

func encodeKey(k *ecdsa.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, fmt.Errorf("pki: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

func parseCert(b []byte) (*x509.Certificate, error) {
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "CERTIFICATE" {
		return nil, errors.New("no PEM certificate")
	}
	return x509.ParseCertificate(blk.Bytes)
}

func parseKey(b []byte) (crypto.Signer, error) {
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, errors.New("no PEM key")
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, err
	}
	s, ok := k.(crypto.Signer)
	if !ok {
		return nil, errors.New("not a signing key")
	}
	return s, nil
}

// writeFile writes b to path with mode perm; excl refuses an existing
// file (fs.ErrExist). A file is written whole or not at all.
func writeFile(path string, b []byte, perm os.FileMode, excl bool) error {
	if excl {
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
		if err != nil {
			return fmt.Errorf("pki: %w", err)
		}
		_, err = f.Write(b)
		if err == nil {
			err = f.Sync()
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			os.Remove(path)
			return fmt.Errorf("pki: %w", err)
		}
		return nil
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return fmt.Errorf("pki: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(perm); err != nil {
		tmp.Close()
		return fmt.Errorf("pki: %w", err)
	}
	_, err = tmp.Write(b)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		return fmt.Errorf("pki: %w", err)
	}
	return nil
}
