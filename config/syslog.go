package config

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Stream is the block of keys of the intakes that take connections (tcp,
// tls, http).
type Stream struct {
	// MaxConnections bounds the open connections; 0 is the default.
	MaxConnections int `yaml:"max_connections"`
}

// TLS is the block of keys of the intakes that serve TLS (tls, and http
// without plain_http). The files are under the certs directory, as in the
// old forwarder: a name means <certs_dir>/<name>.key or .crt, an absolute
// path is used as given.
type TLS struct {
	KeyName  string `yaml:"tls_key_name"`
	CertName string `yaml:"tls_cert_name"`
	CAName   string `yaml:"tls_ca_name"`
	// ClientAuth is "require" to accept only senders with a certificate
	// signed by the CA file; "none" (the default) does not ask for one.
	ClientAuth string `yaml:"tls_client_auth"`

	// KeyFile, CertFile and CAFile are the files' paths.
	KeyFile  string `yaml:"-"`
	CertFile string `yaml:"-"`
	CAFile   string `yaml:"-"`
}

// Client certificate policies of tls intakes.
const (
	ClientAuthNone    = "none"
	ClientAuthRequire = "require"
)

const defaultTLSName = "server"

// RequireClientCert says whether senders must show a certificate.
func (t *TLS) RequireClientCert() bool { return t.ClientAuth == ClientAuthRequire }

// resolve fills in the default names and the files' paths.
func (t *TLS) resolve(certsDir string) {
	t.ClientAuth = strings.ToLower(strings.TrimSpace(t.ClientAuth))
	for _, name := range []*string{&t.KeyName, &t.CertName, &t.CAName} {
		if *name == "" {
			*name = defaultTLSName
		}
	}
	t.KeyFile = certFile(certsDir, t.KeyName, ".key")
	t.CertFile = certFile(certsDir, t.CertName, ".crt")
	t.CAFile = certFile(certsDir, t.CAName, ".crt")
	if t.ClientAuth == "" {
		t.ClientAuth = ClientAuthNone
	}
}

// certFile is the old forwarder's naming: a name is <dir>/<name><ext>, an
// absolute path is used as given.
func certFile(dir, name, ext string) string {
	if filepath.IsAbs(name) {
		return name
	}
	return filepath.Join(dir, name+ext)
}

// validate checks the policy and that the files exist.
func (t *TLS) validate(where string) []error {
	var errs []error
	files := []struct{ key, path string }{{"tls_key_name", t.KeyFile}, {"tls_cert_name", t.CertFile}}
	switch t.ClientAuth {
	case ClientAuthNone:
	case ClientAuthRequire:
		files = append(files, struct{ key, path string }{"tls_ca_name", t.CAFile})
	default:
		errs = append(errs, fmt.Errorf("%s: tls_client_auth %q is not none or require", where, t.ClientAuth))
	}
	for _, f := range files {
		if _, err := os.Stat(f.path); err != nil {
			errs = append(errs, fmt.Errorf("%s: %s: %w (set certs_dir, or give an absolute path)", where, f.key, err))
		}
	}
	return errs
}

func (s *Stream) validate(where string) []error {
	if s.MaxConnections < 0 {
		return []error{fmt.Errorf("%s: max_connections must not be negative", where)}
	}
	return nil
}

// validateSyslog checks the blocks of a tcp, udp or tls intake.
func (in *Intake) validateSyslog(where string) []error {
	var errs []error
	if in.Stream != nil {
		errs = append(errs, in.Stream.validate(where)...)
	}
	if in.TLS != nil {
		errs = append(errs, in.TLS.validate(where)...)
	}
	if in.UDP != nil {
		errs = append(errs, in.UDP.validate(where)...)
	}
	return errs
}
