package appliance_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/flowgate/flowgate/appliance/appliancetest"
	"github.com/flowgate/flowgate/internal/apptest"
	"github.com/flowgate/flowgate/internal/intaketest"
	"github.com/flowgate/flowgate/internal/peers"
	"github.com/flowgate/flowgate/receiver/httpintake"
)

// The keys of the local HTTP intake's tests.
const (
	httpKey1 = "HttpIntakeKeyOne0123456789abcdef"
	httpKey2 = "HttpIntakeKeyTwo0123456789abcdef"
)

// clientRequest is one request of testdata/sekoia_client.py: what it
// sent, by key, and what the intake answered.
type clientRequest struct {
	Name   string
	Status int
	Answer json.RawMessage
	Sent   [][2]string
}

// runSekoiaClient runs the Python client against base and returns its
// requests.
func runSekoiaClient(t *testing.T, base, caFile, tag string) []clientRequest {
	t.Helper()
	peers.Require(t, "python3")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "python3", "testdata/sekoia_client.py", base, caFile, httpKey1, httpKey2, tag)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("sekoia_client.py: %v\n%s", err, stderr.String())
	}
	var reqs []clientRequest
	for line := range strings.Lines(string(out)) {
		var r clientRequest
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("sekoia_client.py printed %q: %v", line, err)
		}
		reqs = append(reqs, r)
	}
	return reqs
}

