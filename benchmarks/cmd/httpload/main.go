// Command httpload is the load generator of the local HTTP intake: it
// posts /jsons batches, as Sekoia's clients do, over several kept-alive
// connections for a while, and prints what was accepted (answered 200)
// as one JSON line: events a second, requests, refusals, and, given the
// appliance's pid, the CPU it used meanwhile.
//
//	httpload -url http://127.0.0.1:8080 -key KEY -conns 4 -batch 1000 -duration 20s -pid 1234
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/flowgate/flowgate/benchmarks/internal/procstat"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "httpload:", err)
		os.Exit(1)
	}
}

// summary is what a run printed.
type summary struct {
	Seconds       float64 `json:"seconds"`
	Requests      int64   `json:"requests"`
	Events        int64   `json:"events"`
	EventsPerSec  float64 `json:"events_per_second"`
	Refused       int64   `json:"refused"`
	AppCPUSeconds float64 `json:"appliance_cpu_seconds,omitempty"`
	// AppCores is the appliance's CPU time over the run's: cores busy.
	AppCores float64 `json:"appliance_cores,omitempty"`
}

func run() error {
	target := flag.String("url", "http://127.0.0.1:8080", "base URL of the intake (loopback only)")
	key := flag.String("key", "", "intake key (X-SEKOIAIO-INTAKE-KEY)")
	conns := flag.Int("conns", 4, "connections posting at once")
	batch := flag.Int("batch", 1000, "events a request")
	size := flag.Int("size", 250, "bytes an event, about")
	duration := flag.Duration("duration", 10*time.Second, "how long to post")
	pid := flag.Int("pid", 0, "the appliance's pid, for its CPU time (0: not measured)")
	flag.Parse()
	u, err := url.Parse(*target)
	if err != nil {
		return fmt.Errorf("-url: %w", err)
	}
	if a, err := netip.ParseAddr(u.Hostname()); err != nil || !a.IsLoopback() {
		return fmt.Errorf("-url %s: only loopback addresses are allowed", *target)
	}
	if *key == "" {
		return errors.New("-key is missing")
	}
	tr := &http.Transport{MaxIdleConnsPerHost: *conns, DialContext: (&net.Dialer{Timeout: 5 * time.Second}).DialContext}
	client := &http.Client{Transport: tr, Timeout: time.Minute}
	var requests, events, refused, seq atomic.Int64
	cpu0, _ := cpuOf(*pid)
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), *duration)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, *conns)
	for range *conns {
		wg.Go(func() {
			var body bytes.Buffer
			for ctx.Err() == nil {
				body.Reset()
				body.WriteByte('[')
				for i := range *batch {
					if i > 0 {
						body.WriteByte(',')
					}
					n := seq.Add(1)
					line := fmt.Sprintf(`<134>1 2026-12-04T09:00:00.000Z web-%03d nginx 4242 - - 10.1.2.%d GET /api/items/%d 200 seq=%d `, n%100, n%250, n, n)
					body.WriteString(`"` + line + strings.Repeat("x", max(*size-len(line), 0)) + `"`)
				}
				body.WriteByte(']')
				req, _ := http.NewRequest(http.MethodPost, strings.TrimSuffix(*target, "/")+"/jsons", bytes.NewReader(body.Bytes()))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("X-SEKOIAIO-INTAKE-KEY", *key)
				resp, err := client.Do(req)
				if err != nil {
					if ctx.Err() == nil {
						errs <- err
						cancel()
					}
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					refused.Add(1)
					continue
				}
				requests.Add(1)
				events.Add(int64(*batch))
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	select {
	case err := <-errs:
		return err
	default:
	}
	s := summary{Seconds: elapsed.Seconds(), Requests: requests.Load(), Events: events.Load(), Refused: refused.Load()}
	s.EventsPerSec = float64(s.Events) / s.Seconds
	if cpu1, ok := cpuOf(*pid); ok {
		s.AppCPUSeconds = (cpu1 - cpu0).Seconds()
		s.AppCores = s.AppCPUSeconds / s.Seconds
	}
	return json.NewEncoder(os.Stdout).Encode(s)
}

// cpuOf is the CPU time of pid and its children, when pid is given.
func cpuOf(pid int) (time.Duration, bool) {
	if pid == 0 {
		return 0, false
	}
	d, err := procstat.CPU(pid)
	return d, err == nil
}
