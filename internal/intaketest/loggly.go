package intaketest

import (
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
)

// Loggly's bulk endpoint limits.
const (
	LogglyMaxRequestBytes = 5 << 20
	LogglyMaxEventBytes   = 1 << 20
)

// Loggly is a local stand-in for Loggly's bulk endpoint, over TLS:
// POST /bulk/TOKEN/tag/TAGS/, events one a line, at most 5 MB a request
// and 1 MB an event, answered {"response" : "ok"}. Events are recorded
// with the token of their request as Key.
type Loggly struct {
	server
	// Token is the customer token the path must carry.
	Token string
}

// NewLoggly starts the endpoint on loopback for token; it stops with the
// test.
func NewLoggly(t testing.TB, token string) *Loggly {
	t.Helper()
	l := &Loggly{Token: token}
	l.start(t, http.HandlerFunc(l.serve))
	return l
}

// Output is the endpoint as an output of intakes.yaml (preset loggly on
// this server), in YAML flow style.
func (l *Loggly) Output() string {
	return fmt.Sprintf("{transport: http, preset: loggly, url: %q, ca_file: %q}", l.URL+"/bulk/{key}/tag/flowgate/", l.CAFile)
}

func (l *Loggly) serve(w http.ResponseWriter, r *http.Request) {
	token, tags, ok := strings.Cut(strings.TrimPrefix(r.URL.Path, "/bulk/"), "/tag/")
	switch {
	case r.Method != http.MethodPost || !strings.HasPrefix(r.URL.Path, "/bulk/") || !ok || tags == "":
		l.problem(w, http.StatusNotFound, "%s %s: only POST /bulk/TOKEN/tag/TAGS/ is served", r.Method, r.URL.Path)
		return
	case token != l.Token:
		// Never a token in full in a message, even a wrong one.
		l.problem(w, http.StatusForbidden, "the path's token (%d characters) is not the customer's", len(token))
		return
	}
	if ct := r.Header.Get("Content-Type"); ct != "text/plain" && ct != "application/json" {
		l.problem(w, http.StatusBadRequest, "Content-Type %q", ct)
		return
	}
	body := io.Reader(http.MaxBytesReader(w, r.Body, LogglyMaxRequestBytes))
	if r.Header.Get("Content-Encoding") == "gzip" {
		gz, err := gzip.NewReader(body)
		if err != nil {
			l.problem(w, http.StatusBadRequest, "gzip: %v", err)
			return
		}
		body = gz
	}
	data, err := io.ReadAll(io.LimitReader(body, LogglyMaxRequestBytes+1))
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge) || len(data) > LogglyMaxRequestBytes:
		l.problem(w, http.StatusRequestEntityTooLarge, "a request over %d bytes", LogglyMaxRequestBytes)
		return
	case err != nil:
		l.problem(w, http.StatusBadRequest, "reading the body: %v", err)
		return
	}
	var events []Event
	for _, line := range strings.Split(strings.TrimSuffix(string(data), "\n"), "\n") {
		if len(line) > LogglyMaxEventBytes {
			l.problem(w, http.StatusRequestEntityTooLarge, "an event of %d bytes, over %d", len(line), LogglyMaxEventBytes)
			return
		}
		if line != "" {
			events = append(events, Event{Key: token, Event: line})
		}
	}
	l.record(events)
	w.Header().Set("Content-Type", "application/json")
	_, _ = io.WriteString(w, `{"response" : "ok"}`)
}
