// Package intaketest provides local stand-ins for the remote intakes,
// which tests cannot reach: Sekoia's HTTPS /jsons receiver and Loggly's
// bulk endpoint, each checking every request as the real intake would,
// recording the events it accepts, and able to stop listening and come
// back on the same address; the /jsons one can also be told to refuse for
// a while, to refuse some events, or to answer slowly.
package intaketest

import (
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"
)

// Request is one request the intake answered.
type Request struct {
	At     time.Time
	Events int
	Status int
	// Bytes is the size of the body as sent (compressed).
	Bytes int64
}

// Event is one accepted event and the key it came with.
type Event struct {
	Key   string
	Event string
	// Timestamp is the one /array gave it, "" for none.
	Timestamp string
}

// HTTPS is a local /jsons intake over TLS; its URL is the base URL to
// configure as output.endpoint.
type HTTPS struct {
	server

	mu       sync.Mutex
	requests []Request
	refused  int
	// refuse, when set, answers a status instead of accepting.
	refuse func(request int) (status int, retryAfter string)
	// judge, when set, answers a status for the events of a request.
	judge func(events []string) (status int)
	// delay is how long each answer waits.
	delay time.Duration
	// inFlight counts requests being answered; arrived is when the
	// last one came.
	inFlight int
	arrived  time.Time
}

// NewHTTPS starts an intake on loopback; it stops with the test.
func NewHTTPS(t testing.TB) *HTTPS {
	t.Helper()
	in := &HTTPS{}
	in.start(t, http.HandlerFunc(in.serve))
	return in
}

// Output is the intake as an output of intakes.yaml, in YAML flow style.
func (in *HTTPS) Output() string {
	return fmt.Sprintf("{transport: https, endpoint: %q, ca_file: %q}", in.URL, in.CAFile)
}

// Refuse makes the intake answer with fn's status (and Retry-After, when
// not empty) for each request number from 1 on; a status of 0 accepts.
func (in *HTTPS) Refuse(fn func(request int) (status int, retryAfter string)) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.refuse = fn
}

// RefuseEvents makes the intake answer with fn's status for the events of
// each request, called as the request arrives; a status of 0 accepts them. The real intake answers 413 to
// a body too large and 400 to an event it cannot take.
func (in *HTTPS) RefuseEvents(fn func(events []string) (status int)) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.judge = fn
}

// Delay makes each answer wait d.
func (in *HTTPS) Delay(d time.Duration) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.delay = d
}

func (in *HTTPS) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || (r.URL.Path != "/jsons" && r.URL.Path != "/array") {
		in.problem(w, http.StatusBadRequest, "%s %s: only POST /jsons and /array are served", r.Method, r.URL.Path)
		return
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		in.problem(w, http.StatusBadRequest, "Content-Type %q", ct)
		return
	}
	key := r.Header.Get("X-SEKOIAIO-INTAKE-KEY")
	if key == "" {
		in.problem(w, http.StatusBadRequest, "no X-SEKOIAIO-INTAKE-KEY")
		return
	}
	body := io.Reader(r.Body)
	if r.Header.Get("Content-Encoding") == "gzip" {
		gz, err := gzip.NewReader(r.Body)
		if err != nil {
			in.problem(w, http.StatusBadRequest, "gzip: %v", err)
			return
		}
		body = gz
	}
	var events []string
	var keyed []Event
	if r.URL.Path == "/array" {
		// [{"intake_key": K, "json": "...", "timestamp": "..."}, ...]
		var items []struct {
			IntakeKey string  `json:"intake_key"`
			JSON      *string `json:"json"`
			Timestamp string  `json:"timestamp"`
		}
		if err := json.NewDecoder(body).Decode(&items); err != nil {
			in.problem(w, http.StatusBadRequest, "body is not a JSON array of /array items: %v", err)
			return
		}
		for _, it := range items {
			if it.IntakeKey == "" || it.JSON == nil {
				in.problem(w, http.StatusBadRequest, "an /array item without intake_key or json")
				return
			}
			events = append(events, *it.JSON)
			keyed = append(keyed, Event{Key: it.IntakeKey, Event: *it.JSON, Timestamp: it.Timestamp})
		}
	} else if err := json.NewDecoder(body).Decode(&events); err != nil {
		in.problem(w, http.StatusBadRequest, "body is not a JSON array of strings: %v", err)
		return
	}
	in.mu.Lock()
	delay, judge := in.delay, in.judge
	in.inFlight++
	in.arrived = time.Now()
	in.mu.Unlock()
	defer func() {
		in.mu.Lock()
		in.inFlight--
		in.mu.Unlock()
	}()
	verdict := 0
	if judge != nil {
		verdict = judge(events)
	}
	if delay > 0 {
		time.Sleep(delay)
	}
	in.mu.Lock()
	in.requests = append(in.requests, Request{At: time.Now(), Events: len(events), Status: http.StatusOK, Bytes: r.ContentLength})
	req := &in.requests[len(in.requests)-1]
	n, refuse := len(in.requests), in.refuse
	if verdict != 0 {
		req.Status = verdict
		in.refused++
		in.mu.Unlock()
		http.Error(w, `{"message":"an event was refused by the test"}`, verdict)
		return
	}
	if refuse != nil {
		if status, after := refuse(n); status != 0 {
			req.Status = status
			in.refused++
			in.mu.Unlock()
			if after != "" {
				w.Header().Set("Retry-After", after)
			}
			http.Error(w, `{"message":"refused by the test"}`, status)
			return
		}
	}
	in.mu.Unlock()
	if keyed == nil {
		keyed = make([]Event, len(events))
		for i, e := range events {
			keyed[i] = Event{Key: key, Event: e}
		}
	}
	total := in.record(keyed)
	ids := make([]string, len(events))
	for i := range events {
		ids[i] = "id-" + strconv.Itoa(total-len(events)+i+1)
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string][]string{"event_ids": ids})
}

// Requests returns the requests answered so far, in order.
func (in *HTTPS) Requests() []Request {
	in.mu.Lock()
	defer in.mu.Unlock()
	return append([]Request(nil), in.requests...)
}

// Quiet says whether no request is being answered and none arrived for d:
// a sender that was killed has nothing left on its way.
func (in *HTTPS) Quiet(d time.Duration) bool {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.inFlight == 0 && time.Since(in.arrived) >= d
}

// Refused is the number of requests refused on purpose.
func (in *HTTPS) Refused() int {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.refused
}

// Num reads a number of an event decoded from JSON as an int (-1 when
// absent or not a number).
func Num(v any) int {
	f, ok := v.(float64)
	if !ok {
		return -1
	}
	return int(f)
}
