package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"time"

	"github.com/flowgate/flowgate/appliance"
	"github.com/flowgate/flowgate/buffer"
	"github.com/flowgate/flowgate/config"
	"github.com/flowgate/flowgate/ship"
)

// `flowgate dlq list|resend` reads the dead letters (events the intake
// refused alone) or sends them again. The embedded store can be open in
// one process only: while the appliance runs, the command asks it over its
// monitoring listener (GET /dlq, POST /dlq/resend, answered to loopback
// clients only); when it is stopped, the command opens the store itself.
// On an external NATS cluster it always goes to the cluster.

const dlqUsage = `Usage:
  flowgate dlq list   [--config FILE] [--intake NAME]   print the dead letters, one JSON object a line
  flowgate dlq resend [--config FILE] [--intake NAME]   send them to the intake again
`

// dlqTimeout bounds one dlq command.
const dlqTimeout = 5 * time.Minute

// deadLetterLine is how a dead letter is printed.
type deadLetterLine struct {
	Seq    uint64    `json:"seq"`
	Time   time.Time `json:"time"`
	Intake string    `json:"intake"`
	Status int       `json:"status"`
	Reason string    `json:"reason"`
	Event  string    `json:"event"`
}

// listDeadLetters writes the dead letters of intake (of every intake when
// empty) to w, intake keys masked.
func listDeadLetters(ctx context.Context, buf *buffer.Buffer, c *config.Config, intake string, w io.Writer) error {
	keys := map[string]string{}
	for _, in := range c.Intakes {
		keys[in.Name] = in.IntakeKey
	}
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return buf.DeadLetters(ctx, intake, func(dl buffer.DeadLetter) error {
		key := keys[dl.Intake]
		event := ship.Readable(dl.Event, []byte(key), []byte(config.MaskKey(key)))
		return enc.Encode(deadLetterLine{Seq: dl.Seq, Time: dl.Time, Intake: dl.Intake, Status: dl.Status, Reason: dl.Reason, Event: string(event)})
	})
}

// resendDeadLetters sends back the dead letters of intake (of every
// intake of c when empty) and says how many went to w.
func resendDeadLetters(ctx context.Context, buf *buffer.Buffer, c *config.Config, intake string, w io.Writer) error {
	var names []string
	for _, in := range c.Intakes {
		if intake == "" || in.Name == intake {
			names = append(names, in.Name)
		}
	}
	if len(names) == 0 {
		return fmt.Errorf("%s has no intake named %q", c.Source, intake)
	}
	for _, name := range names {
		n, err := buf.ResendDeadLetters(ctx, name)
		if n > 0 || err == nil {
			fmt.Fprintf(w, "intake %q: dead letters sent again: %d\n", name, n)
		}
		if err != nil {
			return fmt.Errorf("intake %q: %w", name, err)
		}
	}
	return nil
}

// handleDeadLetters serves /dlq and /dlq/resend on the monitoring listener.
func handleDeadLetters(a *appliance.Appliance) {
	serve := func(fn func(context.Context, *buffer.Buffer, *config.Config, string, io.Writer) error) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !fromLoopback(r) {
				http.Error(w, "dead letters are served to loopback clients only", http.StatusForbidden)
				return
			}
			// Written whole at the end, so that a failure gets its status.
			var out bytes.Buffer
			if err := fn(r.Context(), a.Buffer(), a.Config(), r.URL.Query().Get("intake"), &out); err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			_, _ = w.Write(out.Bytes())
		})
	}
	a.Handle("GET /dlq", serve(listDeadLetters))
	a.Handle("POST /dlq/resend", serve(resendDeadLetters))
}

func fromLoopback(r *http.Request) bool {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// dlq runs `flowgate dlq`.
func dlq(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || (args[0] != "list" && args[0] != "resend") {
		fmt.Fprint(stderr, dlqUsage)
		return errUsage
	}
	sub := args[0]
	var intake string
	return withConfig("dlq "+sub, args[1:], stderr, func(fs *flag.FlagSet) {
		fs.StringVar(&intake, "intake", "", "only this intake's dead letters")
	}, func(c *config.Config) error {
		ctx, cancel := context.WithTimeout(context.Background(), dlqTimeout)
		defer cancel()
		fn := listDeadLetters
		if sub == "resend" {
			fn = resendDeadLetters
		}
		quiet := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
		buf, err := buffer.Open(ctx, appliance.BufferConfig(c), quiet)
		if errors.Is(err, buffer.ErrInUse) {
			return dlqOverHTTP(ctx, c, sub, intake, stdout)
		}
		if err != nil {
			return err
		}
		defer buf.Close()
		return fn(ctx, buf, c, intake, stdout)
	})
}

// dlqOverHTTP asks the running appliance.
func dlqOverHTTP(ctx context.Context, c *config.Config, sub, intake string, stdout io.Writer) error {
	method, path := http.MethodGet, "/dlq"
	if sub == "resend" {
		method, path = http.MethodPost, "/dlq/resend"
	}
	u := url.URL{Scheme: "http", Host: c.HTTP.Listen, Path: path}
	if intake != "" {
		u.RawQuery = url.Values{"intake": {intake}}.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("the store %s is in use, and the appliance's listener does not answer: %w", c.Buffer.Dir, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return fmt.Errorf("the appliance answered %s: %s", resp.Status, bytes.TrimSpace(msg))
	}
	_, err = io.Copy(stdout, resp.Body)
	return err
}
