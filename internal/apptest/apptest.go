// Package apptest runs the real flowgate binary for tests: it builds it
// once, starts it on a configuration, waits for readiness by polling
// /readyz, reads its metrics, and stops it (or kills it) at the end.
// appliance/appliancetest runs the appliance in the test's process.
package apptest

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var (
	buildOnce sync.Once
	binary    string
	buildErr  error
)

// Binary builds cmd/flowgate once per test process and returns its path.
func Binary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "flowgate-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binary = filepath.Join(dir, "flowgate")
		cmd := exec.Command("go", "build", "-o", binary, "./cmd/flowgate")
		cmd.Dir = moduleRoot()
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binary
}

func moduleRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// handedOut are the ports FreePort returned: the kernel may offer a port
// again once it is closed, and two intakes of one test must not share one.
var handedOut = struct {
	sync.Mutex
	ports map[string]bool
}{ports: map[string]bool{}}

// FreePort returns a port free on loopback for network ("tcp" or "udp"),
// never the same twice in a test process.
func FreePort(t testing.TB, network string) int {
	t.Helper()
	for range 100 {
		port := freePort(t, network)
		key := network + "/" + strconv.Itoa(port)
		handedOut.Lock()
		seen := handedOut.ports[key]
		handedOut.ports[key] = true
		handedOut.Unlock()
		if !seen {
			return port
		}
	}
	t.Fatal("no free port found")
	return 0
}

func freePort(t testing.TB, network string) int {
	switch network {
	case "udp":
		c, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return c.LocalAddr().(*net.UDPAddr).Port
	default:
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		return l.Addr().(*net.TCPAddr).Port
	}
}

// Proc is a running flowgate.
type Proc struct {
	Monitor
	t      testing.TB
	cmd    *exec.Cmd
	Stdout *SyncBuffer
	Stderr *SyncBuffer
	done   chan struct{}
	err    error
}

// SyncBuffer is a bytes.Buffer safe for a writer and readers: the output
// of a program under test.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns what was written so far.
func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Start runs `flowgate run --config` on the file at configPath, whose
// http.listen is httpAddr, with env added to the environment, and waits
// until /readyz answers 200. The process is stopped with the test.
func Start(t testing.TB, configPath, httpAddr string, env ...string) *Proc {
	t.Helper()
	p := StartUnready(t, configPath, httpAddr, env...)
	p.WaitReady(30 * time.Second)
	return p
}

// StartUnready starts flowgate without waiting for readiness.
func StartUnready(t testing.TB, configPath, httpAddr string, env ...string) *Proc {
	t.Helper()
	return StartArgs(t, configPath, httpAddr, nil, env...)
}

// StartArgs is StartUnready with more flags of run (--log-level, say).
func StartArgs(t testing.TB, configPath, httpAddr string, args []string, env ...string) *Proc {
	t.Helper()
	cmd := exec.Command(Binary(t), append([]string{"run", "--config", configPath}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	// A test binary that dies (a timeout panic) takes flowgate with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	p := &Proc{Monitor: Monitor{t: t, HTTP: httpAddr}, t: t, cmd: cmd, Stdout: &SyncBuffer{}, Stderr: &SyncBuffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.Stdout, p.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.Stop(20 * time.Second)
		if t.Failed() {
			t.Logf("flowgate log:\n%s", tail(p.Stderr.String(), 60))
		}
	})
	return p
}

func tail(s string, lines int) string {
	parts := strings.Split(s, "\n")
	if len(parts) > lines {
		parts = parts[len(parts)-lines:]
	}
	return strings.Join(parts, "\n")
}

// WaitReady polls /readyz until it answers 200.
func (p *Proc) WaitReady(timeout time.Duration) {
	p.t.Helper()
	p.Monitor.WaitReady(timeout, p.done, &p.err, p.Stderr)
}

// Stop sends SIGTERM and waits for the exit, killing after timeout.
func (p *Proc) Stop(timeout time.Duration) error {
	select {
	case <-p.done:
		return p.err
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(timeout):
		_ = p.cmd.Process.Kill()
		<-p.done
		return fmt.Errorf("flowgate did not stop within %s", timeout)
	}
	return p.err
}

// Signal sends sig to the process.
func (p *Proc) Signal(sig os.Signal) {
	_ = p.cmd.Process.Signal(sig)
}

// Wait waits up to timeout for the process to exit and returns its exit
// error; it fails the test if the process is still running then.
func (p *Proc) Wait(timeout time.Duration) error {
	p.t.Helper()
	select {
	case <-p.done:
		return p.err
	case <-time.After(timeout):
		p.t.Fatalf("flowgate still running after %s", timeout)
		return nil
	}
}

// Kill stops the process at once, as a crash would.
func (p *Proc) Kill() {
	_ = p.cmd.Process.Kill()
	<-p.done
}

// Done is closed when the process has exited.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Eventually polls cond until it is true or timeout passes.
func Eventually(timeout time.Duration, cond func() bool) bool {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		if cond() {
			return true
		}
		select {
		case <-ctx.Done():
			return cond()
		case <-tick.C:
		}
	}
}

// WriteConfig writes dir/intakes.yaml: body (intakes, outputs and other
// keys), then the buffer in dir/data and the monitoring listener on listen
// ("127.0.0.1:0" lets the system pick a port for an in-process appliance).
// It returns the file's path.
func WriteConfig(t testing.TB, dir, body, listen string) string {
	t.Helper()
	path := filepath.Join(dir, "intakes.yaml")
	cfg := fmt.Sprintf("%sbuffer:\n  dir: %s\nhttp:\n  listen: %s\n", body, filepath.Join(dir, "data"), listen)
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
