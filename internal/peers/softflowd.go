// Package peers drives the real programs tests exchange data with:
// softflowd and pmacctd (nfprobe, sfprobe) exporting the flows of a
// capture file, a relay that keeps a copy of every datagram an exporter
// sends, tshark decoding those copies into the records a collector must
// produce, and a nats-server cluster.
package peers

import (
	"bytes"
	"fmt"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Require fails the test when a program it needs is missing, naming the
// Debian package to install (scripts/test installs them all).
func Require(t testing.TB, programs ...string) {
	t.Helper()
	pkg := map[string]string{
		"softflowd": "softflowd", "softflowctl": "softflowd", "tshark": "tshark",
		"pmacctd": "pmacct", "nfacctd": "pmacct", "logger": "bsdutils", "rsyslogd": "rsyslog", "chromium": "chromium", "curl": "curl",
	}
	for _, p := range programs {
		if _, err := exec.LookPath(p); err != nil {
			t.Fatalf("%s is not installed: apt-get install %s (scripts/test does it)", p, pkg[p])
		}
	}
}

var (
	exportedRe = regexp.MustCompile(`Flows exported: (\d+) \((\d+) records\) in (\d+) packets`)
)

// Export is what softflowd says it sent.
type Export struct {
	Flows     int
	Datagrams int
}

// Softflowd exports the flows of the capture file at pcap to dst
// ("127.0.0.1:port") as NetFlow version 5, 9 or 10 (IPFIX), and returns
// once it has exited. softflowd 1.1 reading a file waits for a command on
// its control socket before each slice of packets it reads.
func Softflowd(t testing.TB, pcap string, dst string, version int, extra ...string) Export {
	t.Helper()
	Require(t, "softflowd", "softflowctl")
	dir := t.TempDir()
	ctl := filepath.Join(dir, "ctl")
	args := append([]string{"-r", pcap, "-n", dst, "-v", strconv.Itoa(version), "-d", "-c", ctl, "-p", filepath.Join(dir, "pid")}, extra...)
	cmd := exec.Command("softflowd", args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	wait := func(timeout time.Duration) (error, bool) {
		select {
		case err := <-exited:
			return err, true
		case <-time.After(timeout):
			return nil, false
		}
	}
	// Each command lets it read one more slice of the file; at the end of
	// the file it exports everything and exits.
	deadline := time.Now().Add(60 * time.Second)
	var err error
	for done := false; !done; {
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			<-exited
			t.Fatalf("softflowd did not finish %s within 60s: %s", pcap, stderr.String())
		}
		_ = exec.Command("softflowctl", "-c", ctl, "statistics").Run()
		err, done = wait(10 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("softflowd: %v: %s", err, stderr.String())
	}
	m := exportedRe.FindStringSubmatch(stdout.String())
	if m == nil {
		t.Fatalf("softflowd did not report its export: %s", stdout.String())
	}
	if !strings.Contains(stdout.String(), "(0 failures)") {
		t.Fatalf("softflowd reports failed sends: %s", stdout.String())
	}
	var e Export
	e.Flows, _ = strconv.Atoi(m[2])
	e.Datagrams, _ = strconv.Atoi(m[3])
	return e
}

// String describes an export.
func (e Export) String() string { return fmt.Sprintf("%d flows in %d datagrams", e.Flows, e.Datagrams) }
