// Package intaketest provides local stand-ins for the remote intake, which
// tests cannot reach: an HTTPS /jsons receiver that checks every request as
// the real intake would, records the events it accepts, and can be told to
// refuse for a while, to refuse some events, to answer slowly, or to stop
// listening and come back on the same address.
package intaketest

import (
	"compress/gzip"
	"crypto/tls"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"
)

// Request is one request the intake answered.
type Request struct {
	At     time.Time
	Events int
	Status int
	// Bytes is the size of the body as sent (compressed).
	Bytes int64
}

// Event is one accepted event and the key it came with.
type Event struct {
	Key   string
	Event string
}

// HTTPS is a local /jsons intake over TLS.
type HTTPS struct {
	// URL is the base URL to configure as output.endpoint.
	URL string
	// CAFile is the PEM file of the certificate to trust (output.ca_file).
	CAFile string

	srv *httptest.Server

	mu       sync.Mutex
	events   []Event
	requests []Request
	refused  int
	problems []string
	// refuse, when set, answers a status instead of accepting.
	refuse func(request int) (status int, retryAfter string)
	// judge, when set, answers a status for the events of a request.
	judge func(events []string) (status int)
	// delay is how long each answer waits.
	delay time.Duration
	// inFlight counts requests being answered; arrived is when the
	// last one came.
	inFlight int
	arrived  time.Time
	changed  chan struct{}
}

// NewHTTPS starts an intake on loopback; it stops with the test.
func NewHTTPS(t testing.TB) *HTTPS {
	t.Helper()
	in := &HTTPS{changed: make(chan struct{})}
	in.srv = httptest.NewTLSServer(http.HandlerFunc(in.serve))
	t.Cleanup(in.srv.Close)
	in.URL = in.srv.URL
	in.CAFile = filepath.Join(t.TempDir(), "intake-ca.pem")
	cert := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: in.srv.Certificate().Raw})
	if err := os.WriteFile(in.CAFile, cert, 0o600); err != nil {
		t.Fatal(err)
	}
	return in
}

// Output is the intake as an output of intakes.yaml, in YAML flow style.
func (in *HTTPS) Output() string {
	return fmt.Sprintf("{transport: https, endpoint: %q, ca_file: %q}", in.URL, in.CAFile)
}

// Refuse makes the intake answer with fn's status (and Retry-After, when
// not empty) for each request number from 1 on; a status of 0 accepts.
func (in *HTTPS) Refuse(fn func(request int) (status int, retryAfter string)) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.refuse = fn
}

// RefuseEvents makes the intake answer with fn's status for the events of
// each request, called as the request arrives; a status of 0 accepts them. The real intake answers 413 to
// a body too large and 400 to an event it cannot take.
func (in *HTTPS) RefuseEvents(fn func(events []string) (status int)) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.judge = fn
}

// Delay makes each answer wait d.
func (in *HTTPS) Delay(d time.Duration) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.delay = d
}

// Down stops listening and closes every connection: senders meet a refused
// connection until Up.
func (in *HTTPS) Down() {
	in.srv.Listener.Close()
	in.srv.CloseClientConnections()
}

// Up listens again on the address it had.
func (in *HTTPS) Up(t testing.TB) {
	t.Helper()
	var ln net.Listener
	var err error
	// The port was ours a moment ago; give the kernel a moment if needed.
	for range 50 {
		if ln, err = net.Listen("tcp", in.srv.Listener.Addr().String()); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("intake: listening again: %v", err)
	}
	in.srv.Listener = tls.NewListener(ln, in.srv.TLS)
	go func() { _ = in.srv.Config.Serve(in.srv.Listener) }()
}

func (in *HTTPS) problem(w http.ResponseWriter, format string, args ...any) {
	in.mu.Lock()
	in.problems = append(in.problems, fmt.Sprintf(format, args...))
	in.mu.Unlock()
	http.Error(w, fmt.Sprintf(format, args...), http.StatusBadRequest)
}

