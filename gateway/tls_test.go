package gateway_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestBrokerTLSAuth: the gateway reaches mosquitto over TLS (its own CA)
// with a username and password; a wrong password fails at start with a
// message that names the broker.
func TestBrokerTLSAuth(t *testing.T) {
	ctx := testCtx(t)
	dir := t.TempDir()
	ca, cert, key := makeCerts(t, dir)
	passwd := filepath.Join(dir, "passwd")
	if err := os.WriteFile(passwd, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mosquitto_passwd", "-b", passwd, "gw", "s3cret").CombinedOutput(); err != nil {
		t.Fatalf("mosquitto_passwd (install mosquitto: apt-get install mosquitto): %v: %s", err, out)
	}
	addr := startMosquittoConf(t, "allow_anonymous false\npassword_file "+passwd+"\ncafile "+ca+"\ncertfile "+cert+"\nkeyfile "+key+"\n")

	cfg := gwConfig(t, "mqtts://"+addr)
	cfg.MQTT.TLS.CA = ca
	cfg.MQTT.Username, cfg.MQTT.Password = "gw", "wrong"
	g, err := newGateway(cfg)
	if err == nil {
		g.Close()
		t.Fatal("the gateway started with a wrong password")
	}
	if !strings.Contains(err.Error(), "mqtt.password") {
		t.Errorf("wrong password: the error does not say what to check: %v", err)
	}

	// The broker's certificate is not trusted (no mqtt.tls.ca): retrying
	// cannot cure it either.
	cfg.MQTT.TLS.CA = ""
	g, err = newGateway(cfg)
	if err == nil {
		g.Close()
		t.Fatal("the gateway started with a broker certificate it cannot verify")
	}
	if !strings.Contains(err.Error(), "set mqtt.tls.ca") {
		t.Errorf("untrusted certificate: the error does not say what to check: %v", err)
	}
	cfg.MQTT.TLS.CA = ca

	cfg.MQTT.Password = "s3cret"
	g = startGateway(t, cfg)
	n := dialNode(t, ctx, g.Addr().String(), "7")
	if err := n.WaitUp(ctx); err != nil {
		t.Fatal(err)
	}
	if err := g.Send(ctx, "7", "over TLS"); err != nil {
		t.Fatal(err)
	}
	n.expect(t, ctx, "over TLS")
	if err := n.Write(ctx, "back"); err != nil { // published over TLS, acknowledged
		t.Fatal(err)
	}
}

// TestBrokerClientCertRequired: mosquitto requires a client
// certificate that the gateway does not have; its TLS alert fails Start
// at once, with a hint. (With TLS 1.3 the alert comes after the
// client's handshake: the CONNECT may meet a reset connection first.)
func TestBrokerClientCertRequired(t *testing.T) {
	dir := t.TempDir()
	ca, cert, key := makeCerts(t, dir)
	addr := startMosquittoConf(t, "allow_anonymous true\ncafile "+ca+"\ncertfile "+cert+"\nkeyfile "+key+"\nrequire_certificate true\n")
	cfg := gwConfig(t, "mqtts://"+addr)
	cfg.MQTT.TLS.CA = ca
	g, err := newGateway(cfg)
	if err == nil {
		st := g.MQTTStatus()
		g.Close()
		t.Fatalf("the gateway started without the client certificate that the broker requires: %+v", st)
	}
	if !strings.Contains(err.Error(), "mqtt.tls.cert") {
		t.Errorf("client certificate refused: the error does not say what to check: %v", err)
	}
}

// makeCerts writes a CA and a server certificate for 127.0.0.1.
func makeCerts(t *testing.T, dir string) (caFile, certFile, keyFile string) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "tether test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	srvKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	srvTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:    x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	srvDER, err := x509.CreateCertificate(rand.Reader, srvTmpl, caTmpl, &srvKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(srvKey)
	if err != nil {
		t.Fatal(err)
	}
	write := func(name, typ string, der []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	return write("ca.pem", "CERTIFICATE", caDER), write("server.pem", "CERTIFICATE", srvDER), write("server.key", "EC PRIVATE KEY", keyDER)
}
