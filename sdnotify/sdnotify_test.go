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

	"github.com/flowgate/flowgate/internal/apptest"
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

func TestWatchdogFollowsLivenessStatusReadiness(t *testing.T) {
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
	var dead atomic.Bool
	var alive, hung atomic.Int64
	isAlive := func(ctx context.Context) error {
		if dead.Load() {
			hung.Add(1)
			<-ctx.Done() // a hang: the notifier's deadline ends it
			return ctx.Err()
		}
		alive.Add(1)
		return nil
	}
	var logs apptest.SyncBuffer
	n := New(env(map[string]string{"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "20000"}), ready, isAlive, slog.New(slog.NewTextHandler(&logs, nil)))
	defer n.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- n.Run(ctx) }()
	// fed counts the WATCHDOG=1 lines read.
	fed := 0
	read := func() string {
		t.Helper()
		m := next(t, msgs)
		fed += strings.Count(m, Watchdog)
		return m
	}

	if m := read(); m != "STATUS=not ready: buffer: not connected; https: stalled" {
		t.Fatalf("first message %q, want the failing checks on one STATUS line", m)
	}
	// Not ready yet: several checks pass by without a message.
	waitChecks(t, &checks, 3)
	failing.Store(nil)
	if m := read(); m != "STATUS=ready\nREADY=1" {
		t.Fatalf("got %q while starting, want STATUS=ready and READY=1 in one message", m)
	}
	if alive.Load() != 0 {
		t.Fatal("liveness checked before READY=1")
	}
	for range 3 {
		if m := read(); m != Watchdog {
			t.Fatalf("got %q while ready, want %s", m, Watchdog)
		}
	}
	// An outage: not ready, yet alive; the watchdog goes on being fed.
	failing.Store(&notReady)
	for {
		m := read()
		if m == "STATUS=not ready: buffer: not connected; https: stalled\n"+Watchdog {
			break
		}
		if m != Watchdog {
			t.Fatalf("got %q, want %s or the failing status with it", m, Watchdog)
		}
	}
	for range 5 {
		if m := read(); m != Watchdog {
			t.Fatalf("got %q while not ready but alive, want %s", m, Watchdog)
		}
	}
	failing.Store(nil)
	for {
		m := read()
		if m == "STATUS=ready\n"+Watchdog {
			break
		}
		if m != Watchdog {
			t.Fatalf("got %q after the outage, want STATUS=ready and %s (READY=1 is said once)", m, Watchdog)
		}
	}
	// A hang: the watchdog is not fed while liveness fails.
	dead.Store(true)
	deadline := time.Now().Add(10 * time.Second)
	for hung.Load() < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("liveness checked %d times in 10s while hung, want 3", hung.Load())
		}
		time.Sleep(time.Millisecond)
	}
	dead.Store(false)
	waitFed := alive.Load() + 2
	for alive.Load() < waitFed {
		if time.Now().After(deadline) {
			t.Fatal("liveness not checked again after the hang")
		}
		time.Sleep(time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := n.Send(Stopping); err != nil {
		t.Fatal(err)
	}
	// Every WATCHDOG=1 answers a liveness check that passed; none the
	// checks that hung.
	for read() != Stopping {
	}
	if int64(fed) != alive.Load() {
		t.Fatalf("%d WATCHDOG=1 for %d liveness checks that passed (and %d that hung)", fed, alive.Load(), hung.Load())
	}
	if c := strings.Count(logs.String(), "not alive"); c != 1 {
		t.Fatalf("the hang logged %d times, want once: %s", c, logs.String())
	}
}

func TestNoWatchdogForAnotherProcess(t *testing.T) {
	path, msgs := listen(t)
	n := New(env(map[string]string{"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "1000", "WATCHDOG_PID": strconv.Itoa(os.Getpid() + 1)}),
		func() error { return nil }, func(context.Context) error { return nil }, slog.Default())
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
		n := New(env(vars), func() error { t.Fatal("readiness checked outside systemd"); return nil },
			func(context.Context) error { t.Fatal("liveness checked outside systemd"); return nil }, slog.Default())
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
