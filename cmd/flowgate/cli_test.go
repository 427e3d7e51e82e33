package main

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/flowgate/flowgate/config"
	"github.com/flowgate/flowgate/internal/apptest"
	"github.com/flowgate/flowgate/internal/peers"
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
	tcpPort, udpPort := apptest.FreePort(t, "tcp"), apptest.FreePort(t, "udp")
	path := writeConfig(t, fmt.Sprintf(`intakes:
  - {name: Firewall, protocol: tcp, port: %d, intake_key: %s}
  - {name: Routers, protocol: netflow, port: %d, intake_key: %s}
`, tcpPort, cliKey, udpPort, cliKey))
	code, out, errOut := runCLI("check", "--config", path)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{"2 intakes", "Firewall", "tcp", strconv.Itoa(tcpPort), "Routers", "netflow", strconv.Itoa(udpPort), config.MaskKey(cliKey), "https https://intake.sekoia.io/jsons",
		"ports: 2 free (bound and released); TLS files: 0 read"} {
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
	if code, _, errOut := runCLI(); code != 2 || !strings.Contains(errOut, "Usage: flowgate COMMAND [flags]") {
		t.Errorf("no arguments: exit %d %q", code, errOut)
	}
	if code, _, errOut := runCLI("frobnicate"); code != 2 || !strings.Contains(errOut, `unknown command "frobnicate"`) {
		t.Errorf("unknown command: exit %d %q", code, errOut)
	}
	if code, out, _ := runCLI("version"); code != 0 || !strings.HasPrefix(out, "flowgate ") {
		t.Errorf("version: exit %d %q", code, out)
	}
	// The embedded default's ports may be taken on a shared machine, and
	// check binds them: then only the start of its output is asked for.
	code, out, errOut := runCLI("check")
	if !strings.Contains(out, "embedded default: 2 intakes") || (code != 0 && !strings.Contains(errOut, "is in use")) {
		t.Errorf("check without --config: exit %d %q %q", code, out, errOut)
	}
}

// runBinary runs the real flowgate with args and returns its exit code,
// stdout and stderr.
func runBinary(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	return runBinaryAs(t, apptest.Binary(t), nil, args...)
}

// runBinaryAs runs binary with attr (another user, say).
func runBinaryAs(t *testing.T, binary string, attr *syscall.SysProcAttr, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr, cmd.SysProcAttr = &stdout, &stderr, attr
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatal(err)
	}
	return cmd.ProcessState.ExitCode(), stdout.String(), stderr.String()
}

// Each command's help, however asked for, exits 0 and shows its flags,
// the environment it reads and an example.
func TestHelpOfEachCommand(t *testing.T) {
	t.Parallel()
	configEnv := []string{"REGION  ", "ENDPOINT  ", "DISK_SPACE  ", "MEMORY_MESSAGES  ", "RELP_OUTPUT  "}
	for _, tc := range []struct {
		args      []string
		want, not []string
	}{
		{[]string{"help", "run"}, append([]string{"Usage: flowgate run [--config FILE]", "  --config FILE  ", "GOMEMLIMIT  ", "GOGC  ", "SIGHUP", "Example:\n  REGION=FRA2 DISK_SPACE=180g flowgate run --config "}, configEnv...), nil},
		{[]string{"run", "--help"}, append([]string{"Usage: flowgate run [--config FILE]", "  --config FILE  ", "  --log-level LEVEL  ", "  --log-format FORMAT  ", "GOMEMLIMIT  "}, configEnv...), nil},
		{[]string{"check", "-h"}, append([]string{"Usage: flowgate check [--config FILE] [--probe]", "  --probe  ", "Example:\n  flowgate check --config"}, configEnv...), []string{"GOMEMLIMIT", "GOGC"}},
		{[]string{"healthcheck", "--help"}, append([]string{"Usage: flowgate healthcheck [--config FILE]", "Example:\n  flowgate healthcheck"}, configEnv...), nil},
		{[]string{"dlq", "--help"}, []string{"Usage: flowgate dlq list|resend", "  --intake NAME  ", "  --progress N  ", "(default 10000)", "Example:\n  flowgate dlq resend"}, nil},
		{[]string{"dlq", "resend", "--help"}, []string{"Usage: flowgate dlq list|resend", "  --progress N  "}, nil},
		{[]string{"version", "--help"}, []string{"Usage: flowgate version\n", "Example:\n  flowgate version\n"}, []string{"Flags:", "Environment:"}},
		{[]string{"help"}, []string{"Usage: flowgate COMMAND [flags]", "  run  ", "  check  ", "  healthcheck  ", "  dlq  ", "  version  ", "  help COMMAND  "}, nil},
	} {
		code, out, errOut := runBinary(t, tc.args...)
		if code != 0 || errOut != "" {
			t.Errorf("flowgate %s: exit %d, stderr %q", strings.Join(tc.args, " "), code, errOut)
		}
		for _, want := range tc.want {
			if !strings.Contains(out, want) {
				t.Errorf("flowgate %s lacks %q:\n%s", strings.Join(tc.args, " "), want, out)
			}
		}
		for _, not := range tc.not {
			if strings.Contains(out, not) {
				t.Errorf("flowgate %s shows %q:\n%s", strings.Join(tc.args, " "), not, out)
			}
		}
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"help", "nope"}, `flowgate help: unknown command "nope"`},
		{[]string{"run", "--bogus"}, "flag provided but not defined: -bogus\nusage: flowgate run [--config FILE] [--log-level LEVEL] [--log-format FORMAT] (flowgate help run says more)\n"},
		{[]string{"dlq", "frob"}, "usage: flowgate dlq list|resend"},
		{[]string{"dlq", "resend", "--progress", "0"}, "--progress 0: expected a number of events above 0"},
		{[]string{"check", "extra"}, `flowgate check: unexpected argument "extra"`},
	} {
		if code, out, errOut := runBinary(t, tc.args...); code != 2 || out != "" || !strings.Contains(errOut, tc.want) {
			t.Errorf("flowgate %s: exit %d, stdout %q, stderr %q; want 2 and %q", strings.Join(tc.args, " "), code, out, errOut, tc.want)
		}
	}
}

