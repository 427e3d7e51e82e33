package appliance_test

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/flowgate/flowgate/internal/apptest"
	"github.com/flowgate/flowgate/internal/intaketest"
	"github.com/flowgate/flowgate/internal/peers"
	"github.com/flowgate/flowgate/tlsfiles"
)

// TestRenewedCertificateServedWithoutDroppingConnections renews a tls
// intake's certificate and key while a sender stays connected and keeps
// sending: new handshakes get the new certificate after what SIGHUP does
// (App.Reload), and without a signal within the files' poll; the open
// connection carries on and all it sent arrives once.
func TestRenewedCertificateServedWithoutDroppingConnections(t *testing.T) {
	t.Parallel()
	certs, second, third := peers.NewCerts(t), peers.NewCerts(t), peers.NewCerts(t)
	intake := intaketest.NewHTTPS(t)
	port := apptest.FreePort(t, "tcp")
	a := newApp(t, fmt.Sprintf("intakes:\n  - {name: Secure, protocol: tls, port: %d, intake_key: %s}\ncerts_dir: %s\noutput: %s\n",
		port, tlsKey, certs.Dir, intake.Output()))

	roots := x509.NewCertPool()
	for _, c := range []*peers.Certs{certs, second, third} {
		ca, err := x509.ParseCertificate(peers.CertDER(t, c.CA))
		if err != nil {
			t.Fatal(err)
		}
		roots.AddCert(ca)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	dial := func() (*tls.Conn, error) {
		return tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", addr, &tls.Config{RootCAs: roots, ServerName: "localhost"})
	}
	// served is the certificate a new handshake gets.
	served := func() []byte {
		c, err := dial()
		if err != nil {
			t.Logf("handshake: %v", err)
			return nil
		}
		defer c.Close()
		return c.ConnectionState().PeerCertificates[0].Raw
	}
	servesFile := func(certFile string, timeout time.Duration) bool {
		want := peers.CertDER(t, certFile)
		return apptest.Eventually(timeout, func() bool { return bytes.Equal(served(), want) })
	}
	if !servesFile(certs.ServerCert, 10*time.Second) {
		t.Fatal("the intake does not serve its certificate")
	}

	sender, err := dial()
	if err != nil {
		t.Fatal(err)
	}
	defer sender.Close()
	var sent []string
	send := func(phase string) {
		t.Helper()
		for _, m := range messages(phase, 10) {
			_ = sender.SetWriteDeadline(time.Now().Add(10 * time.Second))
			if _, err := fmt.Fprintf(sender, "<13>1 - fw app - - - %s\n", m); err != nil {
				t.Fatalf("the open connection, %s: %v", phase, err)
			}
			sent = append(sent, m)
		}
	}
	send("before the renewal")

	peers.Renew(t, second.ServerKey, certs.ServerKey)
	peers.Renew(t, second.ServerCert, certs.ServerCert)
	if err := a.Reload(); err != nil {
		t.Fatal(err)
	}
	if !servesFile(second.ServerCert, 10*time.Second) {
		t.Fatal("new handshakes after a reload do not get the renewed certificate")
	}
	send("after the reload")

	// No signal: the poll sees the files change. Both files change in one
	// poll or across two; either way the pair is served within two polls
	// (and the slack a loaded machine needs).
	peers.Renew(t, third.ServerKey, certs.ServerKey)
	peers.Renew(t, third.ServerCert, certs.ServerCert)
	if !servesFile(third.ServerCert, 4*tlsfiles.PollInterval) {
		t.Fatalf("new handshakes do not get the renewed certificate within %s without a signal", 4*tlsfiles.PollInterval)
	}
	send("after the poll")

	seen := map[string]int{}
	for _, e := range intake.WaitEvents(t, len(sent), 60*time.Second) {
		seen[e.Event]++
	}
	for _, m := range sent {
		if seen[m] != 1 {
			t.Errorf("%q arrived %d times", m, seen[m])
		}
	}
	log := a.Stderr.String()
	if n := strings.Count(log, `msg="TLS files renewed: new handshakes use them" intake=Secure subject="CN=localhost" not_after=`); n != 2 {
		t.Errorf("%d renewals logged with the certificate, want 2:\n%s", n, log)
	}
}
