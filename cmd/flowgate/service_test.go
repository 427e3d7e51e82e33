package main

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v4"

	"github.com/flowgate/flowgate/config"
	"github.com/flowgate/flowgate/internal/apptest"
	"github.com/flowgate/flowgate/internal/intaketest"
	"github.com/flowgate/flowgate/internal/peers"
)

// offlineConfig writes a netflow configuration that ships to a file, with
// its monitoring listener on httpAddr, and returns its path.
func offlineConfig(t *testing.T, httpAddr string) string {
	t.Helper()
	dir := t.TempDir()
	return apptest.WriteConfig(t, dir, fmt.Sprintf("intakes:\n  - {name: Routers, protocol: netflow, port: %d, intake_key: %s}\noutput: {transport: file, path: %q}\n",
		apptest.FreePort(t, "udp"), testKey, filepath.Join(dir, "events.jsonl")), httpAddr)
}

// healthcheckCmd runs `flowgate healthcheck --config path`.
func healthcheckCmd(t *testing.T, path string) (int, string) {
	t.Helper()
	out, err := exec.Command(apptest.Binary(t), "healthcheck", "--config", path).CombinedOutput()
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode(), string(out)
	} else if err != nil {
		t.Fatal(err)
	}
	return 0, string(out)
}

func TestHealthcheck(t *testing.T) {
	t.Parallel()
	httpAddr := fmt.Sprintf("127.0.0.1:%d", apptest.FreePort(t, "tcp"))
	path := offlineConfig(t, httpAddr)
	if code, out := healthcheckCmd(t, path); code != 1 || !strings.Contains(out, "connection refused") {
		t.Fatalf("healthcheck with nothing running: exit %d, %q; want 1 and connection refused", code, out)
	}
	proc := apptest.Start(t, path, httpAddr)
	if code, out := healthcheckCmd(t, path); code != 0 || strings.TrimSpace(out) != "ready" {
		t.Fatalf("healthcheck of a ready appliance: exit %d, %q; want 0 and ready", code, out)
	}
	if err := proc.Stop(20 * time.Second); err != nil {
		t.Fatal(err)
	}
	if code, _ := healthcheckCmd(t, path); code != 1 {
		t.Fatalf("healthcheck of a stopped appliance: exit %d, want 1", code)
	}
}

func TestLoopbackFor(t *testing.T) {
	for listen, want := range map[string]string{
		"127.0.0.1:9740": "127.0.0.1:9740",
		"0.0.0.0:9740":   "127.0.0.1:9740",
		"[::]:9740":      "127.0.0.1:9740",
		":9740":          "127.0.0.1:9740",
		"[::1]:9740":     "[::1]:9740",
		"flowgate:9740":  "flowgate:9740",
	} {
		if got := loopbackFor(listen); got != want {
			t.Errorf("loopbackFor(%q) = %q, want %q", listen, got, want)
		}
	}
}

// notifySocket listens as systemd does for sd_notify messages, and returns
// its path and each line that reaches it.
func notifySocket(t *testing.T) (string, <-chan string) {
	t.Helper()
	dir, err := os.MkdirTemp("", "fgn") // short: socket paths end at 108 bytes
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 1<<16)
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 4096)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				return
			}
			for _, line := range strings.Split(string(buf[:n]), "\n") {
				select {
				case lines <- line:
				default: // a test that stopped reading
				}
			}
		}
	}()
	t.Cleanup(func() { conn.Close(); <-done })
	return sock, lines
}

// nextLine waits up to 30s for the next line.
func nextLine(t *testing.T, lines <-chan string, waitingFor string) string {
	t.Helper()
	select {
	case l := <-lines:
		return l
	case <-time.After(30 * time.Second):
		t.Fatalf("no sd_notify message in 30s while waiting for %s", waitingFor)
	}
	return ""
}

