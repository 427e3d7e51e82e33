// Package tlsfiles loads TLS configurations from certificate, key and CA
// files and keeps them current: a renewed file takes effect for the next
// handshakes on Reload (SIGHUP) or by itself within PollInterval, and open
// connections are left alone.
package tlsfiles

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// PollInterval is how often Run looks at the files. A poll of size, mtime
// and inode (through symlinks) sees atomic renames and symlink swaps
// (certbot, cert-manager) that a watch on the file would miss.
const PollInterval = 5 * time.Second

// Set is the TLS files in use, watched together.
type Set struct {
	log *slog.Logger
	// mu guards members and serialises their reloads.
	mu      sync.Mutex
	members map[*member]struct{}
}

// NewSet returns an empty set that logs what its members serve.
func NewSet(log *slog.Logger) *Set {
	return &Set{log: log, members: map[*member]struct{}{}}
}

// Reload reads every member's files again, as on SIGHUP.
func (s *Set) Reload() { s.refresh(true) }

// Run reloads the members whose files changed, every PollInterval, until
// ctx ends.
func (s *Set) Run(ctx context.Context) error {
	tick := time.NewTicker(PollInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
			s.refresh(false)
		}
	}
}

func (s *Set) refresh(force bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for m := range s.members {
		m.refresh(s.log, force)
	}
}

// add watches m; a nil set watches nothing.
func (s *Set) add(m *member) {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	m.set = s
	s.members[m] = struct{}{}
}

// member is one user's files, and how to load them into its config.
type member struct {
	set *Set
	// who names the user in logs: an intake or an output.
	who   slog.Attr
	paths []string
	// stamps are the paths' as last read; load reads them and swaps in
	// a new config, and says what is now in use.
	stamps []stamp
	load   func() (served, error)
	// served is what the config in use was loaded from.
	served served
}

// stamp tells a file's versions apart without reading it.
type stamp struct {
	size     int64
	mtime    int64 // Unix ns
	ino, dev uint64
	missing  bool
}

func stampOf(path string) stamp {
	fi, err := os.Stat(path)
	if err != nil {
		return stamp{missing: true}
	}
	st := stamp{size: fi.Size(), mtime: fi.ModTime().UnixNano()}
	if sys, ok := fi.Sys().(*syscall.Stat_t); ok {
		st.ino, st.dev = uint64(sys.Ino), uint64(sys.Dev) // their types vary by platform
	}
	return st
}

func (m *member) stampNow() []stamp {
	st := make([]stamp, len(m.paths))
	for i, p := range m.paths {
		st[i] = stampOf(p)
	}
	return st
}

// start loads the files the first time; an error is the caller's.
func (m *member) start(log *slog.Logger) error {
	m.stamps = m.stampNow()
	sv, err := m.load()
	if err != nil {
		return err
	}
	m.served = sv
	if log != nil {
		log.Info("TLS files loaded", append([]any{m.who}, sv.attrs()...)...)
	}
	return nil
}

// refresh reloads the files if they changed (or if force); a file that
// does not load is logged and the config in use stays.
func (m *member) refresh(log *slog.Logger, force bool) {
	stamps := m.stampNow()
	if !force && slices.Equal(stamps, m.stamps) {
		return
	}
	// Stamped before reading: a file written meanwhile is read again at the
	// next poll.
	m.stamps = stamps
	sv, err := m.load()
	if err != nil {
		log.Error("renewed TLS files do not load: the previous ones stay in use", m.who, "err", err)
		return
	}
	if sv.sum == m.served.sum {
		return
	}
	m.served = sv
	log.Info("TLS files renewed: new handshakes use them", append([]any{m.who}, sv.attrs()...)...)
}

// close stops watching.
func (m *member) close() {
	if m.set == nil {
		return
	}
	m.set.mu.Lock()
	defer m.set.mu.Unlock()
	delete(m.set.members, m)
}

// served describes a loaded configuration for the log: its certificate and
// its CA, and a digest of all it was loaded from.
type served struct {
	cert *x509.Certificate
	cas  []*x509.Certificate
	sum  [sha256.Size]byte
}

