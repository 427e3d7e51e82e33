package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/flowgate/flowgate/benchmarks/internal/cpugroup"
)

// proc is a program the benchmark started: a tool under test, the sink,
// a generator. It dies with the benchmark (Pdeathsig), whatever happens.
type proc struct {
	name   string
	cmd    *exec.Cmd
	stdout *tail
	stderr *tail
	done   chan struct{}
	err    error
}

// tail keeps the last bytes written to it.
type tail struct {
	mu sync.Mutex
	b  []byte
}

const tailBytes = 64 << 10

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > tailBytes {
		t.b = append(t.b[:0], t.b[len(t.b)-tailBytes:]...)
	}
	return len(p), nil
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.b)
}

// lastLines is the end of what a program said, for an error message.
func (t *tail) lastLines(n int) string {
	lines := strings.Split(strings.TrimSpace(t.String()), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// start runs a program in dir, in group when set.
func start(name, dir string, group *cpugroup.Group, stdout io.Writer, args ...string) (*proc, error) {
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Dir = dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if group != nil {
		cmd.SysProcAttr.UseCgroupFD, cmd.SysProcAttr.CgroupFD = true, group.FD()
	}
	p := &proc{name: name, cmd: cmd, stdout: &tail{}, stderr: &tail{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.stdout, p.stderr
	if stdout != nil {
		cmd.Stdout = io.MultiWriter(p.stdout, stdout)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

// exited says whether the program has ended.
func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// wait waits for the program to end by itself, at most timeout; it kills
// it when ctx ends first, so that an interrupted benchmark stops within
// the step, not after it.
func (p *proc) wait(ctx context.Context, timeout time.Duration) error {
	select {
	case <-p.done:
		if p.err != nil {
			return fmt.Errorf("%s: %w: %s", p.name, p.err, p.stderr.lastLines(5))
		}
		return nil
	case <-ctx.Done():
		p.kill()
		return fmt.Errorf("%s: %w", p.name, ctx.Err())
	case <-time.After(timeout):
		p.kill()
		return fmt.Errorf("%s: still running after %s: killed", p.name, timeout)
	}
}

// stop asks the program to end with sig and kills it after timeout.
func (p *proc) stop(sig os.Signal, timeout time.Duration) {
	if p.exited() {
		return
	}
	_ = p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
	case <-time.After(timeout):
		p.kill()
	}
}

func (p *proc) kill() {
	_ = p.cmd.Process.Kill()
	<-p.done
}

// output runs a program to its end and returns its standard output.
func output(dir string, args ...string) (string, error) {
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Dir = dir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if msg == "" {
			msg = strings.TrimSpace(stdout.String())
		}
		return "", fmt.Errorf("%s: %w\n%s", strings.Join(args, " "), err, msg)
	}
	return stdout.String(), nil
}

// errSkip marks a path or tool this machine or this flowgate cannot measure.
var errSkip = errors.New("skipped")
