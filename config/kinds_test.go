package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestKindKeys gives each kind of intake a key of a block it does not
// take: each is refused with the intake's line and name and the kinds that
// take the key, and the same key loads on a kind that takes it.
func TestKindKeys(t *testing.T) {
	for _, tc := range []struct {
		protocol, key, takes, want string
	}{
		{"udp", "tls_key_name: other", "tls", "tls_key_name applies to tls and http intakes only"},
		{"netflow", "tls_client_auth: require", "tls", "tls_client_auth applies to tls and http intakes only"},
		{"tcp", "sockets: 2", "udp", "sockets applies to udp, netflow and sflow intakes only"},
		{"tls", "receive_buffer: 4m", "sflow", "receive_buffer applies to udp, netflow and sflow intakes only"},
		{"udp", "max_connections: 5", "tcp", "max_connections applies to tcp, tls and http intakes only"},
		{"netflow", "max_keys: 5", "http", "max_keys applies to http intakes only"},
		{"sflow", "bind: 127.0.0.1", "http", "bind applies to http intakes only"},
		{"http", "interval: 5s", "stats", "interval applies to stats intakes only"},
		{"http", "workers: 2", "netflow", "workers applies to netflow and sflow intakes only"},
		{"tcp", "exporters: [{address: 192.0.2.1}]", "sflow", "exporters applies to netflow and sflow intakes only"},
		{"stats", "sockets: 2", "udp", "sockets applies to udp, netflow and sflow intakes only"},
	} {
		_, err := Parse([]byte(kindFile(tc.protocol, tc.key)), "k.yaml", kindDir(t), noEnv)
		want := `k.yaml: line 2: intake "K": ` + tc.want
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s on %s: %v, want %q", tc.key, tc.protocol, err, want)
		}
		if _, err := Parse([]byte(kindFile(tc.takes, tc.key)), "k.yaml", kindDir(t), noEnv); err != nil {
			t.Errorf("%s on %s: %v", tc.key, tc.takes, err)
		}
	}
}

// TestKindBlocks checks that after loading an intake holds the blocks of
// its kind, and only those, defaults filled in.
func TestKindBlocks(t *testing.T) {
	for _, tc := range []struct {
		protocol                                 string
		kind                                     Kind
		stream, tls, udp, flow, report, httpKeys bool
	}{
		{"tcp", KindTCP, true, false, false, false, false, false},
		{"UDP", KindUDP, false, false, true, false, false, false},
		{"tls", KindTLS, true, true, false, false, false, false},
		{"netflow", KindNetFlow, false, false, true, true, false, false},
		{"sflow", KindSFlow, false, false, true, true, false, false},
		{"stats", KindStats, false, false, false, false, true, false},
		{"http", KindHTTP, true, true, false, false, false, true},
	} {
		c, err := Parse([]byte(kindFile(tc.protocol, "debug: true")), "k.yaml", kindDir(t), noEnv)
		if err != nil {
			t.Fatalf("%s: %v", tc.protocol, err)
		}
		in := c.Intakes[0]
		got := [6]bool{in.Stream != nil, in.TLS != nil, in.UDP != nil, in.Flow != nil, in.Report != nil, in.HTTP != nil}
		if in.Kind != tc.kind || got != [6]bool{tc.stream, tc.tls, tc.udp, tc.flow, tc.report, tc.httpKeys} {
			t.Errorf("%s: kind %q, blocks %v", tc.protocol, in.Kind, got)
		}
		switch {
		case in.Flow != nil && in.Flow.Format != FormatIPFIX,
			in.Report != nil && in.Report.Interval != defaultStatsInterval,
			in.TLS != nil && in.TLS.ClientAuth != ClientAuthNone:
			t.Errorf("%s: defaults not filled in: %+v", tc.protocol, in)
		}
	}
}

// TestKindMergeKey refuses a key of another kind brought by a merge key
// as if written in the intake.
func TestKindMergeKey(t *testing.T) {
	file := `intakes:
  - <<: {workers: 2}
    name: K
    protocol: tcp
    port: 514
    intake_key: Key0123456789
output: {transport: file, path: "-"}
`
	_, err := Parse([]byte(file), "k.yaml", t.TempDir(), noEnv)
	if err == nil || !strings.Contains(err.Error(), `intake "K": workers applies to netflow and sflow intakes only`) {
		t.Fatalf("%v", err)
	}
}

// TestPlainHTTPClientAuth: an http intake served without TLS cannot ask
// for a client certificate.
func TestPlainHTTPClientAuth(t *testing.T) {
	_, err := Parse([]byte(kindFile("http", "plain_http: true\n    bind: 127.0.0.1\n    tls_client_auth: require")), "k.yaml", kindDir(t), noEnv)
	if err == nil || !strings.Contains(err.Error(), `line 2: intake "K": tls_client_auth applies to tls intakes and http intakes without plain_http only`) {
		t.Fatalf("%v", err)
	}
}

// TestNoKind: an intake without a known protocol is refused whatever
// blocks of keys it holds.
func TestNoKind(t *testing.T) {
	for _, protocol := range []string{"", "bogus"} {
		file := "intakes:\n  - {name: K, protocol: '" + protocol + "', port: 1, bind: 127.0.0.1, plain_http: true, workers: 2}\n"
		_, err := Parse([]byte(file), "k.yaml", t.TempDir(), noEnv)
		if err == nil || !strings.Contains(err.Error(), `line 2: intake "K": `) || !strings.Contains(err.Error(), "protocol") {
			t.Errorf("protocol %q: %v", protocol, err)
		}
	}
}

// kindFile is an intakes.yaml of one intake "K" of the protocol (or a
// stats intake) with the extra key.
func kindFile(protocol, extra string) string {
	head := "    protocol: " + protocol + "\n    port: 9999\n    intake_key: Key0123456789\n"
	switch strings.ToLower(protocol) {
	case "stats":
		head = "    stats: true\n    intake_key: Key0123456789\n"
	case "http":
		head = "    protocol: http\n    port: 9999\n    intake_keys: any\n"
	}
	return "intakes:\n  - name: K\n" + head + "    " + extra + "\noutput: {transport: file, path: \"-\"}\ncerts_dir: certs\n"
}

// kindDir is a folder whose certs hold the default TLS files (server.key,
// server.crt) and other.key, which tls intakes check exist.
func kindDir(t *testing.T) string {
	dir := t.TempDir()
	certs := filepath.Join(dir, "certs")
	if err := os.Mkdir(certs, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"server.key", "server.crt", "other.key"} {
		if err := os.WriteFile(filepath.Join(certs, f), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}
