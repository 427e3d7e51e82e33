package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/flowgate/flowgate/appliance"
	"github.com/flowgate/flowgate/config"
	"github.com/flowgate/flowgate/pipeline"
	"github.com/flowgate/flowgate/ship/https"
	"github.com/flowgate/flowgate/ship/relp"
	"github.com/flowgate/flowgate/tlsfiles"
)

// probeStepTimeout bounds each step of a probe.
const probeStepTimeout = 10 * time.Second

// probeTarget is one distinct output (transport, endpoint, files and key)
// and the intakes that ship to it.
type probeTarget struct {
	out     *config.Output
	key     string
	intakes []string
}

// probeOutputs checks every distinct output the way a person would by
// hand with dig, telnet, openssl s_client and curl: the name resolves, a
// TCP connection opens, the TLS handshake verifies, and the intake
// answers. It prints each step and a verdict per intake, and fails when
// any output does.
func probeOutputs(c *config.Config, stdout io.Writer) error {
	var targets []*probeTarget
	byID := map[string]*probeTarget{}
	for _, in := range c.Intakes {
		// Each output of the intake, said by its shipper's name.
		ships := pipeline.OwnShippings(in)
		if len(ships) == 0 {
			ships = []pipeline.Shipping{{Intake: in}}
		}
		for _, sh := range ships {
			id := pipeline.OutputID(sh.Intake)
			t := byID[id]
			if t == nil {
				t = &probeTarget{out: sh.Intake.Output, key: in.IntakeKey}
				byID[id] = t
				targets = append(targets, t)
			}
			t.intakes = append(t.intakes, sh.Intake.Name)
		}
	}
	failed := 0
	for _, t := range targets {
		fmt.Fprintf(stdout, "%s, key %s:\n", appliance.DescribeOutput(t.out), config.MaskKey(t.key))
		err := probeOne(t, stdout)
		verdict := "OK"
		if err != nil {
			failed++
			verdict = "FAILED: " + err.Error()
		}
		for _, name := range t.intakes {
			fmt.Fprintf(stdout, "  intake %q: %s\n", name, verdict)
		}
	}
	if failed > 0 {
		return fmt.Errorf("probe: %d of %d outputs failed", failed, len(targets))
	}
	return nil
}

// probeStep is a named step whose failure stops the probe of an output.
type probeStep struct{ name string }

func (s probeStep) fail(err error) error { return fmt.Errorf("%s: %w", s.name, err) }

// probeOne runs the steps for one output, printing what each found.
func probeOne(t *probeTarget, w io.Writer) error {
	o := t.out
	if o.Transport == config.TransportFile {
		fmt.Fprintln(w, "  nothing to probe: events are written to a file")
		return nil
	}
	host, port, err := pipeline.HostPort(o)
	if err != nil {
		return probeStep{"endpoint"}.fail(err)
	}

	dns := probeStep{"DNS"}
	ctx, cancel := context.WithTimeout(context.Background(), probeStepTimeout)
	addrs, err := net.DefaultResolver.LookupHost(ctx, host)
	cancel()
	if err != nil {
		return dns.fail(err)
	}
	fmt.Fprintf(w, "  DNS: %s is %s\n", host, strings.Join(addrs, ", "))

	tcp := probeStep{"TCP"}
	var conn net.Conn
	var errs []error
	for _, a := range addrs {
		start := time.Now()
		d := net.Dialer{Timeout: probeStepTimeout}
		conn, err = d.Dial("tcp", net.JoinHostPort(a, port))
		if err == nil {
			fmt.Fprintf(w, "  TCP: connected to %s in %s\n", conn.RemoteAddr(), time.Since(start).Round(time.Microsecond))
			break
		}
		errs = append(errs, err)
	}
	if conn == nil {
		return tcp.fail(errors.Join(errs...))
	}
	defer conn.Close()

	handshake := probeStep{"TLS"}
	files, err := tlsfiles.NewClient(host, o.CAFile, o.CertFile, o.KeyFile)
	if err != nil {
		return handshake.fail(err)
	}
	tc := files.Config()
	if o.Transport == config.TransportHTTPS || o.Transport == config.TransportHTTP {
		tc.NextProtos = []string{"http/1.1"}
	}
	tlsConn := tls.Client(conn, tc)
	_ = conn.SetDeadline(time.Now().Add(probeStepTimeout))
	err = tlsConn.Handshake()
	describeCertificate(w, tlsConn, o.CAFile, host, err)
	if err != nil {
		return handshake.fail(err)
	}
	defer tlsConn.Close() // says goodbye (close_notify) before the socket closes

	answer := probeStep{"intake"}
	switch o.Transport {
	case config.TransportHTTPS, config.TransportHTTP:
		_ = conn.SetDeadline(time.Now().Add(probeStepTimeout))
		sent, status, err := https.Probe(tlsConn, o, t.key, "flowgate/"+buildVersion()+" (check --probe)")
		if err != nil {
			return answer.fail(fmt.Errorf("%s: %w", sent, err))
		}
		fmt.Fprintf(w, "  intake: %s answered %s\n", sent, status)
	case config.TransportRELP:
		_ = conn.SetDeadline(time.Now().Add(probeStepTimeout))
		if err := relp.Probe(tlsConn); err != nil {
			return answer.fail(err)
		}
		fmt.Fprintln(w, "  intake: RELP session opened (200 OK) and closed")
	default:
		fmt.Fprintln(w, "  intake: syslog over TLS has no answer to ask for: connected and TLS only")
	}
	return nil
}

// describeCertificate prints what the server presented, and why it is
// not trusted when the handshake failed on it.
func describeCertificate(w io.Writer, c *tls.Conn, caFile, host string, err error) {
	certs := c.ConnectionState().PeerCertificates
	var verr *tls.CertificateVerificationError
	if errors.As(err, &verr) {
		certs = verr.UnverifiedCertificates
	}
	if len(certs) == 0 {
		return
	}
	leaf := certs[0]
	fmt.Fprintf(w, "  TLS: %s, certificate %q issued by %q, valid until %s (%s), for name %s\n",
		tls.VersionName(c.ConnectionState().Version), leaf.Subject.String(), leaf.Issuer.String(),
		leaf.NotAfter.UTC().Format(time.DateOnly), untilExpiry(leaf), host)
	if err == nil {
		roots := "the system roots"
		if caFile != "" {
			roots += " and " + caFile
		}
		fmt.Fprintf(w, "  TLS: verified against %s\n", roots)
	}
}

// untilExpiry says how long a certificate stays valid.
func untilExpiry(c *x509.Certificate) string {
	d := time.Until(c.NotAfter)
	if d < 0 {
		return "expired"
	}
	return strconv.Itoa(int(d.Hours()/24)) + " days left"
}
