package buffer

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"
)

func openBuffer(t *testing.T, dir string) *Buffer {
	t.Helper()
	b, err := Open(context.Background(), Config{Dir: dir, MaxBytes: 256 << 20}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// entries collects what a watch delivers.
type entries struct {
	mu sync.Mutex
	m  map[string]string
}

func (e *entries) update(key string, value []byte) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if value == nil {
		delete(e.m, key)
		return
	}
	e.m[key] = string(value)
}

func (e *entries) get(key string) (string, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	v, ok := e.m[key]
	return v, ok
}

func TestKVSharedAndKept(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	b := openBuffer(t, dir)
	one, err := b.KV(ctx, "TEST", "test bucket")
	if err != nil {
		t.Fatal(err)
	}
	if err := one.Save(ctx, "t.a", []byte("first")); err != nil {
		t.Fatal(err)
	}
	// A second user of the bucket loads what is there, then sees changes.
	two, err := b.KV(ctx, "TEST", "test bucket")
	if err != nil {
		t.Fatal(err)
	}
	seen := &entries{m: map[string]string{}}
	if err := two.Watch(ctx, seen.update); err != nil {
		t.Fatal(err)
	}
	if v, _ := seen.get("t.a"); v != "first" {
		t.Fatalf("loaded %q", v)
	}
	if err := one.Save(ctx, "t.b", []byte("second")); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for v, _ := seen.get("t.b"); v != "second"; v, _ = seen.get("t.b") {
		if time.Now().After(deadline) {
			t.Fatal("the change did not reach the other watcher")
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	b.Close()

	// After a restart the bucket holds both.
	b = openBuffer(t, dir)
	defer b.Close()
	kv, err := b.KV(context.Background(), "TEST", "test bucket")
	if err != nil {
		t.Fatal(err)
	}
	wctx, wcancel := context.WithCancel(context.Background())
	defer wcancel()
	after := &entries{m: map[string]string{}}
	if err := kv.Watch(wctx, after.update); err != nil {
		t.Fatal(err)
	}
	a, _ := after.get("t.a")
	b2, _ := after.get("t.b")
	if a != "first" || b2 != "second" {
		t.Fatalf("after a restart: %q %q", a, b2)
	}
}
