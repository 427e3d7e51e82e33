package buffer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func open(t *testing.T, dir string, maxBytes int64) *Buffer {
	t.Helper()
	b, err := Open(context.Background(), Config{Dir: dir, MaxBytes: maxBytes}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestAFullBufferRefusesWithErrFull(t *testing.T) {
	b := open(t, t.TempDir(), 64<<20)
	defer b.Close()
	subject := Subject("full")
	msg := bytes.Repeat([]byte("x"), 1<<20)
	var err error
	for i := 0; i < 100 && err == nil; i++ {
		err = b.Publish(context.Background(), subject, msg)
	}
	if !errors.Is(err, ErrFull) {
		t.Fatalf("publishing past the bound: %v", err)
	}
	if err := b.Check(); err == nil || !strings.Contains(err.Error(), "full") {
		t.Fatalf("a full buffer is not ready, and says why: %v", err)
	}
	// Once drained, it takes writes again.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := b.Consume(ctx, subject, 8)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Stop()
	m, err := c.Next(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.DoubleAck(ctx); err != nil {
		t.Fatal(err)
	}
	if err := b.Publish(ctx, subject, msg); err != nil {
		t.Fatalf("after draining: %v", err)
	}
	if err := b.Check(); err != nil {
		t.Fatalf("a buffer taking writes again is ready: %v", err)
	}
}

// A Publisher hands the buffer of a stored message out again, and not
// that of one the store refused: a retry may still hold it.
func TestAPublisherReusesTheBuffersOfStoredMessagesOnly(t *testing.T) {
	b := open(t, t.TempDir(), 64<<20)
	defer b.Close()
	outcomes := make(chan error, 1)
	p := b.Publisher(Subject("reuse"), func(_ int, err error) { outcomes <- err })
	defer p.Close()
	if got := p.Buffer(); got != nil {
		t.Fatalf("a new publisher hands out a buffer of %d bytes", cap(got))
	}
	for i := range 100 {
		msg := bytes.Repeat([]byte{byte(i)}, 1<<20)
		p.Publish(msg, 1)
		err := <-outcomes
		got := p.Buffer()
		switch {
		case err == nil && (cap(got) != cap(msg) || &got[:1][0] != &msg[0]):
			t.Fatalf("message %d stored, then a buffer of %d bytes handed out, not its own", i, cap(got))
		case err != nil && got != nil:
			t.Fatalf("message %d refused (%v), yet its buffer handed out", i, err)
		case errors.Is(err, ErrFull):
			return
		case err != nil:
			t.Fatal(err)
		}
		if again := p.Buffer(); again != nil {
			t.Fatalf("message %d's buffer handed out twice", i)
		}
	}
	t.Fatal("100 MiB published into a 64 MiB buffer, none refused")
}

func TestWhatWasNotAcknowledgedSurvivesARestart(t *testing.T) {
	dir := t.TempDir()
	subject := Subject("Routers / edge")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	b := open(t, dir, 128<<20)
	for _, s := range []string{"one", "two", "three"} {
		if err := b.Publish(ctx, subject, []byte(s)); err != nil {
			t.Fatal(err)
		}
	}
	c, err := b.Consume(ctx, subject, 8)
	if err != nil {
		t.Fatal(err)
	}
	m, err := c.Next(ctx)
	if err != nil || string(m.Data()) != "one" {
		t.Fatalf("first message %v %v", m, err)
	}
	if err := m.DoubleAck(ctx); err != nil {
		t.Fatal(err)
	}
	// "two" is delivered and never acknowledged: it must come back.
	if m, err := c.Next(ctx); err != nil || string(m.Data()) != "two" {
		t.Fatalf("second message %v %v", m, err)
	}
	c.Stop()
	b.Close()

	b = open(t, dir, 128<<20)
	defer b.Close()
	if d, err := b.Depth(ctx, subject); err != nil || d != 2 {
		t.Fatalf("after a restart the buffer holds %d messages (%v), want 2", d, err)
	}
	c, err = b.Consume(ctx, subject, 8)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Stop()
	var got []string
	for len(got) < 2 {
		m, err := c.Next(ctx)
		if err != nil {
			t.Fatalf("after %v: %v", got, err)
		}
		got = append(got, string(m.Data()))
		_ = m.Ack()
	}
	if got[0] != "two" || got[1] != "three" {
		t.Fatalf("after a restart: %v", got)
	}
}

func TestSubjectsAreDistinctAndSafe(t *testing.T) {
	seen := map[string]string{}
	for _, name := range []string{"Routers", "routers", "Routers ", "a.b", "a_b", "a*b", "a>b", "été", "", "x/y z"} {
		s := Subject(name)
		if prev, dup := seen[s]; dup {
			t.Errorf("%q and %q share subject %s", name, prev, s)
		}
		seen[s] = name
		if bytes.ContainsAny([]byte(s[len(subjectPrefix):]), ".*> \t") {
			t.Errorf("subject %q of %q has a reserved character", s, name)
		}
	}
}

func TestTheStoreIsOpenInOneProcessAtATime(t *testing.T) {
	dir := t.TempDir()
	b := open(t, dir, 64<<20)
	if _, err := Open(context.Background(), Config{Dir: dir, MaxBytes: 64 << 20}, quiet); !errors.Is(err, ErrInUse) {
		t.Fatalf("a second open of the store: %v", err)
	}
	b.Close()
	open(t, dir, 64<<20).Close()
}

func TestDeadLettersSurviveARestartAndGoBack(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	b := open(t, dir, 128<<20)
	at := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	for i, intake := range []string{"Routers", "Firewall", "Routers"} {
		dl := DeadLetter{Intake: intake, Status: 400 + i, Reason: strings.Repeat("r", 1000), Time: at, Event: []byte(fmt.Sprintf("event %d", i))}
		if err := b.PutDeadLetter(ctx, dl); err != nil {
			t.Fatal(err)
		}
	}
	b.Close()

	b = open(t, dir, 128<<20)
	defer b.Close()
	var got []DeadLetter
	if err := b.DeadLetters(ctx, "Routers", func(dl DeadLetter) error { got = append(got, dl); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || string(got[0].Event) != "event 0" || got[0].Status != 400 || string(got[1].Event) != "event 2" ||
		got[1].Status != 402 || got[0].Intake != "Routers" || !got[0].Time.Equal(at) || len(got[0].Reason) != maxReasonBytes {
		t.Fatalf("dead letters of Routers after a restart: %+v", got)
	}
	all := 0
	if err := b.DeadLetters(ctx, "", func(DeadLetter) error { all++; return nil }); err != nil || all != 3 {
		t.Fatalf("%d dead letters in all (%v)", all, err)
	}
	n, err := b.ResendDeadLetters(ctx, "Routers", Subject("Routers"), nil)
	if err != nil || n != 2 {
		t.Fatalf("resent %d (%v)", n, err)
	}
	if d, err := b.Depth(ctx, Subject("Routers")); err != nil || d != 2 {
		t.Fatalf("the intake's subject holds %d messages (%v), want the 2 sent again", d, err)
	}
	c, err := b.Consume(ctx, Subject("Routers"), 8)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Stop()
	for _, want := range []string{"event 0", "event 2"} {
		m, err := c.Next(ctx)
		if err != nil || string(m.Data()) != want || !IsEvent(m) {
			t.Fatalf("message %v %v, want the event %q", m, err, want)
		}
		_ = m.Ack()
	}
	left := 0
	if err := b.DeadLetters(ctx, "", func(dl DeadLetter) error {
		left++
		if dl.Intake != "Firewall" {
			t.Errorf("left %+v", dl)
		}
		return nil
	}); err != nil || left != 1 {
		t.Fatalf("%d dead letters left (%v), want Firewall's", left, err)
	}
}
