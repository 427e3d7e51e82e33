package buffer

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

func TestBacklogSaysWhatWaitsAndSinceWhen(t *testing.T) {
	b := open(t, t.TempDir(), 256<<20)
	defer b.Close()
	ctx := context.Background()
	a, other := Subject("a"), Subject("other")
	before := time.Now().Add(-time.Millisecond)
	for range 3 {
		if err := b.Publish(ctx, a, bytes.Repeat([]byte("x"), 1000)); err != nil {
			t.Fatal(err)
		}
	}
	after := time.Now()
	if err := b.Publish(ctx, other, []byte("y")); err != nil {
		t.Fatal(err)
	}
	subj, store, err := b.Backlog(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := subj[a]
	if got.Messages != 3 || got.Oldest.Before(before) || got.Oldest.After(after) {
		t.Fatalf("backlog of a: %+v, want 3 messages, oldest between %s and %s", got, before, after)
	}
	if store.Bytes < 3001 || store.Messages != 4 || store.LimitBytes == 0 || got.Bytes != 3*(store.Bytes/4) {
		t.Fatalf("backlog of a %+v, store %+v", got, store)
	}

	// The collector reports by intake name, and 0 for an intake with nothing waiting.
	reg := prometheus.NewRegistry()
	reg.MustRegister(b.Metrics(func() map[string]string { return map[string]string{"A": a, "Empty": Subject("empty")} }))
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	values := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			name := mf.GetName()
			if len(m.GetLabel()) > 0 {
				name += "/" + m.GetLabel()[0].GetValue()
			}
			values[name] = m.GetGauge().GetValue()
		}
	}
	if values["flowgate_buffer_messages/A"] != 3 || values["flowgate_buffer_messages/Empty"] != 0 {
		t.Errorf("messages: %v", values)
	}
	if age := values["flowgate_buffer_oldest_age_seconds/A"]; age <= 0 || age > time.Since(before).Seconds() {
		t.Errorf("age of A's oldest: %v", age)
	}
	if age := values["flowgate_buffer_oldest_age_seconds/Empty"]; age != 0 {
		t.Errorf("age with nothing waiting: %v", age)
	}
}

func TestAFailedWriteMakesTheStoreUnreadyUntilOneSucceeds(t *testing.T) {
	b := open(t, t.TempDir(), 256<<20)
	defer b.Close()
	ctx := context.Background()
	s := Subject("w")
	// The stream refuses a message over its size bound: a write failure
	// that is not for lack of room.
	if err := b.Publish(ctx, s, bytes.Repeat([]byte("x"), MaxMessageBytes+1)); err == nil {
		t.Fatal("an oversize message was stored")
	}
	err := b.Check()
	if err == nil || !strings.Contains(err.Error(), "none succeeded since") {
		t.Fatalf("check after a failed write: %v", err)
	}
	if err := b.Publish(ctx, s, []byte("ok")); err != nil {
		t.Fatal(err)
	}
	if err := b.Check(); err != nil {
		t.Fatalf("check after a write succeeded: %v", err)
	}
}
