package sdnotify

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// listen opens a unix datagram socket as systemd does and returns its path
// and the messages that reach it.
func listen(t *testing.T) (string, <-chan string) {
	t.Helper()
	dir, err := os.MkdirTemp("", "sdn") // short: socket paths end at 108 bytes
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	path := filepath.Join(dir, "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	msgs := make(chan string, 1024)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(msgs)
		buf := make([]byte, 4096)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				return
			}
			msgs <- string(buf[:n])
		}
	}()
	t.Cleanup(func() { conn.Close(); wg.Wait() })
	return path, msgs
}

// next waits for the next message.
func next(t *testing.T, msgs <-chan string) string {
	t.Helper()
	select {
	case m, ok := <-msgs:
		if !ok {
			t.Fatal("socket closed")
		}
		return m
	case <-time.After(10 * time.Second):
		t.Fatal("no message from the notifier within 10s")
	}
	return ""
}

// waitChecks waits until the notifier has run n more readiness checks.
func waitChecks(t *testing.T, checks *atomic.Int64, n int64) {
	t.Helper()
	want := checks.Load() + n
	deadline := time.Now().Add(10 * time.Second)
	for checks.Load() < want {
		if time.Now().After(deadline) {
			t.Fatalf("the notifier ran %d readiness checks in 10s, want %d", checks.Load()-want+n, n)
		}
		time.Sleep(time.Millisecond)
	}
}

func env(vars map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := vars[k]; return v, ok }
}

func TestReadyWatchdogOnlyWhileReady(t *testing.T) {
	path, msgs := listen(t)
	var failing atomic.Pointer[error]
	var checks atomic.Int64
	notReady := errors.New("buffer: not connected\nhttps: stalled")
	failing.Store(&notReady)
	ready := func() error {
		checks.Add(1)
		if e := failing.Load(); e != nil {
			return *e
		}
		return nil
	}
	n := New(env(map[string]string{"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "20000"}), ready, slog.Default())
	defer n.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- n.Run(ctx) }()

	if m := next(t, msgs); m != "STATUS=not ready: buffer: not connected; https: stalled" {
		t.Fatalf("first message %q, want the failing checks on one STATUS line", m)
	}
	// Not ready: several checks pass by without a message.
	waitChecks(t, &checks, 3)
	failing.Store(nil)
	if m := next(t, msgs); m != "STATUS=ready\nREADY=1" {
		t.Fatalf("got %q while starting, want STATUS=ready and READY=1 in one message", m)
	}
	for range 3 {
		if m := next(t, msgs); m != Watchdog {
			t.Fatalf("got %q while ready, want %s", m, Watchdog)
		}
	}
	// A stall: no WATCHDOG=1 from the check that fails until one passes again.
	failing.Store(&notReady)
	for {
		m := next(t, msgs)
		if strings.HasPrefix(m, "STATUS=not ready") {
			break
		}
		if m != Watchdog {
			t.Fatalf("got %q, want %s or the failing status", m, Watchdog)
		}
	}
	waitChecks(t, &checks, 3)
	failing.Store(nil)
	if m := next(t, msgs); m != "STATUS=ready\n"+Watchdog {
		t.Fatalf("got %q after the stall, want STATUS=ready and %s (READY=1 is said once)", m, Watchdog)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := n.Send(Stopping); err != nil {
		t.Fatal(err)
	}
	if m := next(t, msgs); m != Stopping {
		t.Fatalf("got %q, want %s", m, Stopping)
	}
}

func TestNoWatchdogForAnotherProcess(t *testing.T) {
	path, msgs := listen(t)
	n := New(env(map[string]string{"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "1000", "WATCHDOG_PID": strconv.Itoa(os.Getpid() + 1)}),
		func() error { return nil }, slog.Default())
	defer n.Close()
	if n.watchdog != 0 {
		t.Fatalf("watchdog %v for WATCHDOG_PID of another process", n.watchdog)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- n.Run(ctx) }()
	if m := next(t, msgs); m != "STATUS=ready\nREADY=1" {
		t.Fatalf("got %q, want STATUS=ready and READY=1", m)
	}
	cancel()
	<-done
}

func TestOutsideSystemdNothingHappens(t *testing.T) {
	for _, vars := range []map[string]string{
		{},
		{"NOTIFY_SOCKET": "vsock:2:1234"},
		{"NOTIFY_SOCKET": filepath.Join(t.TempDir(), "absent")},
	} {
		n := New(env(vars), func() error { t.Fatal("readiness checked outside systemd"); return nil }, slog.Default())
		if err := n.Send(Ready); err != nil {
			t.Errorf("%v: Send: %v", vars, err)
		}
		if err := n.Run(context.Background()); err != nil {
			t.Errorf("%v: Run: %v", vars, err)
		}
		if err := n.Close(); err != nil {
			t.Errorf("%v: Close: %v", vars, err)
		}
	}
}
