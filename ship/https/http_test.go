package https

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/flowgate/flowgate/config"
	"github.com/flowgate/flowgate/internal/intaketest"
	pb "github.com/flowgate/flowgate/proto"
	"github.com/flowgate/flowgate/ship"
)

// httpOutput is the resolved output of a tcp intake with key shipping to
// output (YAML flow style), as the appliance would open it.
func httpOutput(t *testing.T, output string) *config.Output {
	t.Helper()
	yaml := fmt.Sprintf("intakes:\n  - {name: Logs, protocol: tcp, port: 5140, intake_key: %s, output: %s}\n", key, output)
	c, err := config.Parse([]byte(yaml), "test", t.TempDir(), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	return c.Intakes[0].Output
}

func TestLinesToLoggly(t *testing.T) {
	loggly := intaketest.NewLoggly(t, key)
	tr, err := Open(httpOutput(t, loggly.Output()), key, "test", 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	// One event a line: a newline or a control byte in an event is
	// escaped as the file output does (#012), JSON is left as it is.
	events := []string{"plain", "two\nlines", `{"a":"b\n"}`, "tab\tand bell\a"}
	want := []string{"plain", "two#012lines", `{"a":"b\n"}`, "tab\tand bell#007"}
	var raw [][]byte
	for _, e := range events {
		raw = append(raw, []byte(e))
	}
	if err := tr.Send(context.Background(), ship.NewBatch(raw...)); err != nil {
		t.Fatal(err)
	}
	got := loggly.Events()
	if len(got) != len(want) || len(loggly.Problems()) > 0 {
		t.Fatalf("got %+v, problems %v", got, loggly.Problems())
	}
	for i, e := range got {
		if e.Event != want[i] || e.Key != key {
			t.Errorf("event %d = %q with token %q, want %q", i, e.Event, e.Key, want[i])
		}
	}

	// Down: the error names the URL with the token masked.
	loggly.Down()
	err = tr.Send(context.Background(), ship.NewBatch([]byte("x")))
	if err == nil || strings.Contains(err.Error(), key) || !strings.Contains(err.Error(), config.MaskKey(key)) {
		t.Fatalf("sent to an endpoint that is down, or the error shows the token: %v", err)
	}
}

func TestAnEventOverTheLimitIsRefusedBeforeSending(t *testing.T) {
	loggly := intaketest.NewLoggly(t, key)
	tr, err := Open(httpOutput(t, loggly.Output()), key, "test", 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	big := bytes.Repeat([]byte("x"), intaketest.LogglyMaxEventBytes+1)
	err = tr.Send(context.Background(), ship.NewBatch([]byte("small"), big))
	var se *ship.Error
	if !errors.As(err, &se) || se.Status != http.StatusRequestEntityTooLarge {
		t.Fatalf("error %v, want a 413", err)
	}
	if len(loggly.Events()) != 0 {
		t.Fatal("part of the batch was sent")
	}
}

// hec is a Splunk HEC-like endpoint: it checks the path, the token in
// Authorization, gzip, and that the body is JSON objects one after
// another, each with an "event"; it keeps the events.
type hec struct {
	mu       sync.Mutex
	events   []any
	problems []string
	// answer is what a good request gets.
	answer string
}

func (h *hec) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.mu.Lock()
	defer h.mu.Unlock()
	problem := func(format string, args ...any) {
		h.problems = append(h.problems, fmt.Sprintf(format, args...))
		http.Error(w, `{"text":"Invalid data format","code":6}`, http.StatusBadRequest)
	}
	switch {
	case r.URL.Path != "/services/collector/event":
		problem("path %s", r.URL.Path)
		return
	case r.Header.Get("Authorization") != "Splunk "+key:
		http.Error(w, `{"text":"Invalid token","code":4}`, http.StatusForbidden)
		return
	}
	raw, _ := io.ReadAll(r.Body)
	if len(raw) == 0 {
		http.Error(w, `{"text":"No data","code":5}`, http.StatusBadRequest)
		return
	}
	if r.Header.Get("Content-Encoding") != "gzip" {
		problem("Content-Encoding %q", r.Header.Get("Content-Encoding"))
		return
	}
	gz, err := gzip.NewReader(bytes.NewReader(raw))
	if err != nil {
		problem("gzip: %v", err)
		return
	}
	body, _ := io.ReadAll(gz)
	dec := json.NewDecoder(bytes.NewReader(body))
	for dec.More() {
		var obj map[string]any
		if err := dec.Decode(&obj); err != nil {
			problem("not JSON objects one after another: %v", err)
			return
		}
		e, ok := obj["event"]
		if !ok || len(obj) != 1 {
			problem("an object %v, not {\"event\": ...}", obj)
			return
		}
		h.events = append(h.events, e)
	}
	_, _ = io.WriteString(w, h.answer)
}

func TestSplunkHECShape(t *testing.T) {
	h := &hec{answer: `{"text":"Success","code":0}`}
	url, ca := intaketest.Serve(t, h)
	o := httpOutput(t, fmt.Sprintf("{transport: http, preset: splunk_hec, url: %q, ca_file: %q}", url, ca))
	tr, err := Open(o, key, "test", 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	// The events as the pipeline writes them for this output: a flow is
	// an object, a log its message as a string.
	enc := Frame(o, Events(o))
	flow := enc.AppendFlow(nil, &pb.Flow{Type: pb.FlowType_IPFIX, SrcAddr: []byte{10, 0, 0, 1}, Bytes: 1500,
		Present: 1<<uint(pb.Field_SRC_ADDR) | 1<<uint(pb.Field_BYTES)})
	log := enc.AppendLog(nil, &pb.Log{Msg: []byte("sshd: \"accepted\"\nfor alice")})
	if err := tr.Send(context.Background(), ship.NewBatch(flow, log)); err != nil {
		t.Fatal(err)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.problems) > 0 || len(h.events) != 2 {
		t.Fatalf("events %v, problems %v", h.events, h.problems)
	}
	if f, ok := h.events[0].(map[string]any); !ok || f["sourceIPv4Address"] != "10.0.0.1" || f["octetDeltaCount"] != 1500.0 {
		t.Errorf("flow event %#v", h.events[0])
	}
	if h.events[1] != "sshd: \"accepted\"\nfor alice" {
		t.Errorf("log event %#v", h.events[1])
	}

	// A 200 that is not HEC's success is not taken for one.
	h.answer = `{"text":"Something else","code":9}`
	h.mu.Unlock()
	err = tr.Send(context.Background(), ship.NewBatch(log))
	h.mu.Lock()
	if err == nil {
		t.Fatal("an answer without code 0 was taken for a success")
	}
}

// probe runs Probe on a TLS connection to o's host.
func probe(t *testing.T, o *config.Output, key string) (string, error) {
	t.Helper()
	pem, err := os.ReadFile(o.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pem)
	u, err := url.Parse(config.WithKey(o.URL, key))
	if err != nil {
		t.Fatal(err)
	}
	conn, err := tls.Dial("tcp", u.Host, &tls.Config{RootCAs: roots, ServerName: "example.com"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_, status, err := Probe(conn, o, key, "test")
	return status, err
}

func TestProbe(t *testing.T) {
	loggly := intaketest.NewLoggly(t, key)
	if status, err := probe(t, httpOutput(t, loggly.Output()), key); err != nil || !strings.HasPrefix(status, "200") {
		t.Errorf("Loggly: %q, %v", status, err)
	}
	if n := len(loggly.Events()) + len(loggly.Problems()); n != 0 {
		t.Errorf("the probe made %d events or problems", n)
	}
	h := &hec{answer: `{"text":"Success","code":0}`}
	base, ca := intaketest.Serve(t, h)
	o := httpOutput(t, fmt.Sprintf("{transport: http, preset: splunk_hec, url: %q, ca_file: %q}", base, ca))
	if status, err := probe(t, o, key); err != nil || !strings.Contains(status, "key is accepted") {
		t.Errorf("HEC: %q, %v", status, err)
	}
	if _, err := probe(t, o, "AnotherKey0123456789"); err == nil || !strings.Contains(err.Error(), "refused") {
		t.Errorf("HEC with a wrong token: %v", err)
	}
}