// A port already taken stops the start with a clear error; nothing is
// left listening.
func TestRunRefusesAPortInUse(t *testing.T) {
	t.Parallel()
	taken, err := net.ListenPacket("udp", ":0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	port := taken.LocalAddr().(*net.UDPAddr).Port
	httpPort := apptest.FreePort(t, "tcp")
	path := apptest.WriteConfig(t, t.TempDir(), fmt.Sprintf("intakes:\n  - {name: Routers, protocol: netflow, port: %d, intake_key: %s}\noutput: {transport: file, path: \"-\"}\n",
		port, cliKey), fmt.Sprintf("127.0.0.1:%d", httpPort))
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

// `check` binds each port as run would, and names the process holding a
// port in use, with the intake and its line.
func TestCheckNamesWhoHoldsAPort(t *testing.T) {
	tcp, err := net.Listen("tcp", ":0")
	if err != nil {
		t.Fatal(err)
	}
	defer tcp.Close()
	udp, err := net.ListenPacket("udp", ":0")
	if err != nil {
		t.Fatal(err)
	}
	defer udp.Close()
	tcpPort, udpPort := tcp.Addr().(*net.TCPAddr).Port, udp.LocalAddr().(*net.UDPAddr).Port
	free := apptest.FreePort(t, "udp")
	path := writeConfig(t, fmt.Sprintf(`intakes:
  - {name: Firewall, protocol: tcp, port: %d, intake_key: %s}
  - {name: Switches, protocol: udp, port: %d, intake_key: %s}
  - {name: Routers, protocol: netflow, port: %d, intake_key: %s}
`, tcpPort, cliKey, free, cliKey, udpPort, cliKey))
	code, _, errOut := runBinary(t, "check", "--config", path)
	holder := fmt.Sprintf("by %s (pid %d)", filepath.Base(os.Args[0])[:min(15, len(filepath.Base(os.Args[0])))], os.Getpid())
	want := fmt.Sprintf("flowgate: %s: line 2: intake \"Firewall\": TCP port %d is in use %s\nline 4: intake \"Routers\": UDP port %d is in use %s\n",
		path, tcpPort, holder, udpPort, holder)
	if code != 1 || errOut != want {
		t.Fatalf("exit %d, stderr:\n%s\nwant exit 1 and:\n%s", code, errOut, want)
	}

	// A user who may not read other users' /proc/PID/fd is told so.
	if os.Getuid() != 0 {
		t.Skip("the part as another user needs root")
	}
	dir, err := os.MkdirTemp("", "flowgate-check-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "intakes.yaml"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	// The binary is built in a private folder: a copy nobody may run.
	bin, err := os.ReadFile(apptest.Binary(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "flowgate"), bin, 0o755); err != nil {
		t.Fatal(err)
	}
	nobody := &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	code, _, errOut = runBinaryAs(t, filepath.Join(dir, "flowgate"), nobody, "check", "--config", filepath.Join(dir, "intakes.yaml"))
	if code != 1 || !strings.Contains(errOut, fmt.Sprintf(`line 2: intake "Firewall": TCP port %d is in use, by a process this user may not see (run check as root to know which)`, tcpPort)) {
		t.Fatalf("as nobody: exit %d, stderr:\n%s", code, errOut)
	}
}

// `check` reads each TLS file as run would: a file that is not what its
// key says stops it, naming the file and the intake.
func TestCheckReadsTLSFiles(t *testing.T) {
	certs := peers.NewCerts(t)
	port := apptest.FreePort(t, "tcp")
	file := func(extra string) string {
		return writeConfig(t, fmt.Sprintf(`intakes:
  - {name: Proxies, protocol: tls, port: %d, intake_key: %s, tls_client_auth: require, tls_ca_name: ca}
certs_dir: %s
%s`, port, cliKey, certs.Dir, extra))
	}
	if code, out, errOut := runCLI("check", "--config", file("")); code != 0 || !strings.Contains(out, "ports: 1 free (bound and released); TLS files: 3 read") {
		t.Fatalf("good files: exit %d: %s%s", code, out, errOut)
	}
	// The key and the certificate swapped, as happens.
	if err := os.Rename(certs.ServerKey, certs.ServerKey+".tmp"); err != nil {
		t.Fatal(err)
	}
	copyFile(t, certs.ServerCert, certs.ServerKey)
	code, _, errOut := runCLI("check", "--config", file(""))
	if code != 1 || !strings.Contains(errOut, fmt.Sprintf(`line 2: intake "Proxies": TLS key %s and certificate %s: tls: found a certificate rather than a key in the PEM for the private key`, certs.ServerKey, certs.ServerCert)) {
		t.Fatalf("key that is a certificate: exit %d: %s", code, errOut)
	}
	if err := os.Rename(certs.ServerKey+".tmp", certs.ServerKey); err != nil {
		t.Fatal(err)
	}
	// An output's CA that holds no certificate.
	path := file(fmt.Sprintf("output: {transport: syslog, endpoint: \"127.0.0.1:6514\", ca_file: %s}\n", certs.ServerKey))
	code, _, errOut = runCLI("check", "--config", path)
	if code != 1 || !strings.Contains(errOut, fmt.Sprintf(`line 2: intake "Proxies": output: TLS CA %s: no PEM certificate in it`, certs.ServerKey)) {
		t.Fatalf("CA without a certificate: exit %d: %s", code, errOut)
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	data, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// `check` before a reload: the ports the running appliance holds are
// noted, not refused.
func TestCheckBesideTheRunningAppliance(t *testing.T) {
	t.Parallel()
	port := apptest.FreePort(t, "udp")
	a := newApp(t, fmt.Sprintf("intakes:\n  - {name: Routers, protocol: netflow, port: %d, intake_key: %s}\noutput: {transport: file, path: \"-\"}\n", port, cliKey))
	code, out, errOut := runBinary(t, "check", "--config", a.path)
	note := regexp.MustCompile(fmt.Sprintf(`line 2: intake "Routers": UDP port %d is held by flowgate \(pid \d+\): the running appliance, which a reload keeps listening\n`, port))
	if code != 0 || !note.MatchString(out) {
		t.Fatalf("exit %d: %s%s", code, out, errOut)
	}
}

// The log's level and format come from the file's log: key, and run's
// --log-level and --log-format win over it; a bad one is refused, named.
func TestLogLevelAndFormat(t *testing.T) {
	t.Parallel()
	conf := func(log string) (string, string) {
		httpAddr := fmt.Sprintf("127.0.0.1:%d", apptest.FreePort(t, "tcp"))
		return apptest.WriteConfig(t, t.TempDir(), fmt.Sprintf("intakes:\n  - {name: Routers, protocol: netflow, port: %d, intake_key: %s}\noutput: {transport: file, path: \"-\"}\nlog: %s\n",
			apptest.FreePort(t, "udp"), cliKey, log), httpAddr, apptest.Pprof()), httpAddr
	}
	// The file's: warnings only, as JSON; the profiler's warning shows.
	path, httpAddr := conf("{level: warn, format: json}")
	p := apptest.Start(t, path, httpAddr)
	if err := p.Stop(30 * time.Second); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(p.Stderr.String()), "\n")
	if !strings.HasPrefix(lines[0], `{"time":`) || !strings.Contains(lines[0], `"level":"WARN","msg":"profiler on`) {
		t.Errorf("log.format json, level warn: the first line is %q", lines[0])
	}
	if strings.Contains(p.Stderr.String(), `"level":"INFO"`) {
		t.Errorf("log.level warn: info lines logged:\n%s", p.Stderr.String())
	}

	// The flags win: info and text.
	path, httpAddr = conf("{level: warn, format: json}")
	p = apptest.StartArgs(t, path, httpAddr, []string{"--log-level", "info", "--log-format", "text"})
	p.WaitReady(30 * time.Second)
	if !apptest.Eventually(10*time.Second, func() bool { return strings.Contains(p.Stderr.String(), `level=INFO msg="flowgate started"`) }) {
		t.Errorf("--log-level info --log-format text over the file's warn, json:\n%s", p.Stderr.String())
	}

	for _, tc := range []struct {
		args []string
		log  string
		want string
	}{
		{[]string{"--log-level", "loud"}, "{}", `--log-level: unknown log level "loud" (debug, info, warn, error)`},
		{[]string{"--log-format", "xml"}, "{}", `--log-format: unknown log format "xml" (text, json)`},
		{nil, "{format: xml}", `log.format: unknown log format "xml" (text, json)`},
	} {
		path, _ := conf(tc.log)
		code, _, errOut := runCLI(append([]string{"run", "--config", path}, tc.args...)...)
		if code != 1 || !strings.Contains(errOut, tc.want) {
			t.Errorf("run %v with log: %s: exit %d, %q; want 1 and %q", tc.args, tc.log, code, errOut, tc.want)
		}
	}
}
