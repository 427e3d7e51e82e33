package config

import (
	"path/filepath"
	"strings"
	"testing"
)

func TestHTTPIntake(t *testing.T) {
	c, dir, err := load(t, `
intakes:
  - {name: tls, protocol: http, port: 8443, intake_keys: [KEY, OtherKey0123456789]}
  - {name: local, protocol: http, port: 8080, bind: 127.0.0.1, plain_http: true, intake_keys: any}
  - {name: lan, protocol: http, port: 8081, bind: 10.0.0.1, plain_http: true, insecure_plain_http: true, intake_keys: any, max_keys: 5}
certs_dir: certs
`, nil)
	if err != nil {
		t.Fatal(err)
	}
	tls, local, lan := c.Intakes[0], c.Intakes[1], c.Intakes[2]
	if tls.TLS.CertFile != filepath.Join(dir, "certs", "server.crt") || tls.HTTP.IntakeKeys.Any || len(tls.HTTP.IntakeKeys.Keys) != 2 {
		t.Errorf("tls intake: %+v", tls)
	}
	if tls.ListenAddr() != ":8443" || local.ListenAddr() != "127.0.0.1:8080" {
		t.Errorf("listen on %q and %q", tls.ListenAddr(), local.ListenAddr())
	}
	if !local.HTTP.IntakeKeys.Any || local.HTTP.MaxKeys != DefaultMaxKeys || local.TLS != nil || lan.HTTP.MaxKeys != 5 {
		t.Errorf("any intakes: %+v, %+v", local, lan)
	}
	if got := tls.MaskedKeys(); got != "Test*****************89,Othe************89" || strings.Contains(got, key) {
		t.Errorf("keys shown as %q", got)
	}
	if got := local.MaskedKeys(); got != "any (at most 100)" {
		t.Errorf("any shown as %q", got)
	}
}

func TestHTTPIntakeRefusals(t *testing.T) {
	for _, c := range []struct{ yaml, want string }{
		{`{name: a, protocol: http, port: 80, intake_key: KEY}`, "takes intake_keys"},
		{`{name: a, protocol: http, port: 80}`, "intake_keys is missing"},
		{`{name: a, protocol: http, port: 80, intake_keys: all}`, "a list of keys or any"},
		{`{name: a, protocol: http, port: 80, intake_keys: [KEY, KEY]}`, "given twice"},
		{`{name: a, protocol: http, port: 80, intake_keys: [short]}`, "malformed"},
		{`{name: a, protocol: http, port: 80, intake_keys: [KEY], max_keys: 3}`, "max_keys applies to intake_keys: any"},
		{`{name: a, protocol: http, port: 80, intake_keys: [KEY], plain_http: true}`, "bind it to a loopback address"},
		{`{name: a, protocol: http, port: 80, intake_keys: [KEY], bind: 0.0.0.0, plain_http: true}`, "bind it to a loopback address"},
		{`{name: a, protocol: http, port: 80, intake_keys: [KEY], bind: localhost}`, "not an IP address"},
		{`{name: a, protocol: http, port: 80, intake_keys: [KEY], insecure_plain_http: true}`, "goes with plain_http"},
		{`{name: a, protocol: http, port: 80, intake_keys: [KEY], routes: [{name: r, match: {hostname: x}, intake_key: KEY}]}`, "routes do not apply"},
		{`{name: a, protocol: tcp, port: 80, intake_key: KEY, intake_keys: [KEY]}`, `line 2: intake "a": intake_keys applies to http intakes only`},
		{`{name: a, protocol: tcp, port: 80, intake_key: KEY, bind: 127.0.0.1}`, `line 2: intake "a": bind applies to http intakes only`},
	} {
		_, _, err := load(t, "intakes:\n  - "+c.yaml+"\ncerts_dir: certs\n", nil)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want %q", c.yaml, err, c.want)
		}
		if err != nil && strings.Contains(err.Error(), key) {
			t.Errorf("%s: the error shows the key: %v", c.yaml, err)
		}
	}
}
