package httpintake

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/flowgate/flowgate/internal/fuzzcorpus"
)

const (
	reqKey  = "RequestKey0123456789"
	bodyKey = "BodyKey0123456789"
)

func TestDecode(t *testing.T) {
	at := func(s string) int64 {
		tm, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatal(err)
		}
		return tm.UnixNano()
	}
	hdrTime := at("2026-12-04T09:00:00+01:00")
	cases := []struct {
		name, path, body string
		meta             Meta
		want             []Event
	}{
		{"plain keeps the text, but the line end", "/plain", "<13>hello \"x\"\r\n", Meta{Key: reqKey},
			[]Event{{reqKey, []byte(`<13>hello "x"`), 0}}},
		{"plain with the header's timestamp", "/plain", "e", Meta{Key: reqKey, TimeNs: hdrTime},
			[]Event{{reqKey, []byte("e"), hdrTime}}},
		{"plain/batch skips empty lines", "/plain/batch", "a\r\n\nb\n", Meta{Key: reqKey},
			[]Event{{reqKey, []byte("a"), 0}, {reqKey, []byte("b"), 0}}},
		{"jsons: strings unescaped, objects compacted", "/jsons", `["a", "b\n\u00e9", {"k": [1, 2]}]`, Meta{Key: reqKey},
			[]Event{{reqKey, []byte("a"), 0}, {reqKey, []byte("b\né"), 0}, {reqKey, []byte(`{"k":[1,2]}`), 0}}},
		{"jsons empty", "/jsons", `[]`, Meta{Key: reqKey}, []Event{}},
		{"batch: the body's key wins", "/batch", `{"intake_key": "` + bodyKey + `", "jsons": ["x"]}`, Meta{Key: reqKey},
			[]Event{{bodyKey, []byte("x"), 0}}},
		{"batch without a key takes the request's", "/batch", `{"jsons": ["x"]}`, Meta{Key: reqKey},
			[]Event{{reqKey, []byte("x"), 0}}},
		{"array: a key and a timestamp each", "/array", `[{"intake_key": "` + bodyKey + `", "json": "a", "timestamp": "2026-12-04T08:00:00Z"}, {"json": {"m": 1}, "timestamp": 1764835200.5}, {"json": "c"}]`, Meta{Key: reqKey, TimeNs: hdrTime},
			[]Event{{bodyKey, []byte("a"), at("2026-12-04T08:00:00Z")}, {reqKey, []byte(`{"m":1}`), 1764835200_500000000}, {reqKey, []byte("c"), hdrTime}}},
		{"root with @timestamp", "/", `{"intake_key": "` + bodyKey + `", "json": "one", "@timestamp": "2026-12-04T08:00:00.123+02:00"}`, Meta{},
			[]Event{{bodyKey, []byte("one"), at("2026-12-04T08:00:00.123+02:00")}}},
	}
	for _, c := range cases {
		got, err := Decode(Endpoint(c.path), []byte(c.body), c.meta)
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if show(got) != show(c.want) {
			t.Errorf("%s:\n got %s\nwant %s", c.name, show(got), show(c.want))
		}
	}
}

// show writes events for a comparison or a message.
func show(events []Event) string {
	var b strings.Builder
	for _, e := range events {
		fmt.Fprintf(&b, "[%s %q %d]", e.Key, e.Data, e.TimeNs)
	}
	return b.String()
}

