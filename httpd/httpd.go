// Package httpd serves the monitoring listener: /metrics (Prometheus),
// /healthz (the process answers), /readyz (every readiness check passes;
// the body says which fails and why), the status page (/ and /status.json)
// with its history of the last minutes, and, when asked, Go's profiler.
package httpd

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Check reports nil when its component is ready.
type Check func() error

//go:embed page.html
var page []byte

// checkEvery is how often the readiness checks run on their own, so that
// a check that keeps state (when an output was last seen idle) stays
// current without anyone polling.
const checkEvery = time.Second

// Server is the monitoring listener.
type Server struct {
	srv *http.Server
	mux *http.ServeMux
	ln  net.Listener
	log *slog.Logger
	mon *monitor

	mu     sync.RWMutex
	checks map[string]Check
}

// New binds addr now, so that a port in use fails the start.
func New(addr string, reg *prometheus.Registry, log *slog.Logger) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("http listener %s: %w", addr, err)
	}
	registerProcess(reg)
	mux := http.NewServeMux()
	s := &Server{mux: mux, ln: ln, log: log, checks: map[string]Check{}}
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: prometheus.WrapRegistererWithPrefix("flowgate_", reg)}))
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

// ServeStatus adds the status page (/) and its data (/status.json).
func (s *Server) ServeStatus(src StatusSources) {
	s.mon = &monitor{src: src, ready: s.failing, started: time.Now()}
	s.mux.HandleFunc("GET /status.json", s.mon.serveJSON)
	s.mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Content-Security-Policy", "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:")
		_, _ = w.Write(page)
	})
}

// Ready runs every readiness check: nil when all pass, else an error
// naming each check that fails and why. /readyz and the systemd watchdog
// both answer from it.
func (s *Server) Ready() error {
	if failed := s.failing(); len(failed) > 0 {
		return errors.New(strings.Join(failed, "\n"))
	}
	return nil
}

// failing runs every check and says which fail and why, by name.
func (s *Server) failing() []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	names := make([]string, 0, len(s.checks))
	for n := range s.checks {
		names = append(names, n)
	}
	sort.Strings(names)
	failed := []string{}
	for _, n := range names {
		if err := s.checks[n](); err != nil {
			failed = append(failed, n+": "+err.Error())
		}
	}
	return failed
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
	if s.mon != nil {
		go s.mon.run(ctx)
	}
	go func() {
		tick := time.NewTicker(checkEvery)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				s.failing()
			}
		}
	}()
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

// RemoveCheck removes a readiness check (a component that stopped).
func (s *Server) RemoveCheck(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.checks, name)
}

// Handle serves pattern (http.ServeMux syntax) with h, for components
// with something to show or to be told; before Run.
func (s *Server) Handle(pattern string, h http.Handler) { s.mux.Handle(pattern, h) }

// Close unbinds the listener of a server that will not Run.
func (s *Server) Close() { _ = s.ln.Close() }

// The process's metrics the status page reads, from the process collector.
const (
	metricResidentBytes = "process_resident_memory_bytes"
	metricOpenFDs       = "process_open_fds"
)

// registerProcess adds the process's and the Go runtime's metrics, under
// their standard names (go_*, process_*), which Go and process dashboards
// look for.
func registerProcess(reg *prometheus.Registry) {
	reg.MustRegister(collectors.NewGoCollector(
		collectors.WithGoCollectorMemStatsMetricsDisabled(),
		collectors.WithGoCollectorRuntimeMetrics(collectors.GoRuntimeMetricsRule{Matcher: regexp.MustCompile(`^/memory/classes/(heap/objects|total):bytes$`)})))
	reg.MustRegister(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
}