func (in *HTTPS) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/jsons" {
		in.problem(w, "%s %s: only POST /jsons is served", r.Method, r.URL.Path)
		return
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		in.problem(w, "Content-Type %q", ct)
		return
	}
	key := r.Header.Get("X-SEKOIAIO-INTAKE-KEY")
	if key == "" {
		in.problem(w, "no X-SEKOIAIO-INTAKE-KEY")
		return
	}
	body := io.Reader(r.Body)
	if r.Header.Get("Content-Encoding") == "gzip" {
		gz, err := gzip.NewReader(r.Body)
		if err != nil {
			in.problem(w, "gzip: %v", err)
			return
		}
		body = gz
	}
	var events []string
	if err := json.NewDecoder(body).Decode(&events); err != nil {
		in.problem(w, "body is not a JSON array of strings: %v", err)
		return
	}
	in.mu.Lock()
	delay, judge := in.delay, in.judge
	in.inFlight++
	in.arrived = time.Now()
	in.mu.Unlock()
	defer func() {
		in.mu.Lock()
		in.inFlight--
		in.mu.Unlock()
	}()
	verdict := 0
	if judge != nil {
		verdict = judge(events)
	}
	if delay > 0 {
		time.Sleep(delay)
	}
	in.mu.Lock()
	in.requests = append(in.requests, Request{At: time.Now(), Events: len(events), Status: http.StatusOK, Bytes: r.ContentLength})
	req := &in.requests[len(in.requests)-1]
	n, refuse := len(in.requests), in.refuse
	if verdict != 0 {
		req.Status = verdict
		in.refused++
		in.mu.Unlock()
		http.Error(w, `{"message":"an event was refused by the test"}`, verdict)
		return
	}
	if refuse != nil {
		if status, after := refuse(n); status != 0 {
			req.Status = status
			in.refused++
			in.mu.Unlock()
			if after != "" {
				w.Header().Set("Retry-After", after)
			}
			http.Error(w, `{"message":"refused by the test"}`, status)
			return
		}
	}
	ids := make([]string, len(events))
	for i, e := range events {
		in.events = append(in.events, Event{Key: key, Event: e})
		ids[i] = "id-" + strconv.Itoa(len(in.events))
	}
	close(in.changed)
	in.changed = make(chan struct{})
	in.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string][]string{"event_ids": ids})
}

// Events returns the events accepted so far.
func (in *HTTPS) Events() []Event {
	in.mu.Lock()
	defer in.mu.Unlock()
	return append([]Event(nil), in.events...)
}

// Requests returns the requests answered so far, in order.
func (in *HTTPS) Requests() []Request {
	in.mu.Lock()
	defer in.mu.Unlock()
	return append([]Request(nil), in.requests...)
}

// Quiet says whether no request is being answered and none arrived for d:
// a sender that was killed has nothing left on its way.
func (in *HTTPS) Quiet(d time.Duration) bool {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.inFlight == 0 && time.Since(in.arrived) >= d
}

// Refused is the number of requests refused on purpose.
func (in *HTTPS) Refused() int {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.refused
}

// Problems lists requests the real intake would not have understood.
func (in *HTTPS) Problems() []string {
	in.mu.Lock()
	defer in.mu.Unlock()
	return append([]string(nil), in.problems...)
}

// WaitEvents waits until at least n events were accepted, failing the test
// after timeout; it returns the events accepted.
func (in *HTTPS) WaitEvents(t testing.TB, n int, timeout time.Duration) []Event {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		in.mu.Lock()
		got, changed := len(in.events), in.changed
		in.mu.Unlock()
		if got >= n {
			return in.Events()
		}
		select {
		case <-changed:
		case <-deadline.C:
			t.Fatalf("intake: %d events accepted after %s, want %d (problems: %v)", got, timeout, n, in.Problems())
		}
	}
}
