// Package file ships batches to a local file or stdout, one event a line:
// the offline output of the quick start, and a way to look at what would be
// sent. A batch counts as accepted once it is written (and synced, for a
// file).
package file

import (
	"context"
	"fmt"
	"io"
	"os"
	"sync"

	"github.com/flowgate/flowgate/ship"
)

// Transport appends events to a file.
type Transport struct {
	mu   sync.Mutex
	w    io.Writer
	name string
	// f is set for a file of our own, synced after each batch and closed.
	f    *os.File
	line []byte
}

// New opens path for appending; "-" is stdout.
func New(path string) (*Transport, error) {
	if path == "-" {
		return NewWriter(os.Stdout, "stdout"), nil
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return nil, fmt.Errorf("output file: %w", err)
	}
	return &Transport{w: f, name: path, f: f}, nil
}

// NewWriter writes to w, which it neither syncs nor closes: stdout shared
// with other writers of whole lines.
func NewWriter(w io.Writer, name string) *Transport {
	return &Transport{w: w, name: name}
}

// Send writes every event of b followed by a newline, in one write.
func (t *Transport) Send(_ context.Context, b *ship.Batch) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	buf := t.line[:0]
	for i := range b.Len() {
		buf = append(buf, b.Event(i)...)
		buf = append(buf, '\n')
	}
	t.line = buf
	if _, err := t.w.Write(buf); err != nil {
		return fmt.Errorf("output file %s: %w", t.name, err)
	}
	if t.f != nil {
		if err := t.f.Sync(); err != nil {
			return fmt.Errorf("output file %s: %w", t.name, err)
		}
	}
	return nil
}

// Close closes the file (never a writer it was given).
func (t *Transport) Close() error {
	if t.f == nil {
		return nil
	}
	return t.f.Close()
}

var _ ship.Transport = (*Transport)(nil)
