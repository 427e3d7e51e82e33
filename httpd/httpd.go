// Package httpd serves the monitoring listener: /metrics (Prometheus),
// /healthz (the process answers), /readyz (every readiness check passes;
// the body says which fails and why) and, when asked, Go's profiler.
package httpd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Check reports nil when its component is ready.
type Check func() error

// Server is the monitoring listener.
type Server struct {
	srv *http.Server
	mux *http.ServeMux
	ln  net.Listener
	log *slog.Logger

	mu     sync.RWMutex
	checks map[string]Check
}

// New binds addr now, so that a port in use fails the start.
func New(addr string, reg *prometheus.Registry, log *slog.Logger) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("http listener %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	s := &Server{mux: mux, ln: ln, log: log, checks: map[string]Check{}}
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", s.readyz)
	s.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	return s, nil
}

// MountPProf serves Go's profiler under /debug/pprof/ (CPU and heap
// profiles, goroutines, traces). Call it before Run.
func (s *Server) MountPProf() {
	s.mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	s.mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
	s.mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	s.mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
	s.mux.HandleFunc("POST /debug/pprof/symbol", pprof.Symbol)
	s.mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
}

// Addr is the bound address.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// AddCheck adds a named readiness check.
func (s *Server) AddCheck(name string, c Check) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.checks[name] = c
}

// Ready runs every readiness check: nil when all pass, else an error
// naming each check that fails and why. /readyz and the systemd watchdog
// both answer from it.
func (s *Server) Ready() error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	names := make([]string, 0, len(s.checks))
	for n := range s.checks {
		names = append(names, n)
	}
	sort.Strings(names)
	var failed []error
	for _, n := range names {
		if err := s.checks[n](); err != nil {
			failed = append(failed, fmt.Errorf("%s: %w", n, err))
		}
	}
	return errors.Join(failed...)
}

func (s *Server) readyz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if err := s.Ready(); err != nil {
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintln(w, "not ready")
		fmt.Fprintln(w, err)
		return
	}
	fmt.Fprintln(w, "ready")
}

// Run serves until ctx ends.
func (s *Server) Run(ctx context.Context) error {
	go func() {
		<-ctx.Done()
		shut, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = s.srv.Shutdown(shut)
	}()
	if err := s.srv.Serve(s.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("http listener: %w", err)
	}
	return nil
}
