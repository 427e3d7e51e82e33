package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/flowgate/flowgate/appliance"
	"github.com/flowgate/flowgate/buffer"
	"github.com/flowgate/flowgate/config"
	"github.com/flowgate/flowgate/pipeline"
	"github.com/flowgate/flowgate/ship"
)

// `flowgate dlq list|resend` reads the dead letters (events the intake
// refused alone) or sends them again. The embedded store can be open in
// one process only: while the appliance runs, the command asks it over its
// monitoring listener (GET /dlq, POST /dlq/resend, answered to loopback
// clients only); when it is stopped, the command opens the store itself.
// On an external NATS cluster it always goes to the cluster.

// dlqArgs is what follows `flowgate dlq`.
const dlqArgs = "list|resend [--config FILE] [--intake NAME] [--progress N]"

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
	if err := knownIntake(c, intake); err != nil {
		return err
	}
	// Every shipper's key, routed keys' too, so that none shows in full.
	keys := map[string]string{}
	for _, in := range c.Intakes {
		keys[in.Name] = in.IntakeKey
		for _, sh := range pipeline.Shippings(in) {
			keys[sh.Intake.Name] = sh.Intake.IntakeKey
		}
	}
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return buf.DeadLetters(ctx, intake, func(dl buffer.DeadLetter) error {
		key := keys[dl.Intake]
		event := ship.Readable(dl.Event, []byte(key), []byte(config.MaskKey(key)))
		return enc.Encode(deadLetterLine{Seq: dl.Seq, Time: dl.Time, Intake: dl.Intake, Status: dl.Status, Reason: dl.Reason, Event: string(event)})
	})
}

// Progress of a resend: a line every defaultResendProgress dead letters
// (--progress) and at least every resendProgressEvery.
const (
	defaultResendProgress = 10_000
	resendProgressEvery   = 10 * time.Second
)

// resendDeadLetters sends back the dead letters of intake (of every
// intake of c when empty), saying how far it is every `every` dead
// letters and every resendProgressEvery, then how many went, to w.
func resendDeadLetters(ctx context.Context, buf *buffer.Buffer, c *config.Config, intake string, every int, w io.Writer) error {
	if err := knownIntake(c, intake); err != nil {
		return err
	}
	start := time.Now()
	total := 0
	for _, sh := range deadLetterOwners(c) {
		in := sh.Intake
		if intake != "" && in.Name != intake {
			continue
		}
		count, err := buf.DeadLetterCount(ctx, in.Name)
		if err != nil {
			return fmt.Errorf("intake %q: %w", in.Name, err)
		}
		if count == 0 {
			continue
		}
		fmt.Fprintf(w, "intake %q: sending %d dead letters again\n", in.Name, count)
		began, said, saidAt := time.Now(), 0, time.Now()
		n, err := buf.ResendDeadLetters(ctx, in.Name, sh.Subject, func(n int) {
			if n-said < every && time.Since(saidAt) < resendProgressEvery {
				return
			}
			said, saidAt = n, time.Now()
			fmt.Fprintf(w, "intake %q: %d of %d sent again, %.0f/s\n", in.Name, n, count, float64(n)/time.Since(began).Seconds())
		})
		total += n
		if n > 0 || err == nil {
			fmt.Fprintf(w, "intake %q: dead letters sent again: %d\n", in.Name, n)
		}
		if err != nil {
			return fmt.Errorf("intake %q: %w", in.Name, err)
		}
	}
	fmt.Fprintf(w, "dead letters sent again: %d in total, in %s\n", total, time.Since(start).Round(time.Millisecond))
	return nil
}

// knownIntake refuses an intake name the configuration does not have,
// saying which it has; empty means every intake.
func knownIntake(c *config.Config, name string) error {
	if name == "" {
		return nil
	}
	var names []string
	for _, sh := range deadLetterOwners(c) {
		if sh.Intake.Name == name {
			return nil
		}
		names = append(names, strconv.Quote(sh.Intake.Name))
	}
	return fmt.Errorf("%s has no intake named %q; its intakes: %s", c.Source, name, strings.Join(names, ", "))
}

// deadLetterOwners are the shippers whose dead letters resend puts back
// where they ship from: each intake's own key, each key its routes send
// to (Shared/paloalto) and each other output (Firewall#loggly); an
// intake without a key of its own still answers to its name.
func deadLetterOwners(c *config.Config) []pipeline.Shipping {
	var out []pipeline.Shipping
	for _, in := range c.Intakes {
		if in.IntakeKey == "" {
			out = append(out, pipeline.Shipping{Intake: in, Subject: buffer.Subject(in.Name)})
		}
		out = append(out, pipeline.Shippings(in)...)
	}
	return out
}

