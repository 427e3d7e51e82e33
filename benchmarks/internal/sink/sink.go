// Package sink is the receiving end of the benchmarks: an intake's /jsons
// endpoint that takes gzip-compressed JSON arrays of events, counts each
// event's identity (unique, duplicated, foreign) per run, and records the
// latency from the appliance's receipt of events to their arrival here.
// It parses only what counting needs, so that it takes little of the CPU
// it shares with the appliance under test.
package sink

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/klauspost/compress/gzip"

	"github.com/flowgate/flowgate/benchmarks/internal/ident"
)

// maxBodyBytes bounds a request as the real intake does (10 MiB), with room.
const maxBodyBytes = 16 << 20

// readChunk is how much of a decompressed body is read at once: its
// events are counted while they are still in the CPU's cache, where a
// batch read whole (7 MB for 10 000 flows) was written out to memory and
// read back. maxEventBytes bounds one event, as the intake does (250 KiB),
// with room.
const (
	readChunk     = 256 << 10
	maxEventBytes = 1 << 20
)

// bodyChunk is how much of a request's body (compressed) is asked for at
// once. Go's HTTP/2 server gives the sender back window for what a read
// took, as soon as it is 4 KiB or more; the gzip reader, given a body it
// cannot read byte by byte, reads it through a buffer of 4 KiB: two
// WINDOW_UPDATE frames for every 4 KiB, each a TLS record written here and
// read by the appliance under test. Real intakes' front ends give window
// back in larger pieces.
const bodyChunk = 256 << 10

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
	// Latency from receipt by the appliance to arrival here, in
	// milliseconds, of Timed events: every message, one flow in
	// flowLatencyEvery.
	P50Ms int64  `json:"p50_ms"`
	P99Ms int64  `json:"p99_ms"`
	MaxMs int64  `json:"max_ms"`
	Timed uint64 `json:"timed"`
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
	timed     bool
	latencyMs int64
}

// flowLatencyEvery is how many flows share one latency reading: the flows
// whose sequence number is a multiple of it are timed. Finding a flow's
// receipt time near the end of its event cost the sink a third of its CPU
// when every flow was timed (BenchmarkServeJSONs: 582-675 ns per event,
// 398-493 timing one in eight); one in eight still times every datagram
// the generators send (23 to 30 flows each) and hundreds of thousands of
// flows per step.
const flowLatencyEvery = 8

// scratch is one request's reusable memory.
type scratch struct {
	body *bufio.Reader
	gz   *gzip.Reader
	buf  []byte
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
	now := time.Now()
	var foreign uint64
	sc.hits = sc.hits[:0]
	body, err := sc.open(r)
	if err == nil {
		sc.buf, err = EachString(body, sc.buf, func(ev []byte) {
			if h, ok := identify(ev, now); ok {
				sc.hits = append(sc.hits, h)
			} else {
				foreign++
			}
		})
	}
	s.mu.Lock()
	s.requests++
	if err != nil {
		// Refused whole, as the intake refuses a body it cannot read:
		// none of its events counts.
		s.badRequests++
		s.mu.Unlock()
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
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
		if h.timed {
			rs.latency.Add(h.latencyMs)
		}
		rs.lastNs = nowNs
	}
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	// The real intake answers one id per event; nobody here reads them.
	_, _ = io.WriteString(w, `{"event_ids":[]}`)
}

// open returns the request's body, decompressed when it is compressed.
func (sc *scratch) open(r *http.Request) (io.Reader, error) {
	body := io.LimitReader(r.Body, maxBodyBytes)
	if r.Header.Get("Content-Encoding") != "gzip" {
		return body, nil
	}
	if sc.body == nil {
		sc.body = bufio.NewReaderSize(body, bodyChunk)
	} else {
		sc.body.Reset(body)
	}
	var err error
	if sc.gz == nil {
		sc.gz, err = gzip.NewReader(sc.body)
	} else {
		err = sc.gz.Reset(sc.body)
	}
	if err != nil {
		return nil, fmt.Errorf("gzip: %w", err)
	}
	return sc.gz, nil
}

// identify reads an event's identity and latency, from the event as the
// array's string holds it (escaped): a flow's addresses and, for one flow
// in flowLatencyEvery, collectionTimeMilliseconds (when the appliance
// received it); or a syslog message's token (when it was sent).
func identify(ev []byte, now time.Time) (hit, bool) {
	if run, seq, ok := ident.FlowgateKeys.FromEscapedJSON(ev); ok {
		if seq%flowLatencyEvery != 0 {
			return hit{run: run, seq: seq}, true
		}
		at, _ := strconv.ParseInt(string(ident.EscapedField(ev, "collectionTimeMilliseconds")), 10, 64)
		return hit{run, seq, true, now.UnixMilli() - at}, true
	}
	if run, seq, sentMs, ok := ident.FromToken(ev); ok {
		return hit{run, seq, true, now.UnixMilli() - sentMs}, true
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
		st.Timed = rs.latency.n
	}
	return st
}

