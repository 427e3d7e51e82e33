// Command loggen is the benchmarks' syslog load generator: RFC 5424
// messages over several TCP connections, octet-counted (RFC 6587) or one
// per line, at a paced rate, each carrying a countable identity. It prints
// what it sent as one JSON line on stdout.
//
//	loggen -target 127.0.0.1:20516 -conns 4 -rate 50000 -duration 30s -run 1
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/flowgate/flowgate/benchmarks/internal/load"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "loggen:", err)
		os.Exit(1)
	}
}

func run() error {
	target := flag.String("target", "127.0.0.1:20516", "syslog receiver address (loopback only)")
	conns := flag.Int("conns", 4, "TCP connections sending at once")
	rate := flag.Float64("rate", 10_000, "messages per second over all connections")
	duration := flag.Duration("duration", 10*time.Second, "how long to send")
	runID := flag.Uint("run", 1, "run number carried by every message (0-65535)")
	size := flag.Int("size", 250, "bytes per message, about")
	framing := flag.String("framing", load.OctetCounting, "octet (octet-counting) or lf (one message a line)")
	caFile := flag.String("tls-ca", "", "send over TLS, trusting this CA (PEM)")
	flag.Parse()

	host, _, err := net.SplitHostPort(*target)
	if err != nil {
		return fmt.Errorf("-target: %w", err)
	}
	if a, err := netip.ParseAddr(host); err != nil || !a.IsLoopback() {
		return fmt.Errorf("-target %s: only loopback addresses are allowed", *target)
	}
	if *runID > 0xffff {
		return fmt.Errorf("-run must be below 65536")
	}
	var tlsConfig *tls.Config
	if *caFile != "" {
		pem, err := os.ReadFile(*caFile)
		if err != nil {
			return fmt.Errorf("-tls-ca: %w", err)
		}
		roots := x509.NewCertPool()
		if !roots.AppendCertsFromPEM(pem) {
			return fmt.Errorf("-tls-ca %s: no certificate in it", *caFile)
		}
		tlsConfig = &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	sum, err := load.Syslog(ctx, load.SyslogConfig{Target: *target, Conns: *conns, Rate: *rate, Duration: *duration,
		Run: uint16(*runID), Size: *size, Framing: *framing, TLS: tlsConfig})
	if err != nil {
		return err
	}
	return json.NewEncoder(os.Stdout).Encode(sum)
}
