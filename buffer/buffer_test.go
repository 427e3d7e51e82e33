package buffer

import (
	"bytes"
	"context"
	"errors"
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
