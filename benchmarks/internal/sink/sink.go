// Package sink is the receiving end of the benchmarks: an intake's /jsons
// endpoint that takes gzip-compressed JSON arrays of events, counts each
// event's identity (unique, duplicated, foreign) per run, and records the
// latency from the appliance's receipt of each event to its arrival here.
// It parses only what counting needs, so that it takes little of the CPU
// it shares with the appliance under test.
package sink

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/klauspost/compress/gzip"

	"github.com/flowgate/flowgate/benchmarks/internal/ident"
)

// maxBodyBytes bounds a request as the real intake does (10 MiB), with room.
const maxBodyBytes = 16 << 20

// Stats is what came back for one run.
type Stats struct {
	Run        uint16 `json:"run"`
	Events     uint64 `json:"events"`
	Unique     uint64 `json:"unique"`
	Duplicates uint64 `json:"duplicates"`
	// FirstNs and LastNs are when the first and last event of the run
	// arrived (Unix nanoseconds).
	FirstNs int64 `json:"first_ns"`
	LastNs  int64 `json:"last_ns"`
	// Latency from receipt by the appliance to arrival here, in milliseconds.
	P50Ms int64 `json:"p50_ms"`
	P99Ms int64 `json:"p99_ms"`
	MaxMs int64 `json:"max_ms"`
	// Foreign, Requests and BadRequests are over every run.
	Foreign     uint64 `json:"foreign"`
	Requests    uint64 `json:"requests"`
	BadRequests uint64 `json:"bad_requests"`
}

// run is one run's counts.
type run struct {
	ident.Counter
	latency         Histogram
	firstNs, lastNs int64
}

// Sink counts the events posted to it. It is an http.Handler.
type Sink struct {
	mu          sync.Mutex
	runs        map[uint16]*run
	foreign     uint64
	requests    uint64
	badRequests uint64

	bufs sync.Pool
}

// New returns an empty sink.
func New() *Sink { return &Sink{runs: map[uint16]*run{}} }

// hit is one counted event, gathered per request before taking the lock.
type hit struct {
	run       uint16
	seq       uint32
	latencyMs int64
}

// scratch is one request's reusable memory.
type scratch struct {
	gz   *gzip.Reader
	body bytes.Buffer
	hits []hit
}

