package cpugroup

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// helperEnv makes the test binary a helper process: "parent" ignores
// SIGCHLD, as pmacct's print plugin does, starts a burner and waits until
// it is gone; "burner" spends burn of CPU and exits.
const helperEnv = "CPUGROUP_HELPER"

const burn = 300 * time.Millisecond

func TestMain(m *testing.M) {
	switch os.Getenv(helperEnv) {
	case "parent":
		os.Exit(parent())
	case "burner":
		spend(burn)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// parent prints the CPU time its reaped children reached it with.
func parent() int {
	signal.Ignore(syscall.SIGCHLD)
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), helperEnv+"=burner")
	if err := cmd.Start(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	// Ignored SIGCHLD: the kernel reaps the burner itself, and wait
	// cannot be used.
	for deadline := time.Now().Add(time.Minute); syscall.Kill(cmd.Process.Pid, 0) == nil; {
		if time.Now().After(deadline) {
			fmt.Fprintln(os.Stderr, "the burner did not end")
			return 1
		}
		time.Sleep(10 * time.Millisecond)
	}
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_CHILDREN, &ru)
	fmt.Println(time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Microseconds())
	return 0
}

// spend runs until this process used d of CPU (a minute at most).
func spend(d time.Duration) {
	x := 1
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); {
		for i := range 1_000_000 {
			x = x*31 + i
		}
		var ru syscall.Rusage
		syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
		if time.Duration(ru.Utime.Nano()+ru.Stime.Nano()) >= d {
			break
		}
	}
	if x == 42 {
		fmt.Println(x) // keeps the loop
	}
}

// TestCountsTheCPUOfChildrenNoParentWaitedFor: a tool's process that
// forks a worker and never waits for it; the worker's CPU is in the
// cgroup's count and in no parent's.
func TestCountsTheCPUOfChildrenNoParentWaitedFor(t *testing.T) {
	g, err := New(fmt.Sprintf("cpugroup-test-%d", os.Getpid()))
	if err != nil {
		t.Skipf("no cgroup to write here: %v", err)
	}
	// A failure below leaves no cgroup on the machine (Remove again is a no-op).
	t.Cleanup(func() { g.Remove() })
	dir := g.dir
	before, err := g.CPU()
	if err != nil || before != 0 {
		t.Fatalf("a new cgroup's CPU: %v, %v", before, err)
	}
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), helperEnv+"=parent")
	cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: g.FD()}
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("the parent: %v", err)
	}
	reaped, err := strconv.ParseInt(strings.TrimSpace(string(out)), 10, 64)
	if err != nil {
		t.Fatalf("the parent printed %q: %v", out, err)
	}
	if time.Duration(reaped)*time.Microsecond >= burn/2 {
		t.Fatalf("the parent's children reached it with %d µs: the test shows nothing", reaped)
	}
	cpu, err := g.CPU()
	if err != nil {
		t.Fatal(err)
	}
	if cpu < burn {
		t.Errorf("the cgroup counted %v, want at least the burner's %v", cpu, burn)
	}
	if err := g.Remove(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the cgroup is still there: %v", err)
	}
}

// TestRemoveEndsWhatIsLeft: a process still running in the cgroup does
// not keep it.
func TestRemoveEndsWhatIsLeft(t *testing.T) {
	g, err := New(fmt.Sprintf("cpugroup-test-left-%d", os.Getpid()))
	if err != nil {
		t.Skipf("no cgroup to write here: %v", err)
	}
	if _, err := os.Stat(filepath.Join(g.dir, "cgroup.kill")); err != nil {
		g.Remove()
		t.Skipf("no cgroup.kill before Linux 5.14: %v", err)
	}
	cmd := exec.Command("sleep", "600")
	cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: g.FD()}
	if err := cmd.Start(); err != nil {
		g.Remove()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	if err := g.Remove(); err != nil {
		cmd.Process.Kill()
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err == nil {
			t.Error("sleep ended by itself")
		}
	case <-time.After(time.Minute):
		t.Fatal("sleep still runs")
	}
}

// TestRemoveStaleRemovesOnlyWhatItIsAskedTo: the groups a killed
// benchmark left go, the others stay.
func TestRemoveStaleRemovesOnlyWhatItIsAskedTo(t *testing.T) {
	stale := fmt.Sprintf("cpugroup-test-stale-%d", os.Getpid())
	kept := fmt.Sprintf("cpugroup-test-kept-%d", os.Getpid())
	g, err := New(stale)
	if err != nil {
		t.Skipf("no cgroup to write here: %v", err)
	}
	t.Cleanup(func() { g.Remove() })
	other, err := New(kept)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { other.Remove() })
	n, err := RemoveStale(func(name string) bool { return name == stale })
	if err != nil || n != 1 {
		t.Fatalf("RemoveStale: %d, %v; want 1, nil", n, err)
	}
	if _, err := os.Stat(g.dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s: %v, want it gone", g.dir, err)
	}
	if _, err := os.Stat(other.dir); err != nil {
		t.Errorf("%s: %v, want it kept", other.dir, err)
	}
}
