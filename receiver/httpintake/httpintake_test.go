package httpintake

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flowgate/flowgate/buffer"
	"github.com/flowgate/flowgate/internal/apptest"
	pb "github.com/flowgate/flowgate/proto"
)

// oneKey takes one key, to one subject.
type oneKey string

func (k oneKey) Subject(_ context.Context, key string) (string, error) {
	if key != string(k) {
		return "", ErrUnknownKey
	}
	return "subject", nil
}

// counting keeps the count of what it was given to store, and the last
// log.
type counting struct {
	msgs, logs int
	last       *pb.Log
}

func (c *counting) PublishAll(_ context.Context, msgs []buffer.Message) error {
	for _, m := range msgs {
		var b pb.Batch
		if err := b.UnmarshalVT(m.Data); err != nil {
			return err
		}
		c.msgs++
		c.logs += len(b.Logs)
		c.last = b.Logs[len(b.Logs)-1]
	}
	return nil
}

func newTestIntake(t testing.TB, store Store) *Intake {
	t.Helper()
	it, err := New(DefaultConfig("Apps", "127.0.0.1:0"), Dependencies{Keys: oneKey(reqKey), Store: store,
		Metrics: NewMetrics(prometheus.NewRegistry()), Produced: func(int, error) {}, OverMaxConnections: func() {}, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { it.ln.Close() })
	return it
}

// jsonsBody is a /jsons body of n syslog-like events.
func jsonsBody(n int) string {
	events := make([]string, n)
	for i := range events {
		events[i] = fmt.Sprintf(`"<134>1 2026-12-04T09:00:00.000Z web-%03d nginx 4242 - - 10.1.2.%d - - \"GET /api/v1/items/%d HTTP/1.1\" 200 5123 \"-\" \"Mozilla/5.0\""`, i%100, i%250, i)
	}
	return "[" + strings.Join(events, ",") + "]"
}

// A request's events go to the store in messages within the bounds, all
// of them, and the answer has an id for each.
func TestHandlerStoresEveryEvent(t *testing.T) {
	store := &counting{}
	it := newTestIntake(t, store)
	it.cfg.MaxLogsPerMessage = 300
	req := httptest.NewRequest(http.MethodPost, "/jsons", strings.NewReader(jsonsBody(1000)))
	req.Header.Set("X-SEKOIAIO-INTAKE-KEY", reqKey)
	w := httptest.NewRecorder()
	it.ServeHTTP(w, req)
	if w.Code != 200 || strings.Count(w.Body.String(), `"`) != 2+2*1000 {
		t.Fatalf("answered %d %.200s", w.Code, w.Body.String())
	}
	if store.logs != 1000 || store.msgs != 4 {
		t.Errorf("stored %d events in %d messages, want 1000 in 4", store.logs, store.msgs)
	}
}

// A log keeps the request's timestamp, its text and its sender.
func TestHandlerKeepsTheTimestamp(t *testing.T) {
	store := &counting{}
	it := newTestIntake(t, store)
	req := httptest.NewRequest(http.MethodPost, "/api/v1/intake-http/plain?intake_key="+reqKey, strings.NewReader("the event\n"))
	req.Header.Set("X-SEKOIAIO-EVENT-TIMESTAMP", "2026-12-04T09:00:00.5+01:00")
	w := httptest.NewRecorder()
	it.ServeHTTP(w, req)
	l := store.last
	if w.Code != 200 || l == nil {
		t.Fatalf("answered %d %s", w.Code, w.Body.String())
	}
	if l.TimestampNs != 1796371200_500000000 || string(l.Msg) != "the event" || l.Format != pb.LogFormat_UNPARSED || len(l.Sender) != 4 || l.TimeReceivedNs == 0 {
		t.Errorf("stored %v", l)
	}
}

// Past max_connections, a connection is closed at once and counted; the
// one open is served.
func TestMaxConnections(t *testing.T) {
	var refused atomic.Int32
	cfg := DefaultConfig("Apps", "127.0.0.1:0")
	cfg.MaxConnections = 1
	it, err := New(cfg, Dependencies{Keys: oneKey(reqKey), Store: &counting{}, Metrics: NewMetrics(prometheus.NewRegistry()),
		Produced: func(int, error) {}, OverMaxConnections: func() { refused.Add(1) }, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- it.Run(ctx) }()
	defer func() { cancel(); <-done }()
	first, err := net.Dial("tcp", it.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	// The first is accepted (and holds its slot) before the second comes.
	if _, err := io.WriteString(first, "POST /plain HTTP/1.1\r\nHost: x\r\nX-SEKOIAIO-INTAKE-KEY: "+reqKey+"\r\nContent-Length: 1\r\n\r\ne"); err != nil {
		t.Fatal(err)
	}
	answer, err := bufio.NewReader(first).ReadString('\n')
	if err != nil || !strings.HasPrefix(answer, "HTTP/1.1 200") {
		t.Fatalf("first connection: %q, %v", answer, err)
	}
	second, err := net.Dial("tcp", it.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer second.Close()
	_ = second.SetReadDeadline(time.Now().Add(30 * time.Second))
	if n, err := second.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		t.Errorf("second connection: read %d, %v; want it closed", n, err)
	}
	if !apptest.Eventually(30*time.Second, func() bool { return refused.Load() == 1 }) {
		t.Errorf("%d refusals counted", refused.Load())
	}
}

// BenchmarkHandler is the handler's path for a /jsons request of 1000
// events: read, decode, check the key, encode the buffer messages, answer
// (the store itself is not measured).
func BenchmarkHandler(b *testing.B) {
	it := newTestIntake(b, discard{})
	body := jsonsBody(1000)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		req := httptest.NewRequest(http.MethodPost, "/jsons", strings.NewReader(body))
		req.Header.Set("X-SEKOIAIO-INTAKE-KEY", reqKey)
		w := httptest.NewRecorder()
		it.ServeHTTP(w, req)
		if w.Code != 200 {
			b.Fatal(w.Code)
		}
	}
	b.ReportMetric(float64(b.N)*1000/b.Elapsed().Seconds(), "events/s")
}

type discard struct{}

func (discard) PublishAll(context.Context, []buffer.Message) error { return nil }
