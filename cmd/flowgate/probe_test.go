package main

import (
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/flowgate/flowgate/config"
	"github.com/flowgate/flowgate/internal/apptest"
	"github.com/flowgate/flowgate/internal/intaketest"
	"github.com/flowgate/flowgate/internal/peers"
)

// TestProbeGivesAVerdictPerIntake probes outputs that work (the local
// HTTPS intake, a Loggly-like bulk endpoint, rsyslog over RELP and
// syslog-TLS) and outputs that do not (a CA nobody gave, nothing
// listening, a name that does not resolve, a token Loggly refuses):
// each intake gets its verdict with the step that failed, and the command
// fails.
func TestProbeGivesAVerdictPerIntake(t *testing.T) {
	t.Parallel()
	intake := intaketest.NewHTTPS(t)
	loggly, othersLoggly := intaketest.NewLoggly(t, testKey), intaketest.NewLoggly(t, "SomeoneElsesToken0123")
	certs := peers.NewCerts(t)
	tlsPort, relpPort := apptest.FreePort(t, "tcp"), apptest.FreePort(t, "tcp")
	receiver := peers.RsyslogReceiver(t, certs, tlsPort, relpPort)
	closed := apptest.FreePort(t, "tcp")
	intakeBlock := func(name, output string) string {
		return fmt.Sprintf("  - name: %s\n    protocol: tcp\n    port: %d\n    intake_key: %s\n    output: %s\n",
			name, apptest.FreePort(t, "tcp"), testKey, output)
	}
	cfg := "intakes:\n" +
		intakeBlock("Https", fmt.Sprintf("{transport: https, endpoint: %q, ca_file: %q}", intake.URL, intake.CAFile)) +
		intakeBlock("Relp", fmt.Sprintf("{transport: relp, endpoint: '127.0.0.1:%d', ca_file: %q, cert_file: %q, key_file: %q}", relpPort, certs.CA, certs.ClientCert, certs.ClientKey)) +
		intakeBlock("Syslog", fmt.Sprintf("{transport: syslog, endpoint: 'localhost:%d', ca_file: %q}", tlsPort, certs.CA)) +
		intakeBlock("UnknownCA", fmt.Sprintf("{transport: https, endpoint: %q}", intake.URL)) +
		intakeBlock("Closed", fmt.Sprintf("{transport: https, endpoint: 'https://127.0.0.1:%d', ca_file: %q}", closed, intake.CAFile)) +
		intakeBlock("NoSuchName", fmt.Sprintf("{transport: relp, endpoint: 'intake.flowgate.invalid:11514', ca_file: %q}", certs.CA)) +
		intakeBlock("Loggly", loggly.Output()) +
		intakeBlock("LogglyWrongToken", othersLoggly.Output()) +
		// Two outputs: the first shares the Loggly intake's, the other is
		// a file.
		fmt.Sprintf("  - name: Both\n    protocol: tcp\n    port: %d\n    intake_key: %s\n    outputs:\n      - %s\n      - {name: archive, transport: file, path: %q}\n",
			apptest.FreePort(t, "tcp"), testKey, loggly.Output(), filepath.Join(t.TempDir(), "both.jsonl"))
	code, out, errOut := runCLI("check", "--probe", "--config", writeConfig(t, cfg))
	t.Logf("probe said:\n%s%s", out, errOut)
	if code != 1 || !strings.Contains(errOut, "probe: 4 of 9 outputs failed") {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	for name, want := range map[string]string{
		"Https":      `OK`,
		"Relp":       `OK`,
		"Syslog":     `OK`,
		"UnknownCA":  `FAILED: TLS: tls: failed to verify certificate: x509: certificate signed by unknown authority`,
		"Closed":     `FAILED: TCP: dial tcp 127.0.0.1:\d+: connect: connection refused`,
		"NoSuchName": `FAILED: DNS: lookup intake.flowgate.invalid.*`,
		"Loggly":     `OK`,
		"LogglyWrongToken": `FAILED: intake: POST https://127.0.0.1:\d+/bulk/` + regexp.QuoteMeta(config.MaskKey(testKey)) +
			`/tag/flowgate/ with no event: 403 Forbidden: the intake key is refused .*`,
		"Both":         `OK`,
		"Both#archive": `OK`,
	} {
		re := regexp.MustCompile(`(?m)^  intake "` + name + `": ` + want + `$`)
		if !re.MatchString(out) {
			t.Errorf("no verdict %q for %s", want, name)
		}
	}
	for _, want := range []string{
		"intake: POST " + intake.URL + "/jsons with no event answered 200 OK",
		"intake: POST " + loggly.URL + "/bulk/" + config.MaskKey(testKey) + "/tag/flowgate/ with no event answered 200 OK",
		"http " + loggly.URL + "/bulk/{key}/tag/flowgate/, key " + config.MaskKey(testKey),
		"intake: RELP session opened (200 OK) and closed",
		"intake: syslog over TLS has no answer to ask for: connected and TLS only",
		`certificate "CN=localhost" issued by "CN=flowgate test CA"`,
		"verified against the system roots and " + certs.CA,
		"DNS: localhost is ",
		"nothing to probe: events are written to a file",
		// check's line of the intake with two outputs.
		"http " + loggly.URL + "/bulk/{key}/tag/flowgate/ + archive: file ",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the probe does not say %q", want)
		}
	}
	if strings.Contains(out+errOut, testKey) {
		t.Error("the probe printed the intake key in full")
	}
	// The probes reached the intakes and created no event.
	if n := len(intake.Requests()); n != 1 || len(intake.Events()) != 0 {
		t.Errorf("the HTTPS intake saw %d requests and %d events", n, len(intake.Events()))
	}
	if msgs := receiver.Messages(); len(msgs) != 0 {
		t.Errorf("rsyslog received %d messages from a probe", len(msgs))
	}
}
