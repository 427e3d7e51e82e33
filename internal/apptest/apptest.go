// Package apptest runs the real flowgate binary for tests: it builds it
// once, starts it on a configuration, waits for readiness by polling
// /readyz, reads its metrics, and stops it (or kills it) at the end.
// appliance/appliancetest runs the appliance in the test's process.
package apptest

import (
	"bytes"
	"context"
	"flag"
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

// Ports for tests come from below the kernel's ephemeral range (32768 on
// Linux), where no outgoing connection takes one, in blocks: each test
// process claims a block of its own with a lock file held until it exits,
// so that the test binaries `go test ./...` runs side by side never hand
// out the same port (ports the kernel picked with :0 were, and a
// connection of another test could take one before the intake bound it).
const (
	portsFirst    = 12000
	portsPerBlock = 250
	portBlocks    = 80 // up to 32000
)

// ports hands out the ports of this process's block, each once.
var ports struct {
	sync.Mutex
	block *os.File // the held lock; nil until the first FreePort
	first int
	next  int
}

// FreePort returns a port free on every address for network ("tcp" or
// "udp"), never the same twice in a test run, even across the test
// processes of one `go test ./...`.
func FreePort(t testing.TB, network string) int {
	t.Helper()
	ports.Lock()
	defer ports.Unlock()
	if ports.block == nil {
		if err := claimBlock(); err != nil {
			t.Fatal(err)
		}
	}
	for ports.next < ports.first+portsPerBlock {
		port := ports.next
		ports.next++
		if bindable(network, port) {
			return port
		}
	}
	t.Fatalf("FreePort: the %d ports of this test process's block are used up", portsPerBlock)
	return 0
}

// claimBlock takes the first block no other live process holds.
func claimBlock() error {
	dir := filepath.Join(os.TempDir(), "flowgate-test-ports")
	if err := os.MkdirAll(dir, 0o777); err != nil {
		return err
	}
	for b := range portBlocks {
		f, err := os.OpenFile(filepath.Join(dir, strconv.Itoa(b)+".lock"), os.O_CREATE|os.O_RDWR, 0o666)
		if err != nil {
			return err
		}
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
			f.Close()
			continue
		}
		ports.block, ports.first = f, portsFirst+b*portsPerBlock
		ports.next = ports.first
		return nil
	}
	return fmt.Errorf("FreePort: all %d port blocks are held by other test processes", portBlocks)
}

// bindable says whether port can be bound on every address, as an intake
// binds it.
func bindable(network string, port int) bool {
	addr := ":" + strconv.Itoa(port)
	if network == "udp" {
		c, err := net.ListenPacket("udp", addr)
		if err != nil {
			return false
		}
		c.Close()
		return true
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return false
	}
	l.Close()
	return true
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
// ("127.0.0.1:0" lets the system pick a port for an in-process appliance),
// with the keys opts add to them. It returns the file's path.
func WriteConfig(t testing.TB, dir, body, listen string, opts ...ConfigOption) string {
	t.Helper()
	s := sections{http: []string{"listen: " + listen}}
	for _, o := range opts {
		o(&s)
	}
	if !s.nats {
		s.buffer = append([]string{"dir: " + filepath.Join(dir, "data")}, s.buffer...)
	}
	cfg := body + "buffer:\n  " + strings.Join(s.buffer, "\n  ") + "\nhttp:\n  " + strings.Join(s.http, "\n  ") + "\n"
	path := filepath.Join(dir, "intakes.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// ConfigOption sets a key of the buffer or http section WriteConfig writes.
type ConfigOption func(*sections)

// sections are the keys of the buffer and http sections, as YAML lines;
// nats says the buffer is a NATS cluster's, with no dir.
type sections struct {
	buffer, http []string
	nats         bool
}

// StallAfter sets http.stall_after: how long data may wait unshipped
// before /readyz says the output is stalled.
func StallAfter(d time.Duration) ConfigOption {
	return func(s *sections) { s.http = append(s.http, "stall_after: "+d.String()) }
}

// Pprof turns on the profiler of the monitoring listener (http.pprof).
func Pprof() ConfigOption {
	return func(s *sections) { s.http = append(s.http, "pprof: true") }
}

// NATS keeps the buffer in the NATS cluster at urls (comma-separated) with
// replicas copies of each message, instead of the embedded store in dir.
func NATS(urls string, replicas int) ConfigOption {
	return func(s *sections) {
		s.nats = true
		s.buffer = append(s.buffer, "nats_url: "+urls, "replicas: "+strconv.Itoa(replicas))
	}
}

// RunParallel runs m's tests with up to n parallel tests at once unless
// -parallel says otherwise (the default is one a core). Use it in the
// TestMain of packages whose tests wait on peers (an exporter's replays,
// an outage, an election) more than they use the CPU.
func RunParallel(m *testing.M, n int) int {
	flag.Parse()
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == "test.parallel" })
	if !set {
		_ = flag.Set("test.parallel", strconv.Itoa(n))
	}
	return m.Run()
}
