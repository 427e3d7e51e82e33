package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const oneIntake = "intakes:\n  - {name: R, protocol: netflow, port: 2055, intake_key: ConfigTestKey0123}\n"

func TestAClusterAndTheShutdownAreConfigured(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "flowgate.creds"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Parse([]byte(oneIntake+`buffer:
  nats_url: nats://user:secret@h1:4222, tls://h2:4222
  replicas: 3
  nats_creds: flowgate.creds
shutdown:
  grace: 5s
  timeout: 1m
`), "intakes.yaml", dir, env())
	if err != nil {
		t.Fatal(err)
	}
	b := c.Buffer
	if b.NATSURL != "nats://user:secret@h1:4222, tls://h2:4222" || b.Replicas != 3 || b.NATSCreds != filepath.Join(dir, "flowgate.creds") {
		t.Fatalf("buffer %+v", b)
	}
	if c.Shutdown.Grace != 5*time.Second || c.Shutdown.Timeout != time.Minute {
		t.Fatalf("shutdown %+v", c.Shutdown)
	}
	// Defaults: the embedded store, one copy, 10 s of grace in a 30 s stop.
	c, err = Parse([]byte(oneIntake), "intakes.yaml", dir, env())
	if err != nil {
		t.Fatal(err)
	}
	if c.Buffer.NATSURL != "" || c.Buffer.Replicas != 1 || c.Shutdown.Grace != 10*time.Second || c.Shutdown.Timeout != 30*time.Second {
		t.Fatalf("defaults: %+v %+v", c.Buffer, c.Shutdown)
	}
}

func TestBadClusterAndShutdownKeysAreRefused(t *testing.T) {
	for _, tc := range []struct{ extra, want string }{
		{"buffer:\n  replicas: 3\n", "apply with buffer.nats_url only"},
		{"buffer:\n  nats_url: http://h1:4222\n", `"http://h1:4222" is not a nats://`},
		{"buffer:\n  nats_url: nats://\n", "names no host"},
		{"buffer:\n  nats_url: nats://h1\n  replicas: 7\n", "replicas 7 is not between 1 and 5"},
		{"buffer:\n  nats_url: nats://h1\n  nats_creds: /nonexistent/x.creds\n", "buffer.nats_creds"},
		{"shutdown:\n  grace: 40s\n", "shutdown.grace 40s must be shorter than shutdown.timeout 30s"},
		{"shutdown:\n  grace: ten\n", "ten"},
	} {
		_, err := Parse([]byte(oneIntake+tc.extra), "intakes.yaml", t.TempDir(), env())
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want %q", tc.extra, err, tc.want)
		}
	}
}
