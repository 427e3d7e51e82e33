package peers

import (
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/flowgate/flowgate/internal/apptest"
)

// Pmacctd runs pmacctd over the capture file at pcap with the given
// configuration keys (plugins and their settings, e.g. "plugins":
// "sfprobe", "sfprobe_receiver": addr) and returns its log once it has
// exited: pmacctd reads the file (pcap_savefile_replay times, after
// pcap_savefile_delay seconds each, and a pause of 2 seconds of its own
// first), exports, and exits. With "pcap_savefile_wait": "true" it waits
// at the end of the file instead, and is stopped with SIGINT once it says
// it has read it all: plugins that export what they hold when stopped
// (nfprobe) need that. The test fails if it does not exit within timeout
// or exits with an error.
func Pmacctd(t testing.TB, pcap string, keys map[string]string, timeout time.Duration) string {
	t.Helper()
	Require(t, "pmacctd")
	dir := t.TempDir()
	var cfg strings.Builder
	fmt.Fprintf(&cfg, "daemonize: false\npcap_savefile: %s\n", pcap)
	for _, k := range slices.Sorted(maps.Keys(keys)) {
		fmt.Fprintf(&cfg, "%s: %s\n", k, keys[k])
	}
	path := filepath.Join(dir, "pmacctd.conf")
	if err := os.WriteFile(path, []byte(cfg.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("pmacctd", "-f", path)
	var log apptest.SyncBuffer
	cmd.Stdout, cmd.Stderr = &log, &log
	// pmacctd forks a process per plugin: a group of their own lets a
	// timeout end them all.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	deadline := time.After(timeout)
	if keys["pcap_savefile_wait"] == "true" {
		for !strings.Contains(log.String(), "finished reading PCAP capture file") {
			select {
			case err := <-exited:
				t.Fatalf("pmacctd exited before reading %s (%v):\n%s", pcap, err, log.String())
			case <-deadline:
				_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
				<-exited
				t.Fatalf("pmacctd did not read %s within %s\nlog:\n%s", pcap, timeout, log.String())
			case <-time.After(20 * time.Millisecond):
			}
		}
		_ = cmd.Process.Signal(syscall.SIGINT)
	}
	select {
	case err := <-exited:
		// Stopped by our SIGINT, or by itself once it replayed the file
		// (the core then stops its plugins), pmacctd exits 1 when its
		// plugin ended before the core did ("no more plugins active"):
		// the order of the two on a loaded machine, not a fault. Seen
		// after sfprobe's replays on an Intel Xeon box, 2026-12-07.
		if err != nil && !stoppedByRequest(log.String()) {
			t.Fatalf("pmacctd: %v\nconfiguration:\n%s\nlog:\n%s", err, cfg.String(), log.String())
		}
	case <-deadline:
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-exited
		t.Fatalf("pmacctd did not finish %s within %s\nlog:\n%s", pcap, timeout, log.String())
	}
	// Plugins report their trouble in the log, not in the exit status.
	if strings.Contains(log.String(), "ERROR") {
		t.Fatalf("pmacctd reported errors:\n%s", log.String())
	}
	return log.String()
}

// stoppedByRequest tells a pmacctd whose plugin shut down on the SIGINT
// asked for, and whose core then ended for want of plugins.
func stoppedByRequest(log string) bool {
	i := strings.Index(log, "Shutting down on user request")
	return i >= 0 && strings.Contains(log[i:], "no more plugins active")
}

// Sfprobe has pmacctd's sFlow agent export the packets of the capture
// file at pcap to dst ("127.0.0.1:port") as sFlow v5: a flow sample for
// one packet in rate (at random, as sFlow agents sample), with agent
// address agent and sub-agent ID subAgent. It reads the file replays
// times, a second apart: its generic interface counters go out every 20
// seconds at most, and only when packets keep coming, so replays over 20
// seconds make sure at least one counter sample is sent.
func Sfprobe(t testing.TB, pcap, dst, agent string, subAgent, rate, replays int) string {
	t.Helper()
	return Pmacctd(t, pcap, map[string]string{
		"plugins":              "sfprobe",
		"sfprobe_receiver":     dst,
		"sfprobe_agentip":      agent,
		"sfprobe_agentsubid":   strconv.Itoa(subAgent),
		"sampling_rate":        strconv.Itoa(rate),
		"pcap_savefile_replay": strconv.Itoa(replays),
		"pcap_savefile_delay":  "1",
	}, time.Duration(2*replays+30)*time.Second)
}

// Nfprobe has pmacctd's nfprobe plugin (a second NetFlow/IPFIX exporter,
// independent of softflowd) export the flows of the capture file at pcap
// to dst ("127.0.0.1:port") as NetFlow version 9 or 10 (IPFIX). keys are
// more pmacctd settings ("sampling_rate": "4").
func Nfprobe(t testing.TB, pcap, dst string, version int, keys map[string]string) {
	t.Helper()
	all := map[string]string{
		"plugins":            "nfprobe",
		"nfprobe_receiver":   dst,
		"nfprobe_version":    strconv.Itoa(version),
		"pcap_savefile_wait": "true",
	}
	maps.Copy(all, keys)
	if log := Pmacctd(t, pcap, all, 60*time.Second); !strings.Contains(log, "Exporting flows to") {
		t.Fatalf("pmacctd did not start its nfprobe plugin:\n%s", log)
	}
}
