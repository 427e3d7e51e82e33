package peers

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
	"path/filepath"
	"testing"
	"time"
)

// Certs are TLS files made for a test in Dir, named as the old forwarder
// names them (so Dir can be a certs_dir): ca.crt, server.crt and
// server.key for 127.0.0.1 and localhost, client.crt and client.key for a
// sender, all signed by the CA; other-ca.crt and stranger.crt/.key are a
// second CA and a client it signed, which the first CA does not know.
type Certs struct {
	Dir                                string
	CA, ServerCert, ServerKey          string
	ClientCert, ClientKey              string
	OtherCA, StrangerCert, StrangerKey string
}

// NewCerts makes the files in a temporary folder.
func NewCerts(t testing.TB) *Certs {
	t.Helper()
	dir := t.TempDir()
	c := &Certs{Dir: dir}
	path := func(name string) string { return filepath.Join(dir, name) }
	caKey, caCert := makeCA(t, "flowgate test CA", path("ca.crt"))
	c.CA = path("ca.crt")
	c.ServerCert, c.ServerKey = path("server.crt"), path("server.key")
	makeLeaf(t, caKey, caCert, "localhost", true, c.ServerCert, c.ServerKey)
	c.ClientCert, c.ClientKey = path("client.crt"), path("client.key")
	makeLeaf(t, caKey, caCert, "sender", false, c.ClientCert, c.ClientKey)
	otherKey, otherCert := makeCA(t, "some other CA", path("other-ca.crt"))
	c.OtherCA = path("other-ca.crt")
	c.StrangerCert, c.StrangerKey = path("stranger.crt"), path("stranger.key")
	makeLeaf(t, otherKey, otherCert, "stranger", false, c.StrangerCert, c.StrangerKey)
	return c
}

func template(cn string) *x509.Certificate {
	serial, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	return &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
	}
}

func makeCA(t testing.TB, cn, certPath string) (*ecdsa.PrivateKey, *x509.Certificate) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := template(cn)
	tmpl.IsCA, tmpl.BasicConstraintsValid = true, true
	tmpl.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	writePEM(t, certPath, "CERTIFICATE", der)
	return key, cert
}

func makeLeaf(t testing.TB, caKey *ecdsa.PrivateKey, ca *x509.Certificate, cn string, server bool, certPath, keyPath string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := template(cn)
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	if server {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
		tmpl.DNSNames = []string{"localhost"}
		tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}
	} else {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	writePEM(t, certPath, "CERTIFICATE", der)
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	writePEM(t, keyPath, "PRIVATE KEY", kder)
}

func writePEM(t testing.TB, path, kind string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: kind, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// Renew puts src's contents in place of dst as certbot does: a new file
// renamed over the old one.
func Renew(t testing.TB, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst+".new", b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(dst+".new", dst); err != nil {
		t.Fatal(err)
	}
}

// CertDER is the first certificate of a PEM file.
func CertDER(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		t.Fatalf("%s: no PEM block", path)
	}
	return blk.Bytes
}
