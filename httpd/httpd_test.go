package httpd

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// serve starts a listener on loopback, with the profiler when pprof is set,
// and returns its base URL; it stops with the test.
func serve(t *testing.T, pprof bool) string {
	t.Helper()
	s, err := New("127.0.0.1:0", prometheus.NewRegistry(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if pprof {
		s.MountPProf()
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	return "http://" + s.Addr().String()
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(body)
}

func TestProfilerIsOptIn(t *testing.T) {
	off := serve(t, false)
	if status, _ := get(t, off+"/debug/pprof/cmdline"); status != http.StatusNotFound {
		t.Fatalf("profiler off: /debug/pprof/cmdline answered %d", status)
	}
	if status, _ := get(t, off+"/healthz"); status != http.StatusOK {
		t.Fatalf("/healthz answered %d", status)
	}

	on := serve(t, true)
	status, body := get(t, on+"/debug/pprof/cmdline")
	if status != http.StatusOK || !strings.Contains(body, "httpd.test") {
		t.Fatalf("profiler on: /debug/pprof/cmdline answered %d %q", status, body)
	}
	status, body = get(t, on+"/debug/pprof/goroutine?debug=1")
	if status != http.StatusOK || !strings.Contains(body, "goroutine profile:") {
		t.Fatalf("profiler on: goroutine profile answered %d %.80q", status, body)
	}
	if status, _ := get(t, on+"/metrics"); status != http.StatusOK {
		t.Fatalf("profiler on: /metrics answered %d", status)
	}
}
