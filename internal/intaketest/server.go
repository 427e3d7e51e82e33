package intaketest

import (
	"crypto/tls"
	"encoding/pem"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// server is what every stand-in shares: a loopback TLS server that can
// stop listening and come back on the same address, and the record of the
// events it accepted and of the requests the real intake would not have
// understood.
type server struct {
	// URL is the server's base URL.
	URL string
	// CAFile is the PEM file of the certificate to trust (output.ca_file).
	CAFile string

	srv *httptest.Server

	recMu    sync.Mutex
	events   []Event
	problems []string
	// changed is closed, and replaced, each time events arrive.
	changed chan struct{}
}

// start serves h over TLS on loopback until the test ends.
func (s *server) start(t testing.TB, h http.Handler) {
	t.Helper()
	s.changed = make(chan struct{})
	s.srv = httptest.NewTLSServer(h)
	t.Cleanup(s.srv.Close)
	s.URL = s.srv.URL
	s.CAFile = filepath.Join(t.TempDir(), "intake-ca.pem")
	cert := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.srv.Certificate().Raw})
	if err := os.WriteFile(s.CAFile, cert, 0o600); err != nil {
		t.Fatal(err)
	}
}

// Down stops listening and closes every connection: senders meet a refused
// connection until Up.
func (s *server) Down() {
	s.srv.Listener.Close()
	s.CloseConnections()
}

// CloseConnections closes every connection open now, as an intake does
// with idle ones; it goes on listening.
func (s *server) CloseConnections() { s.srv.CloseClientConnections() }

// Up listens again on the address it had.
func (s *server) Up(t testing.TB) {
	t.Helper()
	var ln net.Listener
	var err error
	// The port was ours a moment ago; give the kernel a moment if needed.
	for range 50 {
		if ln, err = net.Listen("tcp", s.srv.Listener.Addr().String()); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("intake: listening again: %v", err)
	}
	s.srv.Listener = tls.NewListener(ln, s.srv.TLS)
	go func() { _ = s.srv.Config.Serve(s.srv.Listener) }()
}

// record keeps events accepted; it returns how many are kept in all.
func (s *server) record(events []Event) int {
	s.recMu.Lock()
	defer s.recMu.Unlock()
	s.events = append(s.events, events...)
	close(s.changed)
	s.changed = make(chan struct{})
	return len(s.events)
}

// problem records a request the real intake would not have understood,
// and answers it with status.
func (s *server) problem(w http.ResponseWriter, status int, format string, args ...any) {
	s.recMu.Lock()
	s.problems = append(s.problems, fmt.Sprintf(format, args...))
	s.recMu.Unlock()
	http.Error(w, fmt.Sprintf(format, args...), status)
}

// Events returns the events accepted so far.
func (s *server) Events() []Event {
	s.recMu.Lock()
	defer s.recMu.Unlock()
	return append([]Event(nil), s.events...)
}

// Problems lists requests the real intake would not have understood.
func (s *server) Problems() []string {
	s.recMu.Lock()
	defer s.recMu.Unlock()
	return append([]string(nil), s.problems...)
}

// WaitEvents waits until at least n events were accepted, failing the test
// after timeout; it returns the events accepted.
func (s *server) WaitEvents(t testing.TB, n int, timeout time.Duration) []Event {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		s.recMu.Lock()
		got, changed := len(s.events), s.changed
		s.recMu.Unlock()
		if got >= n {
			return s.Events()
		}
		select {
		case <-changed:
		case <-deadline.C:
			t.Fatalf("intake: %d events accepted after %s, want %d (problems: %v)", got, timeout, n, s.Problems())
		}
	}
}

// Serve serves h over TLS on loopback until the test ends, for an intake
// a test checks by itself; it returns the base URL and the CA file to
// trust.
func Serve(t testing.TB, h http.Handler) (url, caFile string) {
	t.Helper()
	var s server
	s.start(t, h)
	return s.URL, s.CAFile
}
