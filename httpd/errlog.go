package httpd

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"time"
)

// maxRecentErrors is how many warnings and errors are kept per intake.
const maxRecentErrors = 10

// LoggedError is one warning or error logged about an intake.
type LoggedError struct {
	At      time.Time `json:"at"`
	Level   string    `json:"level"`
	Message string    `json:"message"`
}

// ErrorLog keeps the last warnings and errors logged with an "intake"
// attribute, per intake, for the status page: every component already
// logs what goes wrong with the intake it concerns.
type ErrorLog struct {
	mu     sync.Mutex
	recent map[string][]LoggedError
}

// NewErrorLog returns an empty log.
func NewErrorLog() *ErrorLog { return &ErrorLog{recent: map[string][]LoggedError{}} }

// Handler returns a handler that passes every record to next and keeps
// the warnings and errors.
func (l *ErrorLog) Handler(next slog.Handler) slog.Handler { return &errorHandler{log: l, next: next} }

// Recent returns an intake's last warnings and errors, oldest first.
func (l *ErrorLog) Recent(intake string) []LoggedError {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]LoggedError{}, l.recent[intake]...)
}

func (l *ErrorLog) add(intake string, e LoggedError) {
	l.mu.Lock()
	defer l.mu.Unlock()
	r := l.recent[intake]
	if len(r) == maxRecentErrors {
		r = append(r[:0], r[1:]...)
	}
	l.recent[intake] = append(r, e)
}

type errorHandler struct {
	log  *ErrorLog
	next slog.Handler
	// intake and attrs come from With.
	intake string
	attrs  []slog.Attr
}

func (h *errorHandler) Enabled(ctx context.Context, level slog.Level) bool {
	return level >= slog.LevelWarn || h.next.Enabled(ctx, level)
}

func (h *errorHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Level >= slog.LevelWarn {
		intake := h.intake
		var sb strings.Builder
		sb.WriteString(r.Message)
		write := func(a slog.Attr) {
			if a.Key == "intake" {
				intake = a.Value.String()
				return
			}
			sb.WriteString(" " + a.Key + "=" + a.Value.String())
		}
		for _, a := range h.attrs {
			write(a)
		}
		r.Attrs(func(a slog.Attr) bool { write(a); return true })
		if intake != "" {
			h.log.add(intake, LoggedError{At: r.Time, Level: r.Level.String(), Message: sb.String()})
		}
	}
	if !h.next.Enabled(ctx, r.Level) {
		return nil
	}
	return h.next.Handle(ctx, r)
}

func (h *errorHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	c := *h
	c.next = h.next.WithAttrs(attrs)
	c.attrs = append(append([]slog.Attr(nil), h.attrs...), attrs...)
	for _, a := range attrs {
		if a.Key == "intake" {
			c.intake = a.Value.String()
		}
	}
	return &c
}

func (h *errorHandler) WithGroup(name string) slog.Handler {
	c := *h
	c.next = h.next.WithGroup(name)
	return &c
}