// TestSystemdNotify runs the binary as systemd would run a Type=notify
// service with a watchdog, on a real notification socket.
func TestSystemdNotify(t *testing.T) {
	t.Parallel()
	sock, lines := notifySocket(t)
	next := func(want string) {
		t.Helper()
		for {
			line := nextLine(t, lines, want)
			if line == want {
				return
			}
			if !strings.HasPrefix(line, "STATUS=") && line != "WATCHDOG=1" {
				t.Fatalf("unexpected %q while waiting for %s", line, want)
			}
		}
	}

	httpAddr := fmt.Sprintf("127.0.0.1:%d", apptest.FreePort(t, "tcp"))
	proc := apptest.StartUnready(t, offlineConfig(t, httpAddr), httpAddr, "NOTIFY_SOCKET="+sock, "WATCHDOG_USEC=200000")
	next("READY=1")
	if status, body := proc.Get("/readyz"); status != http.StatusOK {
		t.Fatalf("READY=1 sent while /readyz answers %d %s", status, body)
	}
	for range 3 {
		next("WATCHDOG=1")
	}
	if err := proc.Stop(20 * time.Second); err != nil {
		t.Fatalf("flowgate exited with %v", err)
	}
	next("STOPPING=1")
}

// TestWatchdogOutlivesAnOutage keeps the intake down for many times
// stall_after: the output is stalled, STATUS= says so and why, and yet
// WATCHDOG=1 keeps coming (systemd must not restart flowgate for an
// outage); when the intake is back, STATUS= says ready and what waited
// arrives.
func TestWatchdogOutlivesAnOutage(t *testing.T) {
	t.Parallel()
	sock, lines := notifySocket(t)
	intake := intaketest.NewHTTPS(t)
	port := apptest.FreePort(t, "tcp")
	httpAddr := fmt.Sprintf("127.0.0.1:%d", apptest.FreePort(t, "tcp"))
	path := apptest.WriteConfig(t, t.TempDir(), fmt.Sprintf("intakes:\n  - {name: Firewall, protocol: tcp, port: %d, intake_key: %s}\noutput: %s\n",
		port, testKey, intake.Output()), httpAddr, apptest.StallAfter(time.Second))
	proc := apptest.StartUnready(t, path, httpAddr, "NOTIFY_SOCKET="+sock, "WATCHDOG_USEC=200000")
	for nextLine(t, lines, "READY=1") != "READY=1" {
	}
	intake.Down()
	var msgs []string
	for i := range 20 {
		msgs = append(msgs, fmt.Sprintf("during the outage %d", i))
	}
	sender, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	defer sender.Close()
	for _, m := range msgs {
		if _, err := fmt.Fprintf(sender, "<13>1 - fw app - - - %s\n", m); err != nil {
			t.Fatal(err)
		}
	}

	var status string
	for !strings.HasPrefix(status, "STATUS=not ready") {
		status = nextLine(t, lines, "STATUS=not ready")
	}
	if !strings.Contains(status, `output of "Firewall": stalled`) {
		t.Fatalf("STATUS= does not say which output is stalled: %q", status)
	}
	// 50 pings at half of 200ms: at least five times stall_after, all of
	// it not ready. (STATUS= changes as the stall grows.)
	deadline := time.Now().Add(60 * time.Second)
	for fed := 0; fed < 50; {
		if time.Now().After(deadline) {
			t.Fatalf("%d WATCHDOG=1 in 60s of outage, want 50", fed)
		}
		switch line := nextLine(t, lines, "WATCHDOG=1"); {
		case line == "WATCHDOG=1":
			fed++
		case strings.HasPrefix(line, "STATUS=not ready"):
		default:
			t.Fatalf("got %q during the outage after %d WATCHDOG=1, want WATCHDOG=1 and the stall in STATUS=", line, fed)
		}
	}
	if status, body := proc.Get("/readyz"); status != http.StatusServiceUnavailable {
		t.Fatalf("/readyz answers %d %s during the outage", status, body)
	}

	intake.Up(t)
	for line := ""; line != "STATUS=ready"; {
		line = nextLine(t, lines, "STATUS=ready")
		if line != "WATCHDOG=1" && !strings.HasPrefix(line, "STATUS=") {
			t.Fatalf("got %q after the outage", line)
		}
	}
	seen := map[string]int{}
	for _, e := range intake.WaitEvents(t, len(msgs), 60*time.Second) {
		seen[e.Event]++
	}
	for _, m := range msgs {
		if seen[m] != 1 {
			t.Errorf("%q arrived %d times", m, seen[m])
		}
	}
	select {
	case <-proc.Done():
		t.Fatal("flowgate exited during the outage")
	default:
	}
}

