package sink

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/flowgate/flowgate/benchmarks/internal/ident"
	"github.com/flowgate/flowgate/format"
	pb "github.com/flowgate/flowgate/proto"
	"github.com/flowgate/flowgate/ship"
	"github.com/flowgate/flowgate/ship/https"
)

// flowEvent is the event flowgate ships for a flow of run and seq that it
// received at receivedMs: its own encoder, so the sink reads the real format.
func flowEvent(run uint16, seq uint32, receivedMs int64) []byte {
	src, dst := ident.SrcAddr(seq), ident.DstAddr(run)
	f := &pb.Flow{
		Type: pb.FlowType_IPFIX, SrcAddr: src[:], DstAddr: dst[:], Exporter: []byte{127, 0, 0, 2},
		SrcPort: 1234, DstPort: 443, Proto: 6, Bytes: 1500, Packets: 3,
		TimeReceivedNs: uint64(receivedMs) * 1e6,
		Present:        1<<uint(pb.Field_SRC_ADDR) | 1<<uint(pb.Field_DST_ADDR) | 1<<uint(pb.Field_SRC_PORT) | 1<<uint(pb.Field_DST_PORT),
	}
	return format.IANA{}.AppendFlow(nil, f)
}

// body frames events as ship/https does: a gzip JSON array of strings.
func body(t *testing.T, events ...[]byte) []byte {
	t.Helper()
	framed := []byte{'['}
	for i, ev := range events {
		if i > 0 {
			framed = append(framed, ',')
		}
		framed = format.AppendBytes(framed, ev)
	}
	framed = append(framed, ']')
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	if _, err := gz.Write(framed); err != nil {
		t.Fatal(err)
	}
	if err := gz.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func post(t *testing.T, url string, b []byte) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url+"/jsons", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Encoding", "gzip")
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func stats(t *testing.T, url string, run uint16) Stats {
	t.Helper()
	resp, err := http.Get(fmt.Sprintf("%s/stats?run=%d", url, run))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st Stats
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	return st
}

func TestCountsUniqueDuplicateAndForeignEvents(t *testing.T) {
	srv := httptest.NewServer(New())
	defer srv.Close()
	past := time.Now().UnixMilli() - 5_000
	// Run 3: seq 1, 2, 3 and 8 once, 2 twice more; a syslog message of run
	// 3; an event of run 4; two events that are not ours.
	first := body(t, flowEvent(3, 1, past), flowEvent(3, 2, past), flowEvent(3, 3, past),
		[]byte(`{"message":"not ours"}`), flowEvent(4, 1, past))
	second := body(t, flowEvent(3, 2, past), flowEvent(3, 8, past), flowEvent(3, 2, past),
		ident.AppendToken([]byte(`<134>1 2026-01-01T00:00:00Z host app - - - "quoted" `), 3, 5, past),
		[]byte("{\"sourceIPv4Address\":\"10.0.0.9\",\"destinationIPv4Address\":\"192.0.2.1\"}"))
	for _, b := range [][]byte{first, second} {
		if status := post(t, srv.URL, b); status != http.StatusOK {
			t.Fatalf("POST /jsons answered %d", status)
		}
	}
	st := stats(t, srv.URL, 3)
	if st.Events != 7 || st.Unique != 5 || st.Duplicates != 2 || st.Foreign != 2 || st.Requests != 2 || st.BadRequests != 0 {
		t.Fatalf("run 3: %+v", st)
	}
	// Every event was received 5 s before it was built: the latency is at
	// least that. It is read from the message and the one flow whose
	// sequence number is a multiple of flowLatencyEvery (8).
	if st.Timed != 2 || st.P50Ms < 5_000 || st.P99Ms < st.P50Ms || st.MaxMs < st.P99Ms || st.FirstNs == 0 || st.LastNs < st.FirstNs {
		t.Fatalf("run 3 latency and arrival: %+v", st)
	}
	if st := stats(t, srv.URL, 4); st.Unique != 1 || st.Events != 1 {
		t.Fatalf("run 4: %+v", st)
	}
	if st := stats(t, srv.URL, 5); st.Events != 0 || st.FirstNs != 0 {
		t.Fatalf("run 5, never sent: %+v", st)
	}
}

// flowgate's own HTTPS output, the sink's real sender (HTTP/2 over TLS,
// its gzip writer, its framing), posts a batch whose body is many times
// the HTTP/2 flow-control window: every event counts once.
func TestCountsWhatFlowgatePosts(t *testing.T) {
	s := New()
	srv := httptest.NewUnstartedServer(s)
	srv.EnableHTTP2 = true
	srv.StartTLS()
	defer srv.Close()
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := https.New(https.Sekoia(srv.URL, "SinkTestKey0123456789", ca))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	const n = 20_000
	received := time.Now().UnixMilli()
	events := make([][]byte, n)
	for i := range events {
		events[i] = format.AppendBytes(nil, flowEvent(6, uint32(i), received))
	}
	if err := out.Send(t.Context(), ship.NewBatch(events...)); err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(6); st.Unique != n || st.Events != n || st.Timed != n/flowLatencyEvery || st.Foreign != 0 || st.BadRequests != 0 {
		t.Fatalf("%+v, want %d events counted once", st, n)
	}
}

func TestRefusesWhatIsNotAnArrayOfStrings(t *testing.T) {
	srv := httptest.NewServer(New())
	defer srv.Close()
	for _, b := range [][]byte{[]byte("not gzip"), body(t), mustGzip(t, `{"a":1}`), mustGzip(t, `["unterminated`), mustGzip(t, `["a" "b"]`)} {
		status := post(t, srv.URL, b)
		if b2 := body(t); bytes.Equal(b, b2) {
			if status != http.StatusOK {
				t.Errorf("empty array answered %d", status)
			}
			continue
		}
		if status != http.StatusBadRequest {
			t.Errorf("%.20q answered %d", b, status)
		}
	}
	if st := stats(t, srv.URL, 0); st.BadRequests != 4 || st.Requests != 5 {
		t.Fatalf("%+v", st)
	}
}

func mustGzip(t *testing.T, s string) []byte {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	_, _ = gz.Write([]byte(s))
	_ = gz.Close()
	return buf.Bytes()
}

func TestEachStringGivesContentsAsWritten(t *testing.T) {
	long := strings.Repeat(`x\"`, readChunk) // longer than a chunk: the buffer grows
	body := ` [ "a\"b" , "\\\/\n\t\u0041\u00e9" ,"", "` + long + `" ] ` + "\n"
	want := []string{`a\"b`, `\\\/\n\t\u0041\u00e9`, "", long}
	// Read as the body comes, and a byte at a time: every string crosses
	// the end of what was read at every place.
	for name, r := range map[string]func() io.Reader{
		"whole":       func() io.Reader { return strings.NewReader(body) },
		"byte a time": func() io.Reader { return iotest.OneByteReader(strings.NewReader(body)) },
	} {
		var got []string
		if _, err := EachString(r(), nil, func(s []byte) { got = append(got, string(s)) }); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if strings.Join(got, "|") != strings.Join(want, "|") {
			t.Fatalf("%s: %.80q, want %.80q", name, got, want)
		}
	}
	for _, bad := range []string{`["a\`, `["a\"]`, `["a\\\"]`, `["a"`, `"a"`, `["a"x]`, `["a"] x`, `[]]`, ``} {
		if _, err := EachString(strings.NewReader(bad), nil, func([]byte) {}); err != ErrNotArray {
			t.Errorf("%s: %v, want ErrNotArray", bad, err)
		}
	}
	// An event past the bound is refused; so is a body that cannot be read.
	huge := `["` + strings.Repeat("x", 2*maxEventBytes) + `"]`
	if _, err := EachString(strings.NewReader(huge), nil, func([]byte) {}); err == nil || err == ErrNotArray {
		t.Errorf("an event of %d bytes: %v, want it refused as too long", 2*maxEventBytes, err)
	}
	broken := errors.New("connection reset")
	if _, err := EachString(io.MultiReader(strings.NewReader(`["a",`), iotest.ErrReader(broken)), nil, func([]byte) {}); err != broken {
		t.Errorf("a body cut short: %v, want %v", err, broken)
	}
}

func TestHistogramQuantiles(t *testing.T) {
	var h Histogram
	if h.Quantile(0.5) != 0 {
		t.Fatal("empty histogram")
	}
	for ms := int64(1); ms <= 100; ms++ {
		h.Add(ms)
	}
	h.Add(-3)      // counts as 0
	h.Add(500_000) // beyond the exact range
	if p50, p99, mx := h.Quantile(0.5), h.Quantile(0.99), h.Max(); p50 != 50 || p99 != 100 || mx != 500_000 {
		t.Fatalf("p50 %d p99 %d max %d", p50, p99, mx)
	}
}

// BenchmarkServeJSONs is the sink's cost per event (ns/op is per event),
// for a body as flowgate posts it at its best rates: 10 000 flows as the
// benchmark's IPFIX exporters send them.
func BenchmarkServeJSONs(b *testing.B) {
	const n = 10_000
	now := time.Now().UnixMilli()
	var present uint64
	for _, fl := range []pb.Field{pb.Field_SRC_ADDR, pb.Field_DST_ADDR, pb.Field_SRC_PORT, pb.Field_DST_PORT,
		pb.Field_PROTO, pb.Field_IP_VERSION, pb.Field_TOS, pb.Field_TCP_FLAGS, pb.Field_BYTES, pb.Field_PACKETS,
		pb.Field_IN_IF, pb.Field_OUT_IF, pb.Field_START, pb.Field_END, pb.Field_FLOW_END_REASON, pb.Field_OBSERVATION_DOMAIN} {
		present |= 1 << uint(fl)
	}
	events := make([][]byte, n)
	for i := range events {
		src, dst := ident.SrcAddr(uint32(i)), ident.DstAddr(1)
		f := &pb.Flow{
			Type: pb.FlowType_IPFIX, SrcAddr: src[:], DstAddr: dst[:], Exporter: []byte{127, 0, 0, 2},
			SrcPort: uint32(1024 + i), DstPort: 443, Proto: 6, Bytes: uint64(1500 * i), Packets: uint64(3 + i%7),
			TcpFlags: 0x1b, InIf: 3, OutIf: 7, FlowEndReason: 1, IpVersion: 4, ObservationDomainId: uint32(i % 4),
			TimeReceivedNs: uint64(now) * 1e6, StartMs: uint64(now - 2000), EndMs: uint64(now - 10), Present: present,
		}
		events[i] = format.IANA{}.AppendFlow(nil, f)
	}
	gz := body(&testing.T{}, events...)
	s := New()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i += n {
		req := httptest.NewRequest(http.MethodPost, "/jsons", bytes.NewReader(gz))
		req.Header.Set("Content-Encoding", "gzip")
		w := httptest.NewRecorder()
		s.ServeHTTP(w, req)
		if w.Code != http.StatusOK {
			b.Fatal(w.Code)
		}
	}
	if st := s.Stats(1); st.Unique != n {
		b.Fatalf("%+v", st)
	}
}

// FuzzEventLen checks the shortcut for objects against stringLen: on the
// contents of a JSON string holding any object, as /jsons carries events,
// both find its end.
func FuzzEventLen(f *testing.F) {
	for _, s := range []string{``, `"`, `}`, `}"`, `{}`, `\`, `"a":"}\""`, `"m":"x}\"y"`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, inner string) {
		quoted, _ := json.Marshal("{" + inner + "}") // a string always marshals
		contents := append(quoted[1:], `,"next}"]`...)
		want := len(quoted) - 2
		if got, err := stringLen(contents); err != nil || got != want {
			t.Fatalf("stringLen(%q) = %d, %v; want %d", contents, got, err, want)
		}
		if got, err := eventLen(contents); err != nil || got != want {
			t.Fatalf("eventLen(%q) = %d, %v; want %d", contents, got, err, want)
		}
	})
}