// dlqErrorTrailer carries a failure that came after the answer's first
// lines (its status was sent with them).
const dlqErrorTrailer = "Flowgate-Error"

// handleDeadLetters serves /dlq and /dlq/resend on the monitoring listener.
func handleDeadLetters(a *appliance.Appliance) {
	serve := func(fn func(ctx context.Context, c *config.Config, q url.Values, w io.Writer) error) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !fromLoopback(r) {
				http.Error(w, "dead letters are served to loopback clients only", http.StatusForbidden)
				return
			}
			c := a.Config()
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			w.Header().Set("Trailer", dlqErrorTrailer)
			out := &flushWriter{w: w}
			if err := fn(r.Context(), c, r.URL.Query(), out); err != nil {
				if !out.wrote {
					w.Header().Del("Trailer")
					http.Error(w, err.Error(), http.StatusInternalServerError)
					return
				}
				w.Header().Set(dlqErrorTrailer, err.Error())
			}
		})
	}
	a.Handle("GET /dlq", serve(func(ctx context.Context, c *config.Config, q url.Values, w io.Writer) error {
		// Sent in large writes, or whole with its status if it fails early.
		bw := bufio.NewWriterSize(w, 64<<10)
		if err := listDeadLetters(ctx, a.Buffer(), c, q.Get("intake"), bw); err != nil {
			return err
		}
		return bw.Flush()
	}))
	a.Handle("POST /dlq/resend", serve(func(ctx context.Context, c *config.Config, q url.Values, w io.Writer) error {
		every, err := strconv.Atoi(q.Get("progress"))
		if err != nil || every <= 0 {
			every = defaultResendProgress
		}
		return resendDeadLetters(ctx, a.Buffer(), c, q.Get("intake"), every, w)
	}))
}

// flushWriter sends each write at once: a resend's progress is seen as it
// goes.
type flushWriter struct {
	w     http.ResponseWriter
	wrote bool
}

func (f *flushWriter) Write(p []byte) (int, error) {
	f.wrote = true
	n, err := f.w.Write(p)
	if err == nil {
		err = http.NewResponseController(f.w).Flush()
	}
	return n, err
}

func fromLoopback(r *http.Request) bool {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// dlq runs `flowgate dlq list|resend`.
func dlq(o *options, args []string, stdout, stderr io.Writer) error {
	if len(args) != 1 || (args[0] != "list" && args[0] != "resend") {
		fmt.Fprintf(stderr, "usage: flowgate dlq %s (flowgate help dlq says more)\n", dlqArgs)
		return errUsage
	}
	if o.progress <= 0 {
		fmt.Fprintf(stderr, "flowgate dlq: --progress %d: expected a number of events above 0\n", o.progress)
		return errUsage
	}
	sub := args[0]
	return withConfig(o, func(c *config.Config) error {
		// Refused before the store is opened or the appliance asked.
		if err := knownIntake(c, o.intake); err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(context.Background(), dlqTimeout)
		defer cancel()
		quiet := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
		buf, err := buffer.Open(ctx, appliance.BufferConfig(c), quiet)
		if errors.Is(err, buffer.ErrInUse) {
			return dlqOverHTTP(ctx, c, sub, o, stdout)
		}
		if err != nil {
			return err
		}
		defer buf.Close()
		if sub == "resend" {
			return resendDeadLetters(ctx, buf, c, o.intake, o.progress, stdout)
		}
		return listDeadLetters(ctx, buf, c, o.intake, stdout)
	})
}

// dlqOverHTTP asks the running appliance.
func dlqOverHTTP(ctx context.Context, c *config.Config, sub string, o *options, stdout io.Writer) error {
	method, path := http.MethodGet, "/dlq"
	if sub == "resend" {
		method, path = http.MethodPost, "/dlq/resend"
	}
	u := url.URL{Scheme: "http", Host: c.HTTP.Listen, Path: path}
	q := url.Values{"progress": {strconv.Itoa(o.progress)}}
	if o.intake != "" {
		q.Set("intake", o.intake)
	}
	u.RawQuery = q.Encode()
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
	if _, err := io.Copy(stdout, resp.Body); err != nil {
		return err
	}
	if msg := resp.Trailer.Get(dlqErrorTrailer); msg != "" {
		return fmt.Errorf("the appliance: %s", msg)
	}
	return nil
}
