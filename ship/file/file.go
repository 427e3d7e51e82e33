// Package file ships batches to a local file or stdout, one event a line:
// the offline output of the quick start, and a way to look at what would be
// sent. A batch counts as accepted once it is written (and synced, for a
// file).
//
// A line is exactly one event: control bytes in an event (a UDP syslog
// message carries anything: LF, CR, NUL, terminal escapes) are written as
// rsyslog writes them, '#' and three octal digits (LF is #012). Tab is kept,
// and nothing else changes, so a JSON event stays the same JSON.
package file

import (
	"context"
	"encoding/binary"
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

// New opens path for appending (Open gives "-", stdout, its writer).
func New(path string) (*Transport, error) {
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

// Send writes every event of b as one line, in one write.
func (t *Transport) Send(_ context.Context, b *ship.Batch) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	buf := t.line[:0]
	for i := range b.Len() {
		buf = AppendLine(buf, b.Event(i))
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

// AppendLine appends event as one line, without its end: each control byte
// (below 0x20) but tab becomes '#' and its three octal digits (LF #012, CR
// #015, NUL #000), rsyslog's escaping of control characters. Other bytes,
// '#' and '\\' included, are copied as they are.
func AppendLine(dst, event []byte) []byte {
	for {
		i := nextControl(event)
		dst = append(dst, event[:i]...)
		if i == len(event) {
			return dst
		}
		c := event[i]
		dst = append(dst, '#', '0'+c>>6, '0'+c>>3&7, '0'+c&7)
		event = event[i+1:]
	}
}

// escaped says whether AppendLine escapes c.
func escaped(c byte) bool { return c < ' ' && c != '\t' }

// nextControl returns the index of the first byte of s to escape, or len(s).
// It tests sixteen bytes at a time: events almost never hold one, and a
// byte loop over every event was five times slower.
func nextControl(s []byte) int {
	i := 0
	for ; i+16 <= len(s); i += 16 {
		w := s[i : i+16]
		if mayControl(binary.LittleEndian.Uint64(w)) || mayControl(binary.LittleEndian.Uint64(w[8:])) {
			// A tab, or the control byte: find which.
			for j := i; j < i+16; j++ {
				if escaped(s[j]) {
					return j
				}
			}
		}
	}
	for ; i < len(s); i++ {
		if escaped(s[i]) {
			return i
		}
	}
	return len(s)
}

// mayControl says whether one of the eight bytes of x is below 0x20: the
// subtraction sets the high bit of such a byte (and, through borrows, maybe
// of later ones), never of a byte from 0x20 to 0xff alone.
func mayControl(x uint64) bool {
	const ones, high = 0x0101010101010101, 0x8080808080808080
	return (x-0x20*ones)&^x&high != 0
}

// Close closes the file (never a writer it was given).
func (t *Transport) Close() error {
	if t.f == nil {
		return nil
	}
	return t.f.Close()
}

var _ ship.Transport = (*Transport)(nil)
