package buffer

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// DeadLetterStream holds the events an intake refused for good (HTTP 400,
// 413 or 422 for the event alone), apart from the records waiting to be
// shipped: its own bound, kept across restarts, never shipped unless sent
// again.
const DeadLetterStream = "FLOWGATE_DLQ"

const (
	deadLetterPrefix = "flowgate.dlq."
	// Headers of a dead letter; the data is the event.
	hdrIntake = "Flowgate-Intake"
	hdrStatus = "Flowgate-Status"
	hdrReason = "Flowgate-Reason"
	hdrTime   = "Flowgate-Time"
	// maxReasonBytes bounds the remote answer kept with a dead letter.
	maxReasonBytes = 512
	fetchBatch     = 256
	fetchWait      = time.Second
)

// DeadLetter is one event the intake refused for good, and why.
type DeadLetter struct {
	// Seq is its place in the dead-letter stream.
	Seq    uint64
	Intake string
	// Status is the remote answer (an HTTP status).
	Status int
	// Reason is the remote side's message.
	Reason string
	Time   time.Time
	// Event is the event as it was sent.
	Event []byte
}

// deadLetterSubject is where an intake's dead letters go.
func deadLetterSubject(intake string) string { return deadLetterPrefix + token(intake) }

// PutDeadLetter stores a dead letter, waiting until it is stored; ErrFull
// when the dead-letter stream is at its bound.
func (b *Buffer) PutDeadLetter(ctx context.Context, dl DeadLetter) error {
	m := newMsg(deadLetterSubject(dl.Intake), dl.Event)
	m.Header.Set(hdrIntake, dl.Intake)
	m.Header.Set(hdrStatus, strconv.Itoa(dl.Status))
	if len(dl.Reason) > maxReasonBytes {
		dl.Reason = dl.Reason[:maxReasonBytes]
	}
	m.Header.Set(hdrReason, dl.Reason)
	m.Header.Set(hdrTime, dl.Time.UTC().Format(time.RFC3339Nano))
	err := b.publish(ctx, m)
	if isFull(err) {
		return fmt.Errorf("dead letters: %w: %w", ErrFull, err)
	}
	if err != nil {
		return fmt.Errorf("dead letters: %w", err)
	}
	return nil
}

// DeadLetters calls fn with each dead letter of an intake (of every intake
// when intake is empty), oldest first.
func (b *Buffer) DeadLetters(ctx context.Context, intake string, fn func(DeadLetter) error) error {
	return b.eachDeadLetter(ctx, intake, fn)
}

// DeadLetterCount is how many dead letters an intake has (every intake
// when intake is empty).
func (b *Buffer) DeadLetterCount(ctx context.Context, intake string) (int, error) {
	n, err := b.countDeadLetters(ctx, deadLetterFilter(intake))
	return int(n), err
}

// ResendDeadLetters moves an intake's dead letters back to subject, the
// one its shipper reads (a routed key's or an output's is not named after
// the shipper), where the shipper takes them as events to send as they are, and returns
// how many moved; moved, when not nil, is told the count after each one.
// Each is stored again before it leaves the dead letters: a failure in
// between leaves a copy in both, not none.
func (b *Buffer) ResendDeadLetters(ctx context.Context, intake, subject string, moved func(int)) (int, error) {
	if intake == "" {
		return 0, errors.New("dead letters are sent again for one intake at a time")
	}
	n := 0
	err := b.eachDeadLetter(ctx, intake, func(dl DeadLetter) error {
		m := nats.NewMsg(subject)
		m.Data = dl.Event
		m.Header.Set(EventHeader, "1")
		// The same id whatever the attempt: sent again once.
		m.Header.Set(jetstream.MsgIDHeader, "dlq-"+strconv.FormatUint(dl.Seq, 10)+"-"+dl.Time.Format(time.RFC3339Nano))
		pctx, cancel := context.WithTimeout(ctx, publishTimeout)
		err := b.publish(pctx, m)
		cancel()
		if err != nil {
			return fmt.Errorf("dead letter %d: %w", dl.Seq, b.classify(err))
		}
		if err := b.dlq.DeleteMsg(ctx, dl.Seq); err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
			return fmt.Errorf("dead letter %d: %w", dl.Seq, err)
		}
		n++
		if moved != nil {
			moved(n)
		}
		return nil
	})
	return n, err
}

// eachDeadLetter reads the dead letters of a subject with an ordered
// consumer, which leaves no state behind.
func (b *Buffer) eachDeadLetter(ctx context.Context, intake string, fn func(DeadLetter) error) error {
	subject := deadLetterFilter(intake)
	left, err := b.countDeadLetters(ctx, subject)
	if err != nil || left == 0 {
		return err
	}
	cons, err := b.dlq.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: []string{subject}})
	if err != nil {
		return fmt.Errorf("stream %s: %w", DeadLetterStream, err)
	}
	for left > 0 {
		batch, err := cons.Fetch(fetchBatch, jetstream.FetchMaxWait(fetchWait))
		if err != nil {
			return fmt.Errorf("stream %s: %w", DeadLetterStream, err)
		}
		got := 0
		for m := range batch.Messages() {
			got++
			meta, err := m.Metadata()
			if err != nil {
				return fmt.Errorf("stream %s: %w", DeadLetterStream, err)
			}
			if err := fn(readDeadLetter(m, meta.Sequence.Stream)); err != nil {
				return err
			}
			left = meta.NumPending
		}
		if err := batch.Error(); err != nil {
			return fmt.Errorf("stream %s: %w", DeadLetterStream, err)
		}
		if got == 0 {
			// Removed meanwhile (another node sent them again).
			return nil
		}
	}
	return nil
}

// deadLetterFilter is the subject of an intake's dead letters, or of all
// when intake is empty.
func deadLetterFilter(intake string) string {
	if intake == "" {
		return deadLetterPrefix + "*"
	}
	return deadLetterSubject(intake)
}

// countDeadLetters is how many dead letters the subject filter holds.
func (b *Buffer) countDeadLetters(ctx context.Context, subject string) (uint64, error) {
	info, err := b.dlq.Info(ctx, jetstream.WithSubjectFilter(subject))
	if err != nil {
		return 0, fmt.Errorf("stream %s: %w", DeadLetterStream, err)
	}
	n := uint64(0)
	for _, c := range info.State.Subjects {
		n += c
	}
	return n, nil
}

func readDeadLetter(m jetstream.Msg, seq uint64) DeadLetter {
	h := m.Headers()
	dl := DeadLetter{Seq: seq, Intake: h.Get(hdrIntake), Reason: h.Get(hdrReason), Event: m.Data()}
	dl.Status, _ = strconv.Atoi(h.Get(hdrStatus))
	dl.Time, _ = time.Parse(time.RFC3339Nano, h.Get(hdrTime))
	return dl
}
