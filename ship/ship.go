// Package ship moves one intake's records from the buffer to the intake:
// it pulls buffer messages, turns their records into events, batches them by
// count, bytes and time, hands batches to a transport (ship/https,
// ship/syslog, ship/relp, ship/file) with several in flight, follows the
// intake's answers (a batch too large goes in halves, events refused alone
// become dead letters, a refused key pauses the intake, anything else is
// retried until accepted), and acknowledges the buffer in order, only for
// what the remote side accepted or was set aside.
package ship

import (
	"context"
	"errors"
	"fmt"
	"time"

	pb "github.com/flowgate/flowgate/proto"
)

// Transport delivers batches to one destination.
type Transport interface {
	// Send delivers every event of b, or returns an error; the batch is
	// then sent again after a backoff. An *Error carries the remote side's
	// answer and the wait it asked for.
	Send(ctx context.Context, b *Batch) error
	// Close releases connections.
	Close() error
}

// Encoder turns records into events, one per record: format.IANA and
// format.GoFlow2 for JSON events, format.Syslog for RFC 5424 lines.
type Encoder interface {
	AppendFlow(dst []byte, f *pb.Flow) []byte
	AppendCounters(dst []byte, c *pb.InterfaceCounters) []byte
	AppendLog(dst []byte, l *pb.Log) []byte
}

// Batch is a run of events sent in one request.
type Batch struct {
	// buf holds the events back to back; ends[i] is where event i ends.
	buf  []byte
	ends []int
}

// Len is the number of events.
func (b *Batch) Len() int { return len(b.ends) }

// Bytes is the total size of the events.
func (b *Batch) Bytes() int { return len(b.buf) }

// Event returns event i; it stays valid until the batch is reused.
func (b *Batch) Event(i int) []byte {
	start := 0
	if i > 0 {
		start = b.ends[i-1]
	}
	return b.buf[start:b.ends[i]:b.ends[i]]
}

// Split returns the first and second halves of b, sharing its memory, for
// transports that must send less at once.
func (b *Batch) Split() (*Batch, *Batch) {
	h := len(b.ends) / 2
	cut := 0
	if h > 0 {
		cut = b.ends[h-1]
	}
	second := &Batch{buf: b.buf[cut:], ends: make([]int, 0, len(b.ends)-h)}
	for _, e := range b.ends[h:] {
		second.ends = append(second.ends, e-cut)
	}
	return &Batch{buf: b.buf[:cut:cut], ends: b.ends[:h:h]}, second
}

// truncate drops events from n on.
func (b *Batch) truncate(n int) {
	if n == 0 {
		b.buf, b.ends = b.buf[:0], b.ends[:0]
		return
	}
	b.buf = b.buf[:b.ends[n-1]]
	b.ends = b.ends[:n]
}

// NewBatch builds a batch from events, for transports' tests and tools.
func NewBatch(events ...[]byte) *Batch {
	b := &Batch{}
	for _, e := range events {
		b.buf = append(b.buf, e...)
		b.ends = append(b.ends, len(b.buf))
	}
	return b
}

// Error is a refusal by the remote side that says how to go on.
type Error struct {
	// Status is the remote answer (an HTTP status), 0 for none.
	Status int
	// RetryAfter is how long the remote side asked us to wait, 0 if it did not say.
	RetryAfter time.Duration
	Err        error
}

func (e *Error) Error() string {
	if e.Status != 0 {
		return fmt.Sprintf("status %d: %v", e.Status, e.Err)
	}
	return e.Err.Error()
}

func (e *Error) Unwrap() error { return e.Err }

// status returns the remote status an error carries, 0 for none.
func status(err error) int {
	var e *Error
	if errors.As(err, &e) {
		return e.Status
	}
	return 0
}

// retryAfter returns the wait the remote side asked for, 0 for none.
func retryAfter(err error) time.Duration {
	var e *Error
	if errors.As(err, &e) {
		return e.RetryAfter
	}
	return 0
}
