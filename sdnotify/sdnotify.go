// Package sdnotify tells systemd how the service is doing over the
// sd_notify(3) datagram socket: READY=1 once the readiness checks pass,
// WATCHDOG=1 at half the watchdog interval while the process is alive
// (so systemd restarts a hung appliance, never one waiting out an outage),
// STATUS= with readiness and the failing check, STOPPING=1 on shutdown.
// Outside systemd (no NOTIFY_SOCKET) it does nothing.
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
	alive    func(context.Context) error
	log      *slog.Logger
}

// New reads NOTIFY_SOCKET, WATCHDOG_USEC and WATCHDOG_PID from env. ready
// is the appliance's readiness check, which an outage fails; alive its
// liveness check, which fails only when the process no longer serves (it
// gets half the watchdog interval to answer). A socket that cannot be used
// is logged and leaves a notifier that does nothing.
func New(env func(string) (string, bool), ready func() error, alive func(context.Context) error, log *slog.Logger) *Notifier {
	n := &Notifier{ready: ready, alive: alive, log: log}
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

// Run runs the checks until ctx ends: READY=1 the first time the readiness
// checks pass, STATUS= whenever their answer changes, and from READY=1 on,
// WATCHDOG=1 each half watchdog interval in which the process is alive,
// ready or not.
func (n *Notifier) Run(ctx context.Context) error {
	if n.conn == nil {
		return nil
	}
	tick := time.NewTicker(startPoll)
	defer tick.Stop()
	started, status, warned := false, "", false
	var dead error
	for {
		var states []string
		err := n.ready()
		if s := statusOf(err); s != status {
			status = s
			states = append(states, "STATUS="+s)
		}
		switch {
		case !started && err == nil:
			started = true
			states = append(states, Ready)
			tick.Reset(statusPoll)
			if n.watchdog > 0 {
				tick.Reset(n.watchdog / 2)
			}
		case started && n.watchdog > 0:
			actx, cancel := context.WithTimeout(ctx, n.watchdog/2)
			err := n.alive(actx)
			cancel()
			if err == nil {
				states = append(states, Watchdog)
			} else if dead == nil && ctx.Err() == nil {
				n.log.Error("not alive: systemd's watchdog is no longer fed and restarts flowgate if this lasts", "err", err)
			}
			dead = err
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
