package httpintake

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Limits of Sekoia's intake, kept by the local one.
const (
	// MaxEventBytes bounds one event.
	MaxEventBytes = 250 << 10
	// MaxRequestBytes bounds a request's body, as sent and as decompressed.
	MaxRequestBytes = 10 << 20
)

// The endpoints, as the regional hosts also serve them under
// /api/v1/intake-http.
const (
	EndpointPlain      = "/plain"
	EndpointPlainBatch = "/plain/batch"
	EndpointJSONs      = "/jsons"
	EndpointBatch      = "/batch"
	EndpointArray      = "/array"
	EndpointRoot       = "/"
	regionalPrefix     = "/api/v1/intake-http"
)

// Endpoint is the endpoint a request path names, "" for none.
func Endpoint(path string) string {
	p := strings.TrimPrefix(path, regionalPrefix)
	if p == "" {
		p = "/"
	}
	switch p {
	case EndpointPlain, EndpointPlainBatch, EndpointJSONs, EndpointBatch, EndpointArray, EndpointRoot:
		return p
	}
	return ""
}

// Event is one event of a request.
type Event struct {
	// Key is the intake key it goes to.
	Key string
	// Data is the event as stored: the text sent, or a JSON value sent as
	// such, compacted. It may share the request body's memory.
	Data []byte
	// TimeNs is its timestamp (Unix nanoseconds), 0 when it has none.
	TimeNs int64
}

// Meta is what a request says besides its body.
type Meta struct {
	// Key is the request's key (header, Basic password or query); events
	// whose body names their own key keep theirs.
	Key string
	// TimeNs is X-SEKOIAIO-EVENT-TIMESTAMP, 0 when absent; an event's own
	// timestamp wins.
	TimeNs int64
}

// Error is a request refused, with its HTTP status and a short reason.
type Error struct {
	Status int
	Reason string
}

func (e *Error) Error() string { return e.Reason }

func badRequest(format string, args ...any) *Error {
	return &Error{Status: http.StatusBadRequest, Reason: fmt.Sprintf(format, args...)}
}

// Decode reads the events of a request to endpoint: all of them, or an
// error (*Error) and none. Events without a key of their own take meta's.
func Decode(endpoint string, body []byte, meta Meta) ([]Event, error) {
	var events []Event
	var err error
	switch endpoint {
	case EndpointPlain:
		body = bytes.TrimRight(body, "\r\n")
		if len(body) == 0 {
			return nil, badRequest("the body holds no event")
		}
		events = []Event{{Data: body}}
	case EndpointPlainBatch:
		for line := range bytes.SplitSeq(body, []byte{'\n'}) {
			if line = bytes.TrimSuffix(line, []byte{'\r'}); len(line) > 0 {
				events = append(events, Event{Data: line})
			}
		}
	case EndpointJSONs:
		events, err = decodeJSONs(body)
	case EndpointBatch:
		events, err = decodeBatch(body)
	case EndpointArray:
		events, err = decodeArray(body)
	case EndpointRoot:
		events, err = decodeOne(body)
	default:
		return nil, &Error{Status: http.StatusNotFound, Reason: "no such endpoint: " + endpoint}
	}
	if err != nil {
		return nil, err
	}
	for i := range events {
		e := &events[i]
		if len(e.Data) > MaxEventBytes {
			return nil, &Error{Status: http.StatusRequestEntityTooLarge, Reason: fmt.Sprintf("event #%d is %d bytes, over the limit of %d", i+1, len(e.Data), MaxEventBytes)}
		}
		if e.Key == "" {
			e.Key = meta.Key
		}
		if e.Key == "" {
			return nil, &Error{Status: http.StatusUnauthorized, Reason: "no intake key: give it in X-SEKOIAIO-INTAKE-KEY, as the Basic password, as ?intake_key= or in the body"}
		}
		if e.TimeNs == 0 {
			e.TimeNs = meta.TimeNs
		}
	}
	return events, nil
}

// decodeJSONs reads a JSON array of events.
func decodeJSONs(body []byte) ([]Event, error) {
	var raws []json.RawMessage
	if err := json.Unmarshal(body, &raws); err != nil {
		return nil, badRequest("the body is not a JSON array of events: %v", err)
	}
	events := make([]Event, len(raws))
	for i, raw := range raws {
		data, err := eventData(raw)
		if err != nil {
			return nil, badRequest("event #%d: %v", i+1, err)
		}
		events[i].Data = data
	}
	return events, nil
}

