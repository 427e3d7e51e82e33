package peers

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Nfprobe has pmacctd (pmacct's nfprobe plugin, a second NetFlow/IPFIX
// exporter independent of softflowd) export the flows of the capture file
// at pcap to dst ("127.0.0.1:port") as NetFlow version 9 or 10 (IPFIX),
// and returns once it has exited. extra are more pmacctd configuration
// lines ("sampling_rate: 4"). pmacctd exports what it holds when it is
// stopped, so it is stopped once it has read the whole file.
func Nfprobe(t testing.TB, pcap, dst string, version int, extra ...string) {
	t.Helper()
	Require(t, "pmacctd")
	dir := t.TempDir()
	conf := filepath.Join(dir, "pmacctd.conf")
	lines := append([]string{
		"daemonize: false",
		"pcap_savefile: " + pcap,
		// Wait for a signal at the end of the file, rather than exit
		// before the plugin has exported.
		"pcap_savefile_wait: true",
		"plugins: nfprobe",
		"nfprobe_receiver: " + dst,
		fmt.Sprintf("nfprobe_version: %d", version),
	}, extra...)
	if err := os.WriteFile(conf, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("pmacctd", "-f", conf)
	var out syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	kill := func(why string) {
		_ = cmd.Process.Kill()
		<-exited
		t.Fatalf("pmacctd %s: %s", why, out.String())
	}
	// pmacctd sleeps two seconds before reading a file.
	deadline := time.After(30 * time.Second)
	for !strings.Contains(out.String(), "finished reading PCAP capture file") {
		select {
		case err := <-exited:
			t.Fatalf("pmacctd exited before reading %s (%v): %s", pcap, err, out.String())
		case <-deadline:
			kill("did not read the file within 30s")
		case <-time.After(20 * time.Millisecond):
		}
	}
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		kill(err.Error())
	}
	select {
	case <-exited:
	case <-time.After(20 * time.Second):
		kill("did not stop within 20s of SIGINT")
	}
	if !strings.Contains(out.String(), "Exporting flows to") {
		t.Fatalf("pmacctd did not start its nfprobe plugin: %s", out.String())
	}
}

// syncBuffer is a bytes.Buffer safe for a writer and a reader.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