// TestHTTPIntakeSekoiaClient: a Python requests client doing what Sekoia's
// HTTPS intake documentation shows, on every endpoint and with every way
// of giving the key, against a TLS intake with two keys and a plain
// loopback one that takes any key: each request is answered 200 with an
// id per event, and every event arrives once at the HTTPS receiver under
// its key, with the timestamp it was given.
func TestHTTPIntakeSekoiaClient(t *testing.T) {
	t.Parallel()
	out := intaketest.NewHTTPS(t)
	certs := peers.NewCerts(t)
	tlsPort, plainPort := apptest.FreePort(t, "tcp"), apptest.FreePort(t, "tcp")
	a := newApp(t, fmt.Sprintf(`certs_dir: %s
intakes:
  - {name: Apps, protocol: http, port: %d, intake_keys: [%s, %s], output: %s}
  - {name: Local, protocol: http, port: %d, bind: 127.0.0.1, plain_http: true, intake_keys: any, output: %s}
`, certs.Dir, tlsPort, httpKey1, httpKey2, out.Output(), plainPort, out.Output()))

	reqs := runSekoiaClient(t, fmt.Sprintf("https://localhost:%d", tlsPort), certs.CA, "tls")
	reqs = append(reqs, runSekoiaClient(t, fmt.Sprintf("http://127.0.0.1:%d", plainPort), "-", "plain")...)
	want := map[string]string{}
	for _, r := range reqs {
		if r.Status != http.StatusOK {
			t.Errorf("%s: answered %d %s", r.Name, r.Status, r.Answer)
			continue
		}
		var answer struct {
			EventID  string   `json:"event_id"`
			EventIDs []string `json:"event_ids"`
		}
		if err := json.Unmarshal(r.Answer, &answer); err != nil {
			t.Errorf("%s: answer %s: %v", r.Name, r.Answer, err)
		}
		if ids := len(answer.EventIDs) + min(len(answer.EventID), 1); ids != len(r.Sent) {
			t.Errorf("%s: %d ids for %d events: %s", r.Name, ids, len(r.Sent), r.Answer)
		}
		for _, s := range r.Sent {
			want[s[1]] = s[0]
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	got := map[string]int{}
	for _, e := range out.WaitEvents(t, len(want), 60*time.Second) {
		got[e.Event]++
		if k, ok := want[e.Event]; !ok {
			t.Errorf("unexpected event %q", e.Event)
		} else if e.Key != k {
			t.Errorf("%q arrived under key %q, sent under %q", e.Event, e.Key, k)
		}
		// The timestamps the client gave go on, through /array.
		ts := ""
		if name := strings.Fields(e.Event)[1]; name == "plain-timestamp" || name == "root" || strings.HasPrefix(name, "array-") {
			ts = "2026-12-04T08:00:00Z"
		}
		if e.Timestamp != ts {
			t.Errorf("%q arrived with timestamp %q, want %q", e.Event, e.Timestamp, ts)
		}
	}
	for e := range want {
		if got[e] != 1 {
			t.Errorf("%q arrived %d times", e, got[e])
		}
	}
	if log := a.Stderr.String(); strings.Contains(log, httpKey1) || strings.Contains(log, httpKey2) {
		t.Error("the log shows a key in full")
	}
	if n := a.Metric(httpintake.MetricRequestsTotal, `intake="Apps"`, `code="200"`); n != float64(len(reqs)/2) {
		t.Errorf("%s{code=200} of Apps is %v, want %d", httpintake.MetricRequestsTotal, n, len(reqs)/2)
	}
}

// TestHTTPIntakeErrors: each refusal is answered with its status and a
// reason, stores nothing, and the refused keys are counted.
func TestHTTPIntakeErrors(t *testing.T) {
	t.Parallel()
	out := intaketest.NewHTTPS(t)
	port := apptest.FreePort(t, "tcp")
	a := newApp(t, fmt.Sprintf(`intakes:
  - {name: Apps, protocol: http, port: %d, bind: 127.0.0.1, plain_http: true, intake_keys: [%s], output: %s}
`, port, httpKey1, out.Output()))
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	gz := func(s string) []byte {
		var b bytes.Buffer
		w := gzip.NewWriter(&b)
		_, _ = w.Write([]byte(s))
		_ = w.Close()
		return b.Bytes()
	}
	big := strings.Repeat("x", httpintake.MaxEventBytes+1)
	cases := []struct {
		name, path, key string
		header          map[string]string
		body            []byte
		status          int
	}{
		{"bad JSON", "/jsons", httpKey1, nil, []byte(`["a", `), 400},
		{"not an array", "/jsons", httpKey1, nil, []byte(`{"a": 1}`), 400},
		{"bad gzip", "/jsons", httpKey1, map[string]string{"Content-Encoding": "gzip"}, []byte("not gzip at all"), 400},
		{"truncated gzip", "/jsons", httpKey1, map[string]string{"Content-Encoding": "gzip"}, gz(`["a","b"]`)[:15], 400},
		{"bad timestamp", "/plain", httpKey1, map[string]string{"X-SEKOIAIO-EVENT-TIMESTAMP": "yesterday"}, []byte("e"), 400},
		{"no key", "/plain", "", nil, []byte("e"), 401},
		{"unknown key", "/plain", httpKey2, nil, []byte("e"), 403},
		{"one unknown key of two", "/array", "", nil, fmt.Appendf(nil, `[{"intake_key":%q,"json":"a"},{"intake_key":%q,"json":"b"}]`, httpKey1, httpKey2), 403},
		{"event too large", "/jsons", httpKey1, nil, fmt.Appendf(nil, `["small", %q]`, big), 413},
		{"request too large", "/plain/batch", httpKey1, nil, bytes.Repeat([]byte("0123456789abcde\n"), httpintake.MaxRequestBytes/16+1), 413},
		{"request too large once decompressed", "/plain/batch", httpKey1, map[string]string{"Content-Encoding": "gzip"}, gz(strings.Repeat("0123456789abcde\n", httpintake.MaxRequestBytes/16+1)), 413},
		{"no such endpoint", "/nothing", httpKey1, nil, []byte("e"), 404},
	}
	for _, c := range cases {
		req, _ := http.NewRequest(http.MethodPost, base+c.path, bytes.NewReader(c.body))
		if c.key != "" {
			req.Header.Set("X-SEKOIAIO-INTAKE-KEY", c.key)
		}
		for k, v := range c.header {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		answer, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var reason struct{ Message string }
		if resp.StatusCode != c.status {
			t.Errorf("%s: answered %d %s, want %d", c.name, resp.StatusCode, answer, c.status)
		} else if json.Unmarshal(answer, &reason) != nil || reason.Message == "" {
			t.Errorf("%s: answer %q says no reason", c.name, answer)
		}
	}
	if n := a.Metric(httpintake.MetricRefusedKeysTotal, `intake="Apps"`, `reason="unknown_key"`); n != 2 {
		t.Errorf("%s{reason=unknown_key} is %v, want 2", httpintake.MetricRefusedKeysTotal, n)
	}
	// Nothing of the refused requests was stored: a good request after
	// them is the only one to arrive.
	resp, err := http.Post(base+"/jsons?intake_key="+httpKey1, "application/json", strings.NewReader(`["after"]`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("a good request answered %d", resp.StatusCode)
	}
	out.WaitEvents(t, 1, 60*time.Second)
	// Anything stored before it would have been shipped before it, or
	// with it.
	if !apptest.Eventually(60*time.Second, func() bool { return out.Quiet(time.Second) }) {
		t.Fatal("the receiver kept receiving")
	}
	if evs := out.Events(); len(evs) != 1 || evs[0].Event != "after" {
		t.Errorf("received %v, want only the event sent after the refusals", evs)
	}
}

// post sends body to an http intake with key in the header and returns
// the status and the answer.
func post(t *testing.T, url, key, body string) (int, http.Header, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	req.Header.Set("X-SEKOIAIO-INTAKE-KEY", key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(answer)
}

// TestHTTPIntakeAnyKeys: intake_keys: any takes well-formed keys up to
// max_keys and refuses the others (counted); the keys it took are
// remembered, so that what waits for them in the buffer is shipped after a
// restart, each event once under its key.
func TestHTTPIntakeAnyKeys(t *testing.T) {
	t.Parallel()
	out := intaketest.NewHTTPS(t)
	out.Refuse(func(int) (int, string) { return 503, "" })
	port := apptest.FreePort(t, "tcp")
	a := newApp(t, fmt.Sprintf(`intakes:
  - {name: Local, protocol: http, port: %d, bind: 127.0.0.1, plain_http: true, intake_keys: any, max_keys: 2, output: %s}
`, port, out.Output()))
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	for _, c := range []struct {
		path, key, body string
		status          int
	}{
		{"/jsons", httpKey1, `["one-a", "one-b"]`, 200},
		{"/plain", httpKey2, "two-a", 200},
		{"/plain", "HttpIntakeKeyThree0123456789abcd", "three-a", 403},
		{"/plain", "bad key!", "bad-a", 403},
		{"/plain", httpKey1, "one-c", 200},
	} {
		if status, _, answer := post(t, base+c.path, c.key, c.body); status != c.status {
			t.Fatalf("%s under %s: answered %d %s, want %d", c.body, c.key, status, answer, c.status)
		}
	}
	for reason, want := range map[string]float64{"max_keys": 1, "malformed_key": 1, "unknown_key": 0} {
		if n := a.Metric(httpintake.MetricRefusedKeysTotal, `intake="Local"`, `reason="`+reason+`"`); n != want {
			t.Errorf("%s{reason=%s} is %v, want %v", httpintake.MetricRefusedKeysTotal, reason, n, want)
		}
	}
	if err := a.Stop(60 * time.Second); err != nil {
		t.Fatal(err)
	}
	out.Refuse(func(int) (int, string) { return 0, "" })
	appliancetest.Start(t, a.Path)
	want := map[string]string{"one-a": httpKey1, "one-b": httpKey1, "one-c": httpKey1, "two-a": httpKey2}
	got := map[string]int{}
	for _, e := range out.WaitEvents(t, len(want), 60*time.Second) {
		got[e.Event]++
		if e.Key != want[e.Event] {
			t.Errorf("%q arrived under %q, want %q", e.Event, e.Key, want[e.Event])
		}
	}
	for e := range want {
		if got[e] != 1 {
			t.Errorf("%q arrived %d times", e, got[e])
		}
	}
}

// TestHTTPIntakeFullBuffer: while the buffer is full, requests are
// answered 503 with Retry-After; the events of every request answered 200
// arrive, once, when the output takes them (those of a request answered
// 503 may arrive too: the client sends them again).
func TestHTTPIntakeFullBuffer(t *testing.T) {
	t.Parallel()
	out := intaketest.NewHTTPS(t)
	out.Refuse(func(int) (int, string) { return 503, "" })
	port := apptest.FreePort(t, "tcp")
	newApp(t, fmt.Sprintf(`intakes:
  - {name: Apps, protocol: http, port: %d, bind: 127.0.0.1, plain_http: true, intake_keys: [%s], output: %s}
`, port, httpKey1, out.Output()), "DISK_SPACE=64m")
	url := fmt.Sprintf("http://127.0.0.1:%d/plain/batch", port)
	filler := strings.Repeat("f", 100<<10)
	accepted := 0
	for req := 0; ; req++ {
		if req == 100 {
			t.Fatal("100 requests of 5 MB taken by a buffer of 64 MB")
		}
		var body strings.Builder
		for i := range 50 {
			fmt.Fprintf(&body, "req-%d-%d %s\n", req, i, filler)
		}
		status, h, answer := post(t, url, httpKey1, body.String())
		if status == http.StatusServiceUnavailable {
			if h.Get("Retry-After") == "" {
				t.Errorf("503 without Retry-After: %s", answer)
			}
			break
		}
		if status != http.StatusOK {
			t.Fatalf("request %d: answered %d %s", req, status, answer)
		}
		accepted += 50
	}
	out.Refuse(func(int) (int, string) { return 0, "" })
	got := map[string]int{}
	for _, e := range out.WaitEvents(t, accepted, 120*time.Second) {
		id, _, _ := strings.Cut(e.Event, " ")
		got[id]++
	}
	for req := range accepted / 50 {
		for i := range 50 {
			if id := fmt.Sprintf("req-%d-%d", req, i); got[id] != 1 {
				t.Errorf("%s arrived %d times", id, got[id])
			}
		}
	}
}

// A reload that gives an http intake another key list on the same port
// takes the new key at once; the events stored before go out all the
// same.
func TestHTTPIntakeReload(t *testing.T) {
	t.Parallel()
	out := intaketest.NewHTTPS(t)
	port := apptest.FreePort(t, "tcp")
	intake := func(keys string) string {
		return fmt.Sprintf("intakes:\n  - {name: Apps, protocol: http, port: %d, bind: 127.0.0.1, plain_http: true, intake_keys: [%s], output: %s}\n", port, keys, out.Output())
	}
	a := newApp(t, intake(httpKey1))
	base := fmt.Sprintf("http://127.0.0.1:%d/plain", port)
	if status, _, answer := post(t, base, httpKey2, "refused"); status != http.StatusForbidden {
		t.Fatalf("key 2 before the reload: %d %s", status, answer)
	}
	if status, _, answer := post(t, base, httpKey1, "before"); status != http.StatusOK {
		t.Fatalf("key 1: %d %s", status, answer)
	}
	a.write(t, intake(httpKey1+", "+httpKey2))
	if err := a.Reload(); err != nil {
		t.Fatal(err)
	}
	// The reload replaced the intake, closing its idle keep-alive
	// connections; Go's client does not send a POST again on one it took
	// from its pool just as it closed, so the next request opens its own.
	http.DefaultClient.CloseIdleConnections()
	if status, _, answer := post(t, base, httpKey2, "after"); status != http.StatusOK {
		t.Fatalf("key 2 after the reload: %d %s", status, answer)
	}
	got := map[string]string{}
	for _, e := range out.WaitEvents(t, 2, 60*time.Second) {
		got[e.Event] = e.Key
	}
	if got["before"] != httpKey1 || got["after"] != httpKey2 || len(got) != 2 {
		t.Errorf("received %v", got)
	}
}

// TestHTTPIntakeCurl: curl as the README shows it, a JSON array with the
// key in the header, then a file of lines with the key as the Basic
// password; curl sends each on a connection of its own and closes it once
// answered. Every event arrives once, under its key.
func TestHTTPIntakeCurl(t *testing.T) {
	t.Parallel()
	peers.Require(t, "curl")
	out := intaketest.NewHTTPS(t)
	certs := peers.NewCerts(t)
	port := apptest.FreePort(t, "tcp")
	newApp(t, fmt.Sprintf("certs_dir: %s\nintakes:\n  - {name: Apps, protocol: http, port: %d, intake_keys: [%s, %s], output: %s}\n",
		certs.Dir, port, httpKey1, httpKey2, out.Output()))
	base := fmt.Sprintf("https://localhost:%d", port)
	lines := t.TempDir() + "/app.log"
	if err := os.WriteFile(lines, []byte("line one\r\nline two\n\nline three\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	curl := func(args ...string) []string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, "curl", append([]string{"--silent", "--show-error", "--fail-with-body", "--cacert", certs.CA}, args...)...)
		answer, err := cmd.Output()
		if err != nil {
			t.Fatalf("curl %v: %v: %s", args, err, answer)
		}
		var ids struct {
			EventIDs []string `json:"event_ids"`
		}
		if err := json.Unmarshal(answer, &ids); err != nil {
			t.Fatalf("curl %v answered %s: %v", args, answer, err)
		}
		return ids.EventIDs
	}
	if ids := curl("-H", "X-SEKOIAIO-INTAKE-KEY: "+httpKey1, "-H", "Content-Type: application/json",
		"--data", `["first event", "second event"]`, base+"/jsons"); len(ids) != 2 {
		t.Errorf("/jsons: %d event ids for 2 events", len(ids))
	}
	if ids := curl("-u", ":"+httpKey2, "--data-binary", "@"+lines, base+"/plain/batch"); len(ids) != 3 {
		t.Errorf("/plain/batch: %d event ids for 3 lines", len(ids))
	}
	want := map[string]string{"first event": httpKey1, "second event": httpKey1,
		"line one": httpKey2, "line two": httpKey2, "line three": httpKey2}
	got := map[string]int{}
	for _, e := range out.WaitEvents(t, len(want), 60*time.Second) {
		got[e.Event]++
		if k, ok := want[e.Event]; !ok || e.Key != k {
			t.Errorf("%q arrived under key %q, want %q", e.Event, e.Key, k)
		}
	}
	for e := range want {
		if got[e] != 1 {
			t.Errorf("%q arrived %d times", e, got[e])
		}
	}
}
