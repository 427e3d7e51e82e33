// Package file ships batches to a local file or stdout, one event a line:
// the offline output of the quick start, and a way to look at what would be
// sent. A batch counts as accepted once it is written (and synced, for a
// file).
package file

import (
	"context"
	"fmt"
	"os"
	"sync"

	"github.com/flowgate/flowgate/ship"
)

// Transport appends events to a file.
type Transport struct {
	mu   sync.Mutex
	f    *os.File
	sync bool
	line []byte
}

// New opens path for appending; "-" is stdout.
func New(path string) (*Transport, error) {
	if path == "-" {
		return &Transport{f: os.Stdout}, nil
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return nil, fmt.Errorf("output file: %w", err)
	}
	return &Transport{f: f, sync: true}, nil
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
	if _, err := t.f.Write(buf); err != nil {
		return fmt.Errorf("output file %s: %w", t.f.Name(), err)
	}
	if t.sync {
		if err := t.f.Sync(); err != nil {
			return fmt.Errorf("output file %s: %w", t.f.Name(), err)
		}
	}
	return nil
}

// Close closes the file (never stdout).
func (t *Transport) Close() error {
	if t.f == os.Stdout {
		return nil
	}
	return t.f.Close()
}

var _ ship.Transport = (*Transport)(nil)