// TestShippedConfigurations checks the configurations users copy: each
// passes `flowgate check`, and every port of the compose example's
// intakes.yaml is published by its docker-compose.yml (a port missing there
// drops traffic without a word).
func TestShippedConfigurations(t *testing.T) {
	t.Parallel()
	root := filepath.Join("..", "..")
	// The compose example's TLS intake reads its files from /certs, where
	// compose mounts ./certs: here a folder of the test stands for it
	// (check reads them).
	certs := peers.NewCerts(t).Dir
	// The examples hold placeholders that check refuses (config's tests
	// see to that): here they are filled in, as a user does.
	filled := func(path, extra string) string {
		example, err := os.ReadFile(filepath.Join(root, path))
		if err != nil {
			t.Fatal(err)
		}
		text := regexp.MustCompile(`YOUR_\w*KEY`).ReplaceAllString(string(example), cliKey)
		out := filepath.Join(t.TempDir(), "intakes.yaml")
		if err := os.WriteFile(out, []byte(text+extra), 0o600); err != nil {
			t.Fatal(err)
		}
		return out
	}
	withCerts := filled("deploy/intakes.yaml", "certs_dir: "+certs+"\n")
	for _, path := range []string{withCerts, filled("deploy/debian/intakes.yaml", "")} {
		out, err := exec.Command(apptest.Binary(t), "check", "--config", path).CombinedOutput()
		if err != nil {
			t.Errorf("flowgate check %s: %v\n%s", path, err, out)
		}
	}

	c, err := config.Load(withCerts, func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	var compose struct {
		Services map[string]struct {
			Ports []string `yaml:"ports"`
		} `yaml:"services"`
	}
	data, err := os.ReadFile(filepath.Join(root, "deploy/docker-compose.yml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(data, &compose); err != nil {
		t.Fatal(err)
	}
	published := map[string]bool{}
	for _, p := range compose.Services["flowgate"].Ports {
		proto := "tcp"
		if i := strings.LastIndex(p, "/"); i >= 0 {
			p, proto = p[:i], p[i+1:]
		}
		target := p[strings.LastIndex(p, ":")+1:]
		first, last, _ := strings.Cut(target, "-")
		if last == "" {
			last = first
		}
		lo, err1 := strconv.Atoi(first)
		hi, err2 := strconv.Atoi(last)
		if err1 != nil || err2 != nil {
			t.Fatalf("docker-compose.yml: cannot read port %q", p)
		}
		for port := lo; port <= hi; port++ {
			published[fmt.Sprintf("%d/%s", port, proto)] = true
		}
	}
	for _, in := range c.Intakes {
		proto := in.Kind.Network()
		if proto == "" {
			continue // a stats intake listens on nothing
		}
		if !published[fmt.Sprintf("%d/%s", in.Port, proto)] {
			t.Errorf("intake %q listens on %d/%s, which docker-compose.yml does not publish", in.Name, in.Port, proto)
		}
	}
	if _, port, err := net.SplitHostPort(c.HTTP.Listen); err != nil || !published[port+"/tcp"] {
		t.Errorf("the monitoring listener %s is not published", c.HTTP.Listen)
	}
}