// ServeHTTP answers POST /jsons as the intake does, and GET /stats?run=N
// with the run's Stats as JSON.
func (s *Sink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.Method == http.MethodPost && r.URL.Path == "/jsons":
		s.serveJSONs(w, r)
	case r.Method == http.MethodGet && r.URL.Path == "/stats":
		n, err := strconv.ParseUint(r.URL.Query().Get("run"), 10, 16)
		if err != nil {
			http.Error(w, "run: expected a number from 0 to 65535", http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(s.Stats(uint16(n)))
	default:
		http.NotFound(w, r)
	}
}

func (s *Sink) serveJSONs(w http.ResponseWriter, r *http.Request) {
	sc, _ := s.bufs.Get().(*scratch)
	if sc == nil {
		sc = &scratch{}
	}
	defer s.bufs.Put(sc)
	if err := sc.read(r); err != nil {
		s.mu.Lock()
		s.requests++
		s.badRequests++
		s.mu.Unlock()
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	now := time.Now()
	var foreign uint64
	sc.hits = sc.hits[:0]
	err := EachString(sc.body.Bytes(), func(ev []byte) {
		if h, ok := identify(ev, now); ok {
			sc.hits = append(sc.hits, h)
		} else {
			foreign++
		}
	})
	s.mu.Lock()
	s.requests++
	if err != nil {
		s.badRequests++
	}
	s.foreign += foreign
	nowNs := now.UnixNano()
	for _, h := range sc.hits {
		rs := s.runs[h.run]
		if rs == nil {
			rs = &run{firstNs: nowNs}
			s.runs[h.run] = rs
		}
		rs.Add(h.seq)
		rs.latency.Add(h.latencyMs)
		rs.lastNs = nowNs
	}
	s.mu.Unlock()
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	// The real intake answers one id per event; nobody here reads them.
	_, _ = io.WriteString(w, `{"event_ids":[]}`)
}

// read reads and decompresses the body.
func (sc *scratch) read(r *http.Request) error {
	body := io.LimitReader(r.Body, maxBodyBytes)
	sc.body.Reset()
	if r.Header.Get("Content-Encoding") != "gzip" {
		_, err := sc.body.ReadFrom(body)
		return err
	}
	var err error
	if sc.gz == nil {
		sc.gz, err = gzip.NewReader(body)
	} else {
		err = sc.gz.Reset(body)
	}
	if err != nil {
		return fmt.Errorf("gzip: %w", err)
	}
	if _, err := sc.body.ReadFrom(sc.gz); err != nil {
		return fmt.Errorf("gzip: %w", err)
	}
	return nil
}

// identify reads an event's identity and latency, from the event as the
// array's string holds it (escaped): a flow's addresses and
// collectionTimeMilliseconds (when the appliance received it), or a syslog
// message's token (when it was sent).
func identify(ev []byte, now time.Time) (hit, bool) {
	if run, seq, ok := ident.FlowgateKeys.FromEscapedJSON(ev); ok {
		at, _ := strconv.ParseInt(string(ident.EscapedField(ev, "collectionTimeMilliseconds")), 10, 64)
		return hit{run, seq, now.UnixMilli() - at}, true
	}
	if run, seq, sentMs, ok := ident.FromToken(ev); ok {
		return hit{run, seq, now.UnixMilli() - sentMs}, true
	}
	return hit{}, false
}

// Stats returns what came back for run so far.
func (s *Sink) Stats(r uint16) Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := Stats{Run: r, Foreign: s.foreign, Requests: s.requests, BadRequests: s.badRequests}
	if rs := s.runs[r]; rs != nil {
		st.Events, st.Unique, st.Duplicates = rs.Events, rs.Unique, rs.Duplicates
		st.FirstNs, st.LastNs = rs.firstNs, rs.lastNs
		st.P50Ms, st.P99Ms, st.MaxMs = rs.latency.Quantile(0.50), rs.latency.Quantile(0.99), rs.latency.Max()
	}
	return st
}

// ErrNotArray is a body that is not a JSON array of strings.
var ErrNotArray = errors.New("body is not a JSON array of strings")

// EachString calls fn with the contents of each string of a JSON array of
// strings as they are written, escapes and all (valid only during the
// call): the identities are read where they lie (ident.EscapedField), as
// unescaping every event took half of the sink's CPU.
func EachString(body []byte, fn func([]byte)) error {
	b := skipSpace(body)
	if len(b) == 0 || b[0] != '[' {
		return ErrNotArray
	}
	b = skipSpace(b[1:])
	if len(b) > 0 && b[0] == ']' {
		return nil
	}
	for {
		if len(b) == 0 || b[0] != '"' {
			return ErrNotArray
		}
		n, err := stringLen(b[1:])
		if err != nil {
			return err
		}
		fn(b[1 : 1+n])
		b = skipSpace(b[2+n:])
		if len(b) == 0 {
			return ErrNotArray
		}
		switch b[0] {
		case ',':
			b = skipSpace(b[1:])
		case ']':
			return nil
		default:
			return ErrNotArray
		}
	}
}

// stringLen is the length of the contents of a JSON string whose opening
// quote was consumed, up to its closing quote. It reads eight bytes at a
// time, as escaped quotes come every few bytes in an event framed as a
// string, and leaves escapes unchecked: the counts need only where each
// event ends, and reading it byte by byte cost the sink a quarter of its
// CPU.
func stringLen(b []byte) (int, error) {
	// escaped marks byte 0 of the next word when the word before ended
	// in a backslash that escapes it.
	var escaped uint64
	i := 0
	for ; i+8 <= len(b); i += 8 {
		w := binary.LittleEndian.Uint64(b[i:])
		quotes, backslashes := bytesEqual(w, '"'), bytesEqual(w, '\\')
		follows := backslashes<<8 | escaped
		if backslashes&follows != 0 {
			// A backslash escaped by another: this word byte by byte.
			end, esc := byteScan(b, i, i+8, escaped != 0)
			if end >= 0 {
				return end, nil
			}
			escaped = 0
			if esc {
				escaped = 0x80
			}
			continue
		}
		if closing := quotes &^ follows; closing != 0 {
			return i + bits.TrailingZeros64(closing)/8, nil
		}
		escaped = backslashes >> 56
	}
	if end, _ := byteScan(b, i, len(b), escaped != 0); end >= 0 {
		return end, nil
	}
	return 0, ErrNotArray
}

// byteScan reads b[i:to] byte by byte, the byte at i escaped when esc:
// it returns the index of the closing quote, or -1 and whether the byte
// at to is escaped.
func byteScan(b []byte, i, to int, esc bool) (int, bool) {
	for ; i < to; i++ {
		switch {
		case esc:
			esc = false
		case b[i] == '\\':
			esc = true
		case b[i] == '"':
			return i, false
		}
	}
	return -1, esc
}

// bytesEqual sets the high bit of each byte of w that is c, and no other.
func bytesEqual(w uint64, c byte) uint64 {
	const lows, highs = 0x7f7f7f7f7f7f7f7f, 0x8080808080808080
	x := w ^ (highs>>7)*uint64(c)
	return ^((x&lows + lows) | x) & highs
}

func skipSpace(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t' || b[0] == '\n' || b[0] == '\r') {
		b = b[1:]
	}
	return b
}

// Histogram counts latencies in milliseconds, exactly up to two minutes.
type Histogram struct {
	counts [maxLatencyMs + 1]uint64
	n      uint64
	max    int64
}

const maxLatencyMs = 120_000

// Add counts one latency; a negative one (clocks in milliseconds) counts as 0.
func (h *Histogram) Add(ms int64) {
	ms = max(ms, 0)
	h.max = max(h.max, ms)
	h.counts[min(ms, maxLatencyMs)]++
	h.n++
}

// Quantile returns the latency under which a fraction q of the counted
// ones fall (0 when none was counted).
func (h *Histogram) Quantile(q float64) int64 {
	if h.n == 0 {
		return 0
	}
	rank := uint64(q*float64(h.n) + 0.5)
	rank = min(max(rank, 1), h.n)
	var seen uint64
	for ms, c := range h.counts {
		seen += c
		if seen >= rank {
			return int64(ms)
		}
	}
	return maxLatencyMs
}

// Max is the largest latency counted.
func (h *Histogram) Max() int64 { return h.max }
