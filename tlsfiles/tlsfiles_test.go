package tlsfiles

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flowgate/flowgate/internal/apptest"
	"github.com/flowgate/flowgate/internal/peers"
)

// echoServer accepts TLS connections with cfg and echoes lines back.
func echoServer(t *testing.T, cfg *tls.Config) string {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_, _ = io.Copy(c, c)
			}()
		}
	}()
	return ln.Addr().String()
}

// echo sends a line on c and waits for it back.
func echo(t *testing.T, c *tls.Conn, r *bufio.Reader, line string) {
	t.Helper()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, line+"\n"); err != nil {
		t.Fatalf("write on the open connection: %v", err)
	}
	got, err := r.ReadString('\n')
	if err != nil || got != line+"\n" {
		t.Fatalf("open connection: read %q, %v; want %q", got, err, line)
	}
}

func newLog() (*slog.Logger, *apptest.SyncBuffer) {
	var out apptest.SyncBuffer
	return slog.New(slog.NewTextHandler(&out, nil)), &out
}

func TestServerServesRenewedCertificateToNewHandshakes(t *testing.T) {
	certs, renewed, broken := peers.NewCerts(t), peers.NewCerts(t), peers.NewCerts(t)
	log, logs := newLog()
	set := NewSet(log)
	srv, err := set.Server("Firewall", certs.ServerCert, certs.ServerKey, certs.CA, false)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	if !strings.Contains(logs.String(), `msg="TLS files loaded" intake=Firewall subject="CN=localhost" not_after=`) {
		t.Fatalf("the start is not logged with the certificate: %s", logs)
	}
	addr := echoServer(t, srv.Config())
	roots := x509.NewCertPool()
	for _, ca := range []string{certs.CA, renewed.CA, broken.CA} {
		roots.AddCert(mustParse(t, peers.CertDER(t, ca)))
	}
	served := func() []byte {
		t.Helper()
		c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: roots, ServerName: "localhost"})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return c.ConnectionState().PeerCertificates[0].Raw
	}
	open, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: roots, ServerName: "localhost"})
	if err != nil {
		t.Fatal(err)
	}
	defer open.Close()
	r := bufio.NewReader(open)
	echo(t, open, r, "before")
	if string(served()) != string(peers.CertDER(t, certs.ServerCert)) {
		t.Fatal("not the configured certificate")
	}

	// Renewed, nothing said: the next poll sees it.
	peers.Renew(t, renewed.ServerKey, certs.ServerKey)
	peers.Renew(t, renewed.ServerCert, certs.ServerCert)
	set.refresh(false)
	if string(served()) != string(peers.CertDER(t, renewed.ServerCert)) {
		t.Fatal("a new handshake after the poll got the old certificate")
	}
	if !strings.Contains(logs.String(), `msg="TLS files renewed: new handshakes use them" intake=Firewall`) {
		t.Fatalf("the renewal is not logged: %s", logs)
	}
	echo(t, open, r, "after the renewal")

	// A certificate that does not go with the key stays out.
	peers.Renew(t, broken.ServerCert, certs.ServerCert)
	set.Reload()
	if !strings.Contains(logs.String(), "renewed TLS files do not load: the previous ones stay in use") ||
		!strings.Contains(logs.String(), "private key does not match public key") {
		t.Fatalf("a mismatched pair is not logged as an error: %s", logs)
	}
	if string(served()) != string(peers.CertDER(t, renewed.ServerCert)) {
		t.Fatal("a file that does not load replaced the certificate in use")
	}
	// Its key comes: the next poll takes the pair.
	peers.Renew(t, broken.ServerKey, certs.ServerKey)
	set.refresh(false)
	if string(served()) != string(peers.CertDER(t, broken.ServerCert)) {
		t.Fatal("the completed pair was not picked up")
	}
	echo(t, open, r, "still open")

	// Closed, it is watched no more.
	srv.Close()
	if len(set.members) != 0 {
		t.Fatalf("%d members after Close", len(set.members))
	}
}

