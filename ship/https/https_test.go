package https

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/flowgate/flowgate/format"
	"github.com/flowgate/flowgate/internal/intaketest"
	"github.com/flowgate/flowgate/ship"
)

const key = "HttpsTestKey0123456789"

func TestSendPostsWhatTheIntakeReads(t *testing.T) {
	in := intaketest.NewHTTPS(t)
	tr, err := New(Sekoia(in.URL, key, in.CAFile))
	if err != nil {
		t.Fatal(err)
	}
	events := []string{`{"a":1}`, "line with \"quotes\" and \\ and\nnewline", "ünïcode ✓"}
	var raw [][]byte
	for _, e := range events {
		raw = append(raw, format.AppendString(nil, e))
	}
	if err := tr.Send(context.Background(), ship.NewBatch(raw...)); err != nil {
		t.Fatal(err)
	}
	got := in.Events()
	if len(got) != len(events) || len(in.Problems()) > 0 {
		t.Fatalf("got %+v, problems %v", got, in.Problems())
	}
	for i, e := range got {
		if e.Event != events[i] || e.Key != key {
			t.Errorf("event %d = %q with key %q, sent %q", i, e.Event, e.Key, events[i])
		}
	}
}

func TestAnUnknownCertificateIsRefused(t *testing.T) {
	in := intaketest.NewHTTPS(t)
	tr, err := New(Sekoia(in.URL, key, ""))
	if err != nil {
		t.Fatal(err)
	}
	err = tr.Send(context.Background(), ship.NewBatch([]byte(`"x"`)))
	if err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("sent to an intake with an unknown certificate: %v", err)
	}
	if strings.Contains(err.Error(), key) {
		t.Fatalf("the error shows the key: %v", err)
	}
	if len(in.Events()) != 0 {
		t.Fatal("the intake got events")
	}
}

func TestRefusalsCarryStatusAndRetryAfter(t *testing.T) {
	in := intaketest.NewHTTPS(t)
	in.Refuse(func(int) (int, string) { return 429, "7" })
	tr, err := New(Sekoia(in.URL, key, in.CAFile))
	if err != nil {
		t.Fatal(err)
	}
	err = tr.Send(context.Background(), ship.NewBatch([]byte(`"x"`)))
	var se *ship.Error
	if !errors.As(err, &se) || se.Status != 429 || se.RetryAfter != 7*time.Second {
		t.Fatalf("error %#v", err)
	}
}

func TestLargeBatchesAreSplitUnderTheRequestLimit(t *testing.T) {
	in := intaketest.NewHTTPS(t)
	tr, err := New(Sekoia(in.URL, key, in.CAFile))
	if err != nil {
		t.Fatal(err)
	}
	// Random hex compresses to about half: 24 MiB of it cannot go in one
	// request. Each event stays under Sekoia's 250 KiB.
	var events [][]byte
	for range 128 {
		raw := make([]byte, 96<<10)
		_, _ = rand.Read(raw)
		events = append(events, format.AppendString(nil, hex.EncodeToString(raw)))
	}
	if err := tr.Send(context.Background(), ship.NewBatch(events...)); err != nil {
		t.Fatal(err)
	}
	got := in.Events()
	if len(got) != len(events) {
		t.Fatalf("%d events arrived, sent %d", len(got), len(events))
	}
	for i := range got {
		if `"`+got[i].Event+`"` != string(events[i]) {
			t.Fatalf("event %d differs", i)
		}
	}
	reqs := in.Requests()
	if len(reqs) < 2 {
		t.Fatalf("%d requests for ~12 MiB compressed", len(reqs))
	}
	for _, r := range reqs {
		if r.Bytes <= 0 || r.Bytes > 9<<20 {
			t.Errorf("a request of %d bytes, limit %d", r.Bytes, 9<<20)
		}
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	for v, want := range map[string]time.Duration{
		"":                              0,
		"30":                            30 * time.Second,
		"-1":                            0,
		"soon":                          0,
		"Mon, 23 Nov 2026 12:01:00 GMT": time.Minute,
		"Mon, 23 Nov 2026 11:00:00 GMT": 0,
	} {
		if got := parseRetryAfter(v, now); got != want {
			t.Errorf("parseRetryAfter(%q) = %s, want %s", v, got, want)
		}
	}
}
