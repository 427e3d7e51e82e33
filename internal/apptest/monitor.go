package apptest

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// NewMonitor reads the monitoring listener at addr (host:port).
func NewMonitor(t testing.TB, addr string) Monitor { return Monitor{t: t, HTTP: addr} }

// Monitor reads the monitoring listener of a flowgate under test.
type Monitor struct {
	t    testing.TB
	HTTP string // host:port of the monitoring listener
}

// Get fetches a path of the monitoring listener; status 0 means no answer.
func (m *Monitor) Get(path string) (int, string) {
	client := http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get("http://" + m.HTTP + path)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// Metric returns the sum of a metric's samples whose labels contain every
// one of labels (`name="value"`), from /metrics.
func (m *Monitor) Metric(name string, labels ...string) float64 {
	m.t.Helper()
	status, body := m.Get("/metrics")
	if status != http.StatusOK {
		m.t.Fatalf("/metrics: %d %s", status, body)
	}
	var sum float64
	sc := bufio.NewScanner(strings.NewReader(body))
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name) || (len(line) > len(name) && line[len(name)] != '{' && line[len(name)] != ' ') {
			continue
		}
		match := true
		for _, l := range labels {
			if !strings.Contains(line, l) {
				match = false
			}
		}
		if !match {
			continue
		}
		f := strings.Fields(line)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err == nil {
			sum += v
		}
	}
	return sum
}

// WaitReady polls /readyz until it answers 200, failing the test if done
// closes first (*err says why) or after timeout; log is the appliance's.
func (m *Monitor) WaitReady(timeout time.Duration, done <-chan struct{}, err *error, log *SyncBuffer) {
	m.t.Helper()
	var last string
	ok := Eventually(timeout, func() bool {
		select {
		case <-done:
			return true
		default:
		}
		status, body := m.Get("/readyz")
		last = fmt.Sprintf("%d %s", status, body)
		return status == http.StatusOK
	})
	select {
	case <-done:
		m.t.Fatalf("flowgate exited before it was ready (%v):\n%s", *err, log.String())
	default:
	}
	if !ok {
		m.t.Fatalf("flowgate not ready after %s: %s\n%s", timeout, last, tail(log.String(), 40))
	}
}
