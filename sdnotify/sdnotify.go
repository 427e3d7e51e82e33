// Package sdnotify tells systemd how the service is doing over the
// sd_notify(3) datagram socket: READY=1 once the readiness checks pass,
// WATCHDOG=1 at half the watchdog interval only while they keep passing (so
// systemd restarts an appliance that stalls), STATUS= with the failing
// check, STOPPING=1 on shutdown. Outside systemd (no NOTIFY_SOCKET) it does
// nothing.
package sdnotify

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"time"
)

// States systemd understands.
const (
	Ready    = "READY=1"
	Watchdog = "WATCHDOG=1"
	Stopping = "STOPPING=1"
)

// Intervals of the readiness checks: often until ready, so the start is not
// held up; afterwards at half the watchdog interval, or this when there is
// no watchdog (STATUS= stays current for systemctl status).
const (
	startPoll  = 100 * time.Millisecond
	statusPoll = 10 * time.Second
)

// Notifier speaks to systemd's notification socket.
type Notifier struct {
	conn     *net.UnixConn // nil outside systemd
	watchdog time.Duration // 0 when systemd watches nothing (or another process)
	ready    func() error
	log      *slog.Logger
}

// New reads NOTIFY_SOCKET, WATCHDOG_USEC and WATCHDOG_PID from env; ready
// is the appliance's readiness check. A socket that cannot be used is
// logged and leaves a notifier that does nothing.
func New(env func(string) (string, bool), ready func() error, log *slog.Logger) *Notifier {
	n := &Notifier{ready: ready, log: log}
	path, _ := env("NOTIFY_SOCKET")
	if path == "" {
		return n
	}
	if path[0] != '/' && path[0] != '@' { // '@': abstract namespace, which net understands
		log.Warn("sd_notify: NOTIFY_SOCKET is not a unix socket path; not notifying systemd", "socket", path)
		return n
	}
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		log.Warn("sd_notify: not notifying systemd", "err", err)
		return n
	}
	n.conn = conn
	usec, _ := env("WATCHDOG_USEC")
	pid, _ := env("WATCHDOG_PID")
	if us, err := strconv.ParseInt(usec, 10, 64); err == nil && us > 0 && (pid == "" || pid == strconv.Itoa(os.Getpid())) {
		n.watchdog = time.Duration(us) * time.Microsecond
	}
	return n
}

// Send sends state lines (e.g. Stopping) to systemd; nothing outside it.
func (n *Notifier) Send(states ...string) error {
	if n.conn == nil || len(states) == 0 {
		return nil
	}
	if _, err := n.conn.Write([]byte(strings.Join(states, "\n"))); err != nil {
		return fmt.Errorf("sd_notify: %w", err)
	}
	return nil
}

// Run runs the readiness checks until ctx ends: READY=1 the first time they
// pass, then WATCHDOG=1 each half watchdog interval in which they pass, and
// STATUS= whenever their answer changes.
func (n *Notifier) Run(ctx context.Context) error {
	if n.conn == nil {
		return nil
	}
	tick := time.NewTicker(startPoll)
	defer tick.Stop()
	ready, status, warned := false, "", false
	for {
		var states []string
		err := n.ready()
		if s := statusOf(err); s != status {
			status = s
			states = append(states, "STATUS="+s)
		}
		switch {
		case err != nil:
		case !ready:
			ready = true
			states = append(states, Ready)
			tick.Reset(statusPoll)
			if n.watchdog > 0 {
				tick.Reset(n.watchdog / 2)
			}
		case n.watchdog > 0:
			states = append(states, Watchdog)
		}
		if err := n.Send(states...); err != nil && !warned {
			n.log.Warn("cannot notify systemd", "err", err)
			warned = true
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// statusOf is the STATUS= text for a readiness answer, on one line as the
// protocol needs.
func statusOf(err error) string {
	if err == nil {
		return "ready"
	}
	return "not ready: " + strings.ReplaceAll(err.Error(), "\n", "; ")
}

// Close releases the socket.
func (n *Notifier) Close() error {
	if n.conn == nil {
		return nil
	}
	return n.conn.Close()
}