func (sv served) attrs() []any {
	var a []any
	if sv.cert != nil {
		a = append(a, "subject", sv.cert.Subject.String(), "not_after", sv.cert.NotAfter.UTC().Format(time.RFC3339))
	}
	if len(sv.cas) > 0 {
		names := make([]string, len(sv.cas))
		for i, c := range sv.cas {
			names[i] = c.Subject.String()
		}
		a = append(a, "ca", strings.Join(names, "; "))
	}
	return a
}

// files reads the named files and returns their contents and a digest of
// all of them.
func files(paths ...string) ([][]byte, [sha256.Size]byte, error) {
	h := sha256.New()
	out := make([][]byte, len(paths))
	for i, p := range paths {
		if p == "" {
			continue
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, [sha256.Size]byte{}, err
		}
		out[i] = b
		h.Write(b)
	}
	var sum [sha256.Size]byte
	h.Sum(sum[:0])
	return out, sum, nil
}

// keyPair parses a certificate (chain) and its key.
func keyPair(certPEM, keyPEM []byte, certFile, keyFile string) (tls.Certificate, error) {
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return cert, fmt.Errorf("TLS key %s and certificate %s: %w", keyFile, certFile, err)
	}
	return cert, nil
}

// parseCA reads the certificates of a PEM CA file.
func parseCA(data []byte, caFile string) ([]*x509.Certificate, error) {
	var cas []*x509.Certificate
	for rest := data; ; {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("TLS CA %s: %w", caFile, err)
		}
		cas = append(cas, c)
	}
	if len(cas) == 0 {
		return nil, fmt.Errorf("TLS CA %s: no PEM certificate in it", caFile)
	}
	return cas, nil
}

// Server is a server's TLS files: its certificate and key, and the CA its
// clients' certificates must chain to when it requires one.
type Server struct {
	m   member
	cur atomic.Pointer[tls.Config]
}

// NewServer loads a server's files once, without watching them.
func NewServer(certFile, keyFile, caFile string, requireClient bool) (*Server, error) {
	return (*Set)(nil).Server("", certFile, keyFile, caFile, requireClient)
}

// Server loads the files of the tls intake named intake and watches them.
// The error of a first load that fails is returned.
func (s *Set) Server(intake, certFile, keyFile, caFile string, requireClient bool) (*Server, error) {
	srv := &Server{m: member{who: slog.String("intake", intake), paths: []string{certFile, keyFile}}}
	if requireClient {
		srv.m.paths = append(srv.m.paths, caFile)
	}
	srv.m.load = func() (served, error) {
		cfg, sv, err := serverConfig(certFile, keyFile, caFile, requireClient)
		if err != nil {
			return sv, err
		}
		srv.cur.Store(cfg)
		return sv, nil
	}
	if err := srv.m.start(s.logger()); err != nil {
		return nil, err
	}
	s.add(&srv.m)
	return srv, nil
}

func (s *Set) logger() *slog.Logger {
	if s == nil {
		return nil
	}
	return s.log
}