func mustParse(t *testing.T, der []byte) *x509.Certificate {
	t.Helper()
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestServerRequiresClientsOfTheRenewedCA(t *testing.T) {
	certs, other := peers.NewCerts(t), peers.NewCerts(t)
	set := NewSet(slog.New(slog.DiscardHandler))
	srv, err := set.Server("Firewall", certs.ServerCert, certs.ServerKey, certs.CA, true)
	if err != nil {
		t.Fatal(err)
	}
	addr := echoServer(t, srv.Config())
	handshake := func(c *peers.Certs) error {
		cert, err := tls.LoadX509KeyPair(c.ClientCert, c.ClientKey)
		if err != nil {
			t.Fatal(err)
		}
		conn, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true, Certificates: []tls.Certificate{cert}})
		if err != nil {
			return err
		}
		defer conn.Close()
		// TLS 1.3: the server's verdict on the client comes after the
		// client's handshake; a read sees it.
		_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.WriteString(conn, "x\n"); err != nil {
			return err
		}
		_, err = bufio.NewReader(conn).ReadString('\n')
		return err
	}
	if err := handshake(certs); err != nil {
		t.Fatalf("a client of the CA: %v", err)
	}
	if err := handshake(other); err == nil {
		t.Fatal("a client of another CA was accepted")
	}
	peers.Renew(t, other.CA, certs.CA)
	set.Reload()
	if err := handshake(other); err != nil {
		t.Fatalf("a client of the renewed CA: %v", err)
	}
	if err := handshake(certs); err == nil {
		t.Fatal("a client of the replaced CA was still accepted")
	}
}

func TestClientFollowsRenewedCAAndCertificate(t *testing.T) {
	certs, other := peers.NewCerts(t), peers.NewCerts(t)
	dir := t.TempDir()
	ca, cert, key := filepath.Join(dir, "ca.crt"), filepath.Join(dir, "client.crt"), filepath.Join(dir, "client.key")
	peers.Renew(t, certs.CA, ca)
	peers.Renew(t, certs.ClientCert, cert)
	peers.Renew(t, certs.ClientKey, key)
	log, logs := newLog()
	set := NewSet(log)
	client, err := set.Client("syslog 127.0.0.1:10514", "127.0.0.1", ca, cert, key)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	if !strings.Contains(logs.String(), `output="syslog 127.0.0.1:10514" subject="CN=sender"`) ||
		!strings.Contains(logs.String(), `ca="CN=flowgate test CA"`) {
		t.Fatalf("the start is not logged with the certificate and CA: %s", logs)
	}

	// A server that takes any client certificate and says whose it was.
	serverCert, err := tls.LoadX509KeyPair(other.ServerCert, other.ServerKey)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{serverCert}, ClientAuth: tls.RequireAnyClientCert})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				tc := c.(*tls.Conn)
				if tc.Handshake() == nil {
					_, _ = io.WriteString(c, tc.ConnectionState().PeerCertificates[0].Subject.CommonName+"\n")
				}
			}()
		}
	}()
	dial := func() (string, error) {
		c, err := tls.Dial("tcp", ln.Addr().String(), client.Config())
		if err != nil {
			return "", err
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		name, err := bufio.NewReader(c).ReadString('\n')
		return strings.TrimSpace(name), err
	}
	_, err = dial()
	var verr *tls.CertificateVerificationError
	if !errors.As(err, &verr) || len(verr.UnverifiedCertificates) == 0 {
		t.Fatalf("a server of an unknown CA: %v, want a certificate verification error", err)
	}
	peers.Renew(t, other.CA, ca)
	peers.Renew(t, other.StrangerCert, cert)
	peers.Renew(t, other.StrangerKey, key)
	set.refresh(false)
	if name, err := dial(); err != nil || name != "stranger" {
		t.Fatalf("after the renewal: %q, %v; want the server trusted and the renewed certificate presented", name, err)
	}

	// The name is checked as crypto/tls checks it.
	wrong, err := NewClient("flowgate.example", ca, "", "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tls.Dial("tcp", ln.Addr().String(), wrong.Config()); err == nil || !strings.Contains(err.Error(), "flowgate.example") {
		t.Fatalf("a certificate for another name: %v, want refused", err)
	}
}
