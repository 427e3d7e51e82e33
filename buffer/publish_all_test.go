package buffer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"
	"time"
)

// PublishAll stores every message, each on its subject, in order; past
// the bound it says ErrFull.
func TestPublishAll(t *testing.T) {
	b := open(t, t.TempDir(), 64<<20)
	defer b.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	one, two := Subject("one"), Subject("two")
	var msgs []Message
	for i := range 10 {
		msgs = append(msgs, Message{Subject: one, Data: fmt.Appendf(nil, "one-%d", i)}, Message{Subject: two, Data: fmt.Appendf(nil, "two-%d", i)})
	}
	if err := b.PublishAll(ctx, msgs); err != nil {
		t.Fatal(err)
	}
	for name, s := range map[string]string{"one": one, "two": two} {
		c, err := b.Consume(ctx, s, 16)
		if err != nil {
			t.Fatal(err)
		}
		for i := range 10 {
			m, err := c.Next(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if want := fmt.Sprintf("%s-%d", name, i); string(m.Data()) != want {
				t.Fatalf("message %d of %s is %q, want %q", i, s, m.Data(), want)
			}
		}
		c.Stop()
	}
	big := bytes.Repeat([]byte("x"), 1<<20)
	var err error
	for i := 0; i < 20 && err == nil; i++ {
		err = b.PublishAll(ctx, []Message{{one, big}, {one, big}, {one, big}, {one, big}, {one, big}})
	}
	if !errors.Is(err, ErrFull) {
		t.Fatalf("publishing past the bound: %v", err)
	}
}
