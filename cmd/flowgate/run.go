package main

import (
	"context"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/flowgate/flowgate/appliance"
	"github.com/flowgate/flowgate/config"
	"github.com/flowgate/flowgate/sdnotify"
)

// newLogger logs to w at the level and in the format of l (validated
// with the configuration): info and text unless told otherwise.
func newLogger(l config.Log, w io.Writer) *slog.Logger {
	level := map[string]slog.Level{"debug": slog.LevelDebug, "warn": slog.LevelWarn, "error": slog.LevelError}[l.Level]
	opts := &slog.HandlerOptions{Level: level}
	if l.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// exit ends the process when a stop overruns shutdown.timeout.
var exit = os.Exit

// runAppliance runs until SIGINT or SIGTERM, or until a component fails;
// SIGHUP reloads the configuration file.
func runAppliance(c *config.Config, stdout, stderr io.Writer) error {
	log := newLogger(c.Log, stderr)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	setMemoryTargets(ctx, c, log)

	var notify *sdnotify.Notifier
	var stopTimer *time.Timer
	a, err := appliance.New(ctx, c, appliance.Options{Stdout: stdout, Logger: log, Version: buildVersion(),
		// Called by Run, on this goroutine.
		Stopping: func() { stopTimer = stopping(notify, c.Shutdown.Timeout, log) }})
	if err != nil {
		return err
	}
	log = a.Log()
	handleDeadLetters(a)
	notify = sdnotify.New(os.LookupEnv, a.Ready, alive(a), log)
	defer notify.Close()
	notifyCtx, stopNotify := context.WithCancel(context.Background())
	notifyDone := make(chan error, 1)
	go func() { notifyDone <- notify.Run(notifyCtx) }()
	// SIGHUP reloads beside the run: readers of the appliance never wait
	// on a reload, and a reload never waits on them.
	reloads := make(chan struct{})
	go func() {
		defer close(reloads)
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				reload(a, c.Path, log)
			}
		}
	}()
	err = a.Run(ctx)
	stop()
	<-reloads
	stopNotify()
	if e := <-notifyDone; e != nil && err == nil {
		err = e
	}
	if stopTimer != nil {
		stopTimer.Stop()
	}
	return err
}

// stopping tells systemd the stop began and bounds its length by ending
// the process when it overruns timeout.
func stopping(notify *sdnotify.Notifier, timeout time.Duration, log *slog.Logger) *time.Timer {
	if notify != nil {
		if err := notify.Send(sdnotify.Stopping); err != nil {
			log.Warn("cannot notify systemd", "err", err)
		}
	}
	return time.AfterFunc(timeout, func() {
		log.Error("the stop took longer than shutdown.timeout: exiting now; what was not acknowledged is shipped after the next start", "timeout", timeout)
		exit(1)
	})
}

// reload reads the configuration file again and has the appliance run
// it; a file that is refused changes nothing. This is the place for what
// else a SIGHUP renews.
func reload(a *appliance.Appliance, path string, log *slog.Logger) {
	a.RenewTLS()
	if path == "" {
		log.Warn("SIGHUP: running the embedded configuration, there is no file to read again")
		return
	}
	c, err := config.Load(path, os.LookupEnv)
	if err != nil {
		log.Error("configuration not reloaded: the file is refused, the running configuration stays", "config", path, "err", err)
		return
	}
	_ = a.Reload(c) // the appliance logs why it refused
}
