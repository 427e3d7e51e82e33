// Package appliancetest runs the appliance in a test's process, as
// `flowgate run --config` runs it, with the readers of internal/apptest.
package appliancetest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/flowgate/flowgate/appliance"
	"github.com/flowgate/flowgate/config"
	"github.com/flowgate/flowgate/internal/apptest"
)

// App is the appliance run in the test's process on a configuration
// file, as `flowgate run --config` runs it, without the process around it
// (signals, systemd, the memory limit, the bound on the stop). Its
// monitoring listener may be on port 0: HTTP is the address bound.
type App struct {
	apptest.Monitor
	*appliance.Appliance
	// Path is the configuration file; Reload reads it again.
	Path           string
	Stdout, Stderr *apptest.SyncBuffer
	env            config.Env
	stop           context.CancelFunc
	done           chan struct{}
	err            error
}

// Start runs the appliance on the file at path, with env
// ("NAME=value") over the process's environment, and waits until /readyz
// answers 200. It is stopped with the test.
func Start(t testing.TB, path string, env ...string) *App {
	t.Helper()
	return StartWith(t, path, appliance.Options{}, env...)
}

// StartWith is Start with opts (ProgressEvery, say); the logger, the
// output and the version are the test's.
func StartWith(t testing.TB, path string, opts appliance.Options, env ...string) *App {
	t.Helper()
	a := &App{Path: path, Stdout: &apptest.SyncBuffer{}, Stderr: &apptest.SyncBuffer{}, done: make(chan struct{}), env: lookupEnv(env)}
	c, err := config.Load(path, a.env)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(a.Stderr, nil))
	opts.Stdout, opts.Logger, opts.Version = a.Stdout, log, "test"
	a.Appliance, err = appliance.New(context.Background(), c, opts)
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			// Which socket holds it, to tell a test's port clash from
			// another process's.
			out, _ := exec.Command("ss", "-tuapn").CombinedOutput()
			t.Logf("sockets:\n%s", out)
		}
		t.Fatalf("appliance: %v", err)
	}
	a.Monitor = apptest.NewMonitor(t, a.Addr().String())
	ctx, stop := context.WithCancel(context.Background())
	a.stop = stop
	go func() {
		defer close(a.done)
		a.err = a.Run(ctx)
	}()
	t.Cleanup(func() {
		if err := a.Stop(60 * time.Second); err != nil {
			t.Errorf("appliance: %v", err)
		}
		if t.Failed() {
			log := a.Stderr.String()
			t.Logf("appliance log (the end):\n%s", log[max(len(log)-8000, 0):])
		}
	})
	a.WaitReady(30 * time.Second)
	return a
}

// lookupEnv is the process's environment with env ("NAME=value") over it.
func lookupEnv(env []string) config.Env {
	m := map[string]string{}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		m[k] = v
	}
	return func(name string) (string, bool) {
		if v, ok := m[name]; ok {
			return v, true
		}
		return os.LookupEnv(name)
	}
}

// WaitReady polls /readyz until it answers 200, failing the test after
// timeout or if the appliance stopped.
func (a *App) WaitReady(timeout time.Duration) {
	a.Monitor.WaitReady(timeout, a.done, &a.err, a.Stderr)
}

// Reload does what SIGHUP does: it reads the TLS files and the
// configuration file again, and runs the configuration.
func (a *App) Reload() error {
	a.RenewTLS()
	c, err := config.Load(a.Path, a.env)
	if err != nil {
		return err
	}
	return a.Appliance.Reload(c)
}

// Stop stops the appliance and waits for the end of its Run, failing
// after timeout.
func (a *App) Stop(timeout time.Duration) error {
	a.stop()
	select {
	case <-a.done:
		return a.err
	case <-time.After(timeout):
		return fmt.Errorf("the appliance did not stop within %s", timeout)
	}
}

// Done is closed when the appliance has stopped.
func (a *App) Done() <-chan struct{} { return a.done }
