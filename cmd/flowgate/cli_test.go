package main

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flowgate/flowgate/config"
	"github.com/flowgate/flowgate/internal/apptest"
)

const cliKey = "CliTestIntakeKey0123456789"

func writeConfig(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "intakes.yaml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func runCLI(args ...string) (int, string, string) {
	var stdout, stderr bytes.Buffer
	code := run(args, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

func TestCheckPrintsIntakesWithKeysMasked(t *testing.T) {
	path := writeConfig(t, `intakes:
  - {name: Firewall, protocol: tcp, port: 20516, intake_key: `+cliKey+`}
  - {name: Routers, protocol: netflow, port: 2055, intake_key: `+cliKey+`}
`)
	code, out, errOut := runCLI("check", "--config", path)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{"2 intakes", "Firewall", "tcp", "20516", "Routers", "netflow", "2055", config.MaskKey(cliKey), "https https://intake.sekoia.io/jsons"} {
		if !strings.Contains(out, want) {
			t.Errorf("check output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out+errOut, cliKey) {
		t.Fatalf("check printed the key in full:\n%s", out)
	}
}

func TestBadFilesExitOneNamingTheProblem(t *testing.T) {
	for _, tc := range []struct{ file, want string }{
		{"intakes:\n  - {name: A, protocol: netflow, port: 2055}\n", `line 2: intake "A": intake_key is missing`},
		{"intakes:\n  - {name: A, protocol: gopher, port: 70, intake_key: " + cliKey + "}\n", `unknown protocol "gopher"`},
		{"intakes:\n  - {name: A, protocol: netflow, port: 2055, intake_key: " + cliKey + ", colour: red}\n", `line 2: unknown key "colour" in intake "A"`},
	} {
		path := writeConfig(t, tc.file)
		for _, cmd := range []string{"check", "run"} {
			code, _, errOut := runCLI(cmd, "--config", path)
			if code != 1 || !strings.Contains(errOut, tc.want) || !strings.Contains(errOut, path) {
				t.Errorf("%s: exit %d, stderr %q; want 1 and %q", cmd, code, errOut, tc.want)
			}
		}
	}
	if code, _, errOut := runCLI("check", "--config", "/nonexistent/intakes.yaml"); code != 1 || !strings.Contains(errOut, "no such file") {
		t.Errorf("missing file: exit %d, %q", code, errOut)
	}
}

func TestUsage(t *testing.T) {
	if code, _, errOut := runCLI(); code != 2 || !strings.Contains(errOut, "Usage") {
		t.Errorf("no arguments: exit %d %q", code, errOut)
	}
	if code, _, errOut := runCLI("frobnicate"); code != 2 || !strings.Contains(errOut, `unknown command "frobnicate"`) {
		t.Errorf("unknown command: exit %d %q", code, errOut)
	}
	if code, out, _ := runCLI("version"); code != 0 || !strings.HasPrefix(out, "flowgate ") {
		t.Errorf("version: exit %d %q", code, out)
	}
	if code, out, _ := runCLI("check"); code != 0 || !strings.Contains(out, "embedded default") {
		t.Errorf("check without --config: exit %d %q", code, out)
	}
}

// A port already taken stops the start with a clear error; nothing is
// left listening.
func TestRunRefusesAPortInUse(t *testing.T) {
	taken, err := net.ListenPacket("udp", ":0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	port := taken.LocalAddr().(*net.UDPAddr).Port
	httpPort := apptest.FreePort(t, "tcp")
	path := writeConfig(t, fmt.Sprintf(`intakes:
  - {name: Routers, protocol: netflow, port: %d, intake_key: %s}
output: {transport: file, path: "-"}
buffer: {dir: %s}
http: {listen: "127.0.0.1:%d"}
`, port, cliKey, filepath.Join(t.TempDir(), "data"), httpPort))
	cmd := exec.Command(apptest.Binary(t), "run", "--config", path)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
			t.Fatalf("exit: %v", err)
		}
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatal("flowgate kept running with its port taken")
	}
	if !strings.Contains(stderr.String(), fmt.Sprintf(`intake "Routers": udp :%d`, port)) || !strings.Contains(stderr.String(), "address already in use") {
		t.Fatalf("stderr: %s", stderr.String())
	}
	if l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", httpPort)); err != nil {
		t.Fatalf("the monitoring port is still taken: %v", err)
	} else {
		l.Close()
	}
}