// decodeBatch reads {"intake_key": K, "jsons": [...]}.
func decodeBatch(body []byte) ([]Event, error) {
	var b struct {
		IntakeKey string            `json:"intake_key"`
		JSONs     []json.RawMessage `json:"jsons"`
	}
	if err := json.Unmarshal(body, &b); err != nil {
		return nil, badRequest(`the body is not {"intake_key": ..., "jsons": [...]}: %v`, err)
	}
	events := make([]Event, len(b.JSONs))
	for i, raw := range b.JSONs {
		data, err := eventData(raw)
		if err != nil {
			return nil, badRequest("event #%d: %v", i+1, err)
		}
		events[i] = Event{Key: b.IntakeKey, Data: data}
	}
	return events, nil
}

// keyed is one event with its key and timestamp: an item of /array, or
// the body of /.
type keyed struct {
	IntakeKey string          `json:"intake_key"`
	JSON      json.RawMessage `json:"json"`
	Timestamp json.RawMessage `json:"timestamp"`
	// AtTimestamp is the name / gives the timestamp.
	AtTimestamp json.RawMessage `json:"@timestamp"`
}

func (k *keyed) event() (Event, error) {
	if k.JSON == nil {
		return Event{}, fmt.Errorf(`no "json"`)
	}
	data, err := eventData(k.JSON)
	if err != nil {
		return Event{}, err
	}
	ts := k.Timestamp
	if ts == nil {
		ts = k.AtTimestamp
	}
	t, err := jsonTime(ts)
	if err != nil {
		return Event{}, err
	}
	return Event{Key: k.IntakeKey, Data: data, TimeNs: t}, nil
}

// decodeArray reads [{"intake_key": K, "json": ..., "timestamp": ...}, ...].
func decodeArray(body []byte) ([]Event, error) {
	var items []keyed
	if err := json.Unmarshal(body, &items); err != nil {
		return nil, badRequest(`the body is not [{"intake_key": ..., "json": ...}, ...]: %v`, err)
	}
	events := make([]Event, len(items))
	for i := range items {
		e, err := items[i].event()
		if err != nil {
			return nil, badRequest("event #%d: %v", i+1, err)
		}
		events[i] = e
	}
	return events, nil
}

// decodeOne reads {"intake_key": K, "json": ..., "@timestamp": ...}.
func decodeOne(body []byte) ([]Event, error) {
	var one keyed
	if err := json.Unmarshal(body, &one); err != nil {
		return nil, badRequest(`the body is not {"intake_key": ..., "json": ...}: %v`, err)
	}
	e, err := one.event()
	if err != nil {
		return nil, badRequest("%v", err)
	}
	return []Event{e}, nil
}

// eventData is the event a JSON value carries: a string's text, or any
// other value compacted (Sekoia takes objects as events too).
func eventData(raw json.RawMessage) ([]byte, error) {
	switch {
	case len(raw) == 0:
		return nil, fmt.Errorf("empty")
	case raw[0] == '"':
		if bytes.IndexByte(raw, '\\') < 0 {
			// Nothing to unescape: the text is between the quotes.
			return raw[1 : len(raw)-1], nil
		}
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, err
		}
		return []byte(s), nil
	case string(raw) == "null":
		return nil, fmt.Errorf("null is not an event")
	}
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// jsonTime reads a timestamp given in JSON: a string (ParseTime) or a
// number of seconds since the epoch; absent is 0.
func jsonTime(raw json.RawMessage) (int64, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return 0, nil
	}
	if raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return 0, err
		}
		return ParseTime(s)
	}
	return ParseTime(string(raw))
}

// ParseTime reads a timestamp as Sekoia takes them: RFC 3339 with a zone
// (or Z), or seconds since the epoch (a fraction allowed).
func ParseTime(s string) (int64, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t.UnixNano(), nil
	}
	f, err := strconv.ParseFloat(s, 64)
	// Up to the year 2262, what nanoseconds in an int64 hold.
	if err != nil || math.IsNaN(f) || f <= 0 || f >= math.MaxInt64/1e9 {
		return 0, fmt.Errorf("timestamp %q: expected RFC 3339 with a zone, or seconds since the epoch", s)
	}
	return int64(f * 1e9), nil
}