func TestDecodeRefuses(t *testing.T) {
	cases := []struct {
		name, path, body string
		meta             Meta
		status           int
	}{
		{"empty plain", "/plain", "\n", Meta{Key: reqKey}, 400},
		{"bad JSON", "/jsons", `["a",`, Meta{Key: reqKey}, 400},
		{"null event", "/jsons", `["a", null]`, Meta{Key: reqKey}, 400},
		{"batch not an object", "/batch", `["a"]`, Meta{Key: reqKey}, 400},
		{"array item without json", "/array", `[{"intake_key": "` + bodyKey + `"}]`, Meta{}, 400},
		{"bad timestamp", "/", `{"json": "a", "@timestamp": "2026-12-04 08:00"}`, Meta{Key: reqKey}, 400},
		{"negative epoch", "/", `{"json": "a", "@timestamp": -5}`, Meta{Key: reqKey}, 400},
		{"no key", "/jsons", `["a"]`, Meta{}, 401},
		{"one event of two without a key", "/array", `[{"intake_key": "` + bodyKey + `", "json": "a"}, {"json": "b"}]`, Meta{}, 401},
		{"event too large", "/plain/batch", "a\n" + strings.Repeat("x", MaxEventBytes+1), Meta{Key: reqKey}, 413},
		{"no such endpoint", "/other", "a", Meta{Key: reqKey}, 404},
	}
	for _, c := range cases {
		got, err := Decode(Endpoint(c.path), []byte(c.body), c.meta)
		var e *Error
		if !errors.As(err, &e) || e.Status != c.status {
			t.Errorf("%s: got %s, %v; want status %d", c.name, show(got), err, c.status)
		}
	}
}

func TestEndpoint(t *testing.T) {
	for path, want := range map[string]string{
		"/jsons": "/jsons", "/api/v1/intake-http/jsons": "/jsons", "/api/v1/intake-http": "/",
		"/api/v1/intake-http/": "/", "/": "/", "/plain/batch": "/plain/batch", "/jsons/": "", "/x": "",
	} {
		if got := Endpoint(path); got != want {
			t.Errorf("Endpoint(%q) = %q, want %q", path, got, want)
		}
	}
}

func TestEventIDs(t *testing.T) {
	seen := map[string]bool{}
	for range 3 {
		var ids []string
		if err := json.Unmarshal(append(appendEventIDs([]byte("["), 1000), ']'), &ids); err != nil || len(ids) != 1000 {
			t.Fatalf("%d ids: %v", len(ids), err)
		}
		for _, id := range ids {
			if len(id) != 36 || id[14] != '4' || !strings.ContainsRune("89ab", rune(id[19])) || strings.Count(id, "-") != 4 || seen[id] {
				t.Fatalf("id %q: not a fresh UUID v4", id)
			}
			seen[id] = true
		}
	}
}

// FuzzDecode: any body to any endpoint is decoded or refused with an
// HTTP status, never a panic; what is decoded keeps the limits, has a key,
// and, for /jsons, is every element of the array, strings as JSON reads
// them.
func FuzzDecode(f *testing.F) {
	for _, seed := range fuzzcorpus.Read(f, "testdata/fuzz/FuzzDecode") {
		f.Add(seed[0], seed[1])
	}
	f.Fuzz(func(t *testing.T, path, body []byte) {
		endpoint := Endpoint(string(path))
		events, err := Decode(endpoint, body, Meta{Key: reqKey})
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || e.Status < 400 || e.Status > 499 || e.Reason == "" {
				t.Fatalf("error %v is not a client error with a reason", err)
			}
			return
		}
		for _, e := range events {
			if e.Key == "" || len(e.Data) > MaxEventBytes || e.Data == nil {
				t.Fatalf("event %+v", e)
			}
		}
		if endpoint != EndpointJSONs {
			return
		}
		var elems []json.RawMessage
		if err := json.Unmarshal(body, &elems); err != nil || len(elems) != len(events) {
			t.Fatalf("%d events from %q (%v)", len(events), body, err)
		}
		for i, raw := range elems {
			var s string
			if json.Unmarshal(raw, &s) == nil && utf8.Valid(raw) && s != string(events[i].Data) {
				t.Fatalf("event %d is %q, JSON reads %q", i, events[i].Data, s)
			}
		}
	})
}

// The reasons are short enough for a client's log line.
func TestErrorReasons(t *testing.T) {
	_, err := Decode(EndpointJSONs, []byte(strings.Repeat("[", 10)), Meta{Key: reqKey})
	var e *Error
	if !errors.As(err, &e) || e.Status != http.StatusBadRequest || len(e.Reason) > 200 {
		t.Errorf("got %v", err)
	}
}