// serverConfig is what a handshake gets: TLS 1.2 at least, the client's
// certificate required and checked against the CA when requireClient.
func serverConfig(certFile, keyFile, caFile string, requireClient bool) (*tls.Config, served, error) {
	paths := []string{certFile, keyFile}
	if requireClient {
		paths = append(paths, caFile)
	}
	data, sum, err := files(paths...)
	if err != nil {
		return nil, served{}, fmt.Errorf("TLS files: %w", err)
	}
	cert, err := keyPair(data[0], data[1], certFile, keyFile)
	if err != nil {
		return nil, served{}, err
	}
	sv := served{cert: cert.Leaf, sum: sum}
	cfg := &tls.Config{
		Certificates: []tls.Certificate{cert},
		MinVersion:   tls.VersionTLS12,
		// No TLS 1.3 session tickets after the handshake: a client that
		// closes without reading the tickets would reset the connection and
		// lose what it sent.
		SessionTicketsDisabled: true,
	}
	if requireClient {
		sv.cas, err = parseCA(data[2], caFile)
		if err != nil {
			return nil, served{}, err
		}
		pool := x509.NewCertPool()
		for _, c := range sv.cas {
			pool.AddCert(c)
		}
		cfg.ClientCAs = pool
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return cfg, sv, nil
}

// Config is the configuration to listen with: each handshake gets the
// files loaded last.
func (srv *Server) Config() *tls.Config {
	return &tls.Config{
		MinVersion:             tls.VersionTLS12,
		SessionTicketsDisabled: true,
		GetConfigForClient:     func(*tls.ClientHelloInfo) (*tls.Config, error) { return srv.cur.Load(), nil },
	}
}

// Close stops watching the files.
func (srv *Server) Close() {
	if srv != nil {
		srv.m.close()
	}
}

// Client is a client's TLS files: the CA to trust besides the system
// roots, and the certificate and key to present, for receivers that
// require one (Sekoia's intake does not).
type Client struct {
	m          member
	serverName string
	cur        atomic.Pointer[clientFiles]
}

// clientFiles is what the client's files hold, loaded together.
type clientFiles struct {
	roots *x509.CertPool
	cert  *tls.Certificate
}

// NewClient loads a client's files once, without watching them.
func NewClient(serverName, caFile, certFile, keyFile string) (*Client, error) {
	return (*Set)(nil).Client("", serverName, caFile, certFile, keyFile)
}

// Client loads the files of the output named output, which connects to
// serverName (a host name or address), and watches them. Empty names are
// files not used. The error of a first load that fails is returned.
func (s *Set) Client(output, serverName, caFile, certFile, keyFile string) (*Client, error) {
	c := &Client{m: member{who: slog.String("output", output)}, serverName: serverName}
	if (certFile == "") != (keyFile == "") {
		return nil, errors.New("client certificate: cert_file and key_file go together")
	}
	for _, p := range []string{caFile, certFile, keyFile} {
		if p != "" {
			c.m.paths = append(c.m.paths, p)
		}
	}
	c.m.load = func() (served, error) {
		data, sum, err := files(caFile, certFile, keyFile)
		if err != nil {
			return served{}, fmt.Errorf("TLS files: %w", err)
		}
		sv := served{sum: sum}
		roots, err := x509.SystemCertPool()
		if err != nil {
			roots = x509.NewCertPool()
		}
		cf := &clientFiles{roots: roots}
		if caFile != "" {
			if sv.cas, err = parseCA(data[0], caFile); err != nil {
				return served{}, err
			}
			for _, ca := range sv.cas {
				roots.AddCert(ca)
			}
		}
		if certFile != "" {
			cert, err := keyPair(data[1], data[2], certFile, keyFile)
			if err != nil {
				return served{}, fmt.Errorf("client certificate: %w", err)
			}
			cf.cert, sv.cert = &cert, cert.Leaf
		}
		c.cur.Store(cf)
		return sv, nil
	}
	if len(c.m.paths) == 0 {
		// Nothing to watch or log: the system roots only.
		if _, err := c.m.load(); err != nil {
			return nil, err
		}
		return c, nil
	}
	if err := c.m.start(s.logger()); err != nil {
		return nil, err
	}
	s.add(&c.m)
	return c, nil
}

// Config is the configuration to connect with: TLS 1.2 at least, the
// server's chain verified for serverName against the roots loaded last,
// and the certificate loaded last presented when asked for.
func (c *Client) Config() *tls.Config {
	return &tls.Config{
		ServerName: c.serverName,
		MinVersion: tls.VersionTLS12,
		// Verification is not skipped: verify does it, against the roots
		// loaded last, which a fixed RootCAs could not follow.
		InsecureSkipVerify: true,
		VerifyConnection:   c.verify,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			if cert := c.cur.Load().cert; cert != nil {
				return cert, nil
			}
			return &tls.Certificate{}, nil
		},
	}
}

// verify does what crypto/tls does with RootCAs and ServerName, and fails
// the same way.
func (c *Client) verify(cs tls.ConnectionState) error {
	if len(cs.PeerCertificates) == 0 {
		return errors.New("tls: the server sent no certificate")
	}
	opts := x509.VerifyOptions{Roots: c.cur.Load().roots, DNSName: c.serverName, Intermediates: x509.NewCertPool()}
	for _, ic := range cs.PeerCertificates[1:] {
		opts.Intermediates.AddCert(ic)
	}
	if _, err := cs.PeerCertificates[0].Verify(opts); err != nil {
		return &tls.CertificateVerificationError{UnverifiedCertificates: cs.PeerCertificates, Err: err}
	}
	return nil
}

// Close stops watching the files.
func (c *Client) Close() {
	if c != nil {
		c.m.close()
	}
}
