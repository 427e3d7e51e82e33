package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const key = "TestIntakeKey0123456789"

func envMap(vars map[string]string) Env {
	return func(k string) (string, bool) { v, ok := vars[k]; return v, ok }
}

// load parses a file whose intakes list is given, in a folder holding a
// certs/ directory with server.key, server.crt and ca.crt.
func load(t *testing.T, yaml string, vars map[string]string) (*Config, string, error) {
	t.Helper()
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "certs"), 0o700); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"server.key", "server.crt", "ca.crt", "other.key"} {
		if err := os.WriteFile(filepath.Join(dir, "certs", f), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	yaml = strings.ReplaceAll(yaml, "KEY", key)
	yaml = strings.ReplaceAll(yaml, "DIR", dir)
	c, err := Parse([]byte(yaml), "intakes.yaml", dir, envMap(vars))
	return c, dir, err
}

func TestOutputs(t *testing.T) {
	for _, tc := range []struct {
		name string
		yaml string
		env  map[string]string
		// want is each intake's transport and endpoint (or path).
		want []string
	}{
		{"old file: logs over syslog, flows over https, FRA1", `
intakes:
  - {name: fw, protocol: tcp, port: 20516, intake_key: KEY}
  - {name: routers, protocol: netflow, port: 2055, intake_key: KEY}
`, nil, []string{"syslog intake.sekoia.io:10514", "https https://intake.sekoia.io"}},
		{"RELP_OUTPUT makes logs go over relp", `
intakes:
  - {name: fw, protocol: udp, port: 514, intake_key: KEY}
  - {name: routers, protocol: netflow, port: 2055, intake_key: KEY}
`, map[string]string{"RELP_OUTPUT": "1", "REGION": "fra2"}, []string{"relp intake.fra2.sekoia.io:11514", "https https://intake.fra2.sekoia.io/api/v1/intake-http"}},
		{"top-level transport applies to all", `
intakes:
  - {name: fw, protocol: tls, port: 6514, intake_key: KEY}
  - {name: routers, protocol: netflow, port: 2055, intake_key: KEY}
certs_dir: certs
output: {transport: relp}
`, map[string]string{"REGION": "USA1"}, []string{"relp intake.usa1.sekoia.io:11514", "relp intake.usa1.sekoia.io:11514"}},
		{"per-intake block replaces the top-level one", `
intakes:
  - name: fw
    protocol: tcp
    port: 20516
    intake_key: KEY
    output: {transport: relp, endpoint: relp.example.net}
  - {name: routers, protocol: netflow, port: 2055, intake_key: KEY}
output: {transport: https, endpoint: "https://intake.example.net"}
`, nil, []string{"relp relp.example.net:11514", "https https://intake.example.net"}},
		{"per-intake file output", `
intakes:
  - {name: fw, protocol: tcp, port: 20516, intake_key: KEY, output: {transport: file, path: out.jsonl}}
`, nil, []string{"file DIR/out.jsonl"}},
		{"OTHER endpoint URL serves syslog too", `
intakes:
  - {name: fw, protocol: tcp, port: 20516, intake_key: KEY}
  - {name: routers, protocol: netflow, port: 2055, intake_key: KEY}
`, map[string]string{"REGION": "OTHER", "ENDPOINT": "https://intake.example.net"}, []string{"syslog intake.example.net:10514", "https https://intake.example.net"}},
		{"explicit syslog port kept", `
intakes:
  - {name: fw, protocol: tcp, port: 20516, intake_key: KEY, output: {transport: syslog, endpoint: "[::1]:6514"}}
`, nil, []string{"syslog [::1]:6514"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, dir, err := load(t, tc.yaml, tc.env)
			if err != nil {
				t.Fatal(err)
			}
			for i, in := range c.Intakes {
				where := in.Output.Endpoint
				if in.Output.Transport == TransportFile {
					where = in.Output.Path
				}
				got := in.Output.Transport + " " + where
				if want := strings.ReplaceAll(tc.want[i], "DIR", dir); got != want {
					t.Errorf("intake %s: output %q, want %q", in.Name, got, want)
				}
			}
		})
	}
}

func TestTLSFiles(t *testing.T) {
	c, dir, err := load(t, `
intakes:
  - {name: a, protocol: tls, port: 6514, intake_key: KEY}
  - {name: b, protocol: tls, port: 6515, intake_key: KEY, tls_key_name: other, tls_cert_name: DIR/certs/server.crt, tls_ca_name: ca, tls_client_auth: require}
certs_dir: certs
`, nil)
	if err != nil {
		t.Fatal(err)
	}
	certs := filepath.Join(dir, "certs")
	for i, want := range [][4]string{
		{certs + "/server.key", certs + "/server.crt", certs + "/server.crt", ClientAuthNone},
		{certs + "/other.key", certs + "/server.crt", certs + "/ca.crt", ClientAuthRequire},
	} {
		in := c.Intakes[i]
		if got := [4]string{in.TLS.KeyFile, in.TLS.CertFile, in.TLS.CAFile, in.TLS.ClientAuth}; got != want {
			t.Errorf("intake %s: %q, want %q", in.Name, got, want)
		}
	}
}

func TestErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		yaml string
		env  map[string]string
		want string
	}{
		{"missing certificate names the line", `
intakes:
  - {name: a, protocol: tls, port: 6514, intake_key: KEY}
`, nil, `line 3: intake "a": tls_key_name: stat /certs/server.key`},
		{"client auth needs the CA", `
intakes:
  - {name: a, protocol: tls, port: 6514, intake_key: KEY, tls_ca_name: nope, tls_client_auth: require}
certs_dir: certs
`, nil, `line 3: intake "a": tls_ca_name: stat DIR/certs/nope.crt`},
		{"unknown client auth", `
intakes:
  - {name: a, protocol: tls, port: 6514, intake_key: KEY, tls_client_auth: maybe}
certs_dir: certs
`, nil, `tls_client_auth "maybe" is not none or require`},
		{"client auth on tcp", `
intakes:
  - {name: a, protocol: tcp, port: 6514, intake_key: KEY, tls_client_auth: require}
`, nil, `line 3: intake "a": tls_client_auth applies to tls and http intakes only`},
		{"max_connections on udp", `
intakes:
  - {name: a, protocol: udp, port: 514, intake_key: KEY, max_connections: 3}
`, nil, `max_connections applies to tcp, tls and http intakes only`},
		{"https URL as syslog endpoint", `
intakes:
  - name: a
    protocol: tcp
    port: 514
    intake_key: KEY
    output: {transport: syslog, endpoint: "https://x.example.net/path"}
`, nil, `line 3: intake "a" ships to syslog: output.endpoint: "https://x.example.net/path": expected host:port`},
		{"unknown transport in an intake block", `
intakes:
  - {name: a, protocol: tcp, port: 514, intake_key: KEY, output: {transport: kafka}}
`, nil, `output.transport: unknown transport "kafka"`},
		{"unknown key in an intake block", `
intakes:
  - {name: a, protocol: tcp, port: 514, intake_key: KEY, output: {transprot: relp}}
`, nil, `line 3: unknown key "transprot" in output of intake "a" (did you mean "transport"?)`},
		{"client certificate without its key", `
intakes:
  - {name: a, protocol: tcp, port: 514, intake_key: KEY, output: {transport: relp, cert_file: certs/server.crt}}
`, nil, `output.cert_file and output.key_file go together`},
		{"bad port in endpoint", `
intakes:
  - {name: a, protocol: tcp, port: 514, intake_key: KEY, output: {transport: relp, endpoint: "h:99999"}}
`, nil, `port "99999" is not between 1 and 65535`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, dir, err := load(t, tc.yaml, tc.env)
			want := strings.ReplaceAll(tc.want, "DIR", dir)
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Fatalf("error %v, want one containing %q", err, want)
			}
		})
	}
}

// TestTopLevelErrorSaidOnce: a bad top-level output shared by many
// intakes is reported once.
func TestTopLevelErrorSaidOnce(t *testing.T) {
	_, _, err := load(t, `
intakes:
  - {name: a, protocol: tcp, port: 514, intake_key: KEY}
  - {name: b, protocol: tcp, port: 515, intake_key: KEY}
output: {transport: syslog, endpoint: "a b"}
`, nil)
	if err == nil || strings.Count(err.Error(), "output.endpoint") != 1 {
		t.Fatalf("error %v, want output.endpoint once", err)
	}
}