// ErrNotArray is a body that is not a JSON array of strings.
var ErrNotArray = errors.New("body is not a JSON array of strings")

// EachString reads the JSON array of strings r holds, in chunks, and calls
// fn with the contents of each string as they are written, escapes and all
// (valid only during the call): the identities are read where they lie
// (ident.EscapedField), as unescaping every event took half of the sink's
// CPU. It reads r to its end, so that a compressed body's checksum is
// checked. buf is memory to reuse; EachString returns it, grown.
func EachString(r io.Reader, buf []byte, fn func([]byte)) ([]byte, error) {
	if cap(buf) < readChunk {
		buf = make([]byte, 0, readChunk)
	}
	s := scanner{r: r, buf: buf[:0]}
	err := s.array(fn)
	if err == nil {
		// Nothing but spaces after the array.
		if _, more := s.next(); more {
			err = ErrNotArray
		}
	}
	if s.err != nil && s.err != io.EOF {
		err = s.err
	}
	return s.buf[:0], err
}

// scanner reads a JSON array of strings from r: buf[off:] is what was read
// and not yet parsed; err is r's, io.EOF at its end.
type scanner struct {
	r   io.Reader
	buf []byte
	off int
	err error
}

func (s *scanner) array(fn func([]byte)) error {
	if c, ok := s.next(); !ok || c != '[' {
		return ErrNotArray
	}
	s.off++
	c, ok := s.next()
	if ok && c == ']' {
		s.off++
		return nil
	}
	for {
		if !ok || c != '"' {
			return ErrNotArray
		}
		if !s.str(fn) {
			return ErrNotArray
		}
		if c, ok = s.next(); !ok {
			return ErrNotArray
		}
		s.off++
		switch c {
		case ']':
			return nil
		case ',':
		default:
			return ErrNotArray
		}
		c, ok = s.next()
	}
}

// next skips spaces and returns the byte after them; false at the end.
func (s *scanner) next() (byte, bool) {
	for {
		for ; s.off < len(s.buf); s.off++ {
			if c := s.buf[s.off]; c != ' ' && c != '\t' && c != '\n' && c != '\r' {
				return c, true
			}
		}
		if !s.fill() {
			return 0, false
		}
	}
}

// str calls fn with the string whose opening quote is at off and moves
// past it; false when r ends before the string does.
func (s *scanner) str(fn func([]byte)) bool {
	for {
		b := s.buf[s.off+1:]
		if n, err := eventLen(b); err == nil {
			fn(b[:n])
			s.off += n + 2
			return true
		}
		if !s.fill() {
			return false
		}
	}
}

// fill reads more of r after what is not parsed yet, which it first moves
// to the front of buf, until buf is full: an event is scanned again only
// when buf had no room for it, and buf then grows, up to an event of
// maxEventBytes. It is false when nothing more could be read.
func (s *scanner) fill() bool {
	if s.err != nil {
		return false
	}
	n := copy(s.buf, s.buf[s.off:])
	s.buf, s.off = s.buf[:n], 0
	if n == cap(s.buf) {
		if n >= maxEventBytes {
			s.err = fmt.Errorf("an event of more than %d bytes", n)
			return false
		}
		s.buf = slices.Grow(s.buf, n)
	}
	read := n
	for read < cap(s.buf) && s.err == nil {
		var m int
		m, s.err = s.r.Read(s.buf[read:cap(s.buf)])
		read += m
	}
	s.buf = s.buf[:read]
	return read > n
}

// eventLen is stringLen for the strings the appliance posts, JSON objects:
// in a valid JSON string every quote inside is escaped, so the first quote
// that follows a closing brace ends one that holds an object. bytes.Index
// finds that pair at the speed of memory, where stringLen reads every
// word. Other strings, and one with no such pair yet, go to stringLen. A
// string that starts with a brace and is not an object would be read with
// the strings after it, as one foreign event: the appliance posts none,
// and the ones it posts after it would be missed, not counted twice.
func eventLen(b []byte) (int, error) {
	if len(b) > 0 && b[0] == '{' {
		if i := bytes.Index(b, []byte(`}"`)); i >= 0 {
			return i + 1, nil
		}
	}
	return stringLen(b)
}

// stringLen is the length of the contents of a JSON string whose opening
// quote was consumed, up to its closing quote; it leaves escapes
// unchecked. It reads byte by byte: the events the appliance posts go to
// eventLen's search, and only other strings come here.
func stringLen(b []byte) (int, error) {
	esc := false
	for i, c := range b {
		switch {
		case esc:
			esc = false
		case c == '\\':
			esc = true
		case c == '"':
			return i, nil
		}
	}
	return 0, ErrNotArray
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
