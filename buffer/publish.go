package buffer

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"
)

const (
	// publishTimeout bounds the wait for the store to answer one publish.
	publishTimeout = 10 * time.Second
	// publishRetryFor is how long a message the store could not take (a
	// cluster electing a leader, a reconnection) is offered again before
	// it is counted as lost.
	publishRetryFor = 30 * time.Second
	retryMin        = 50 * time.Millisecond
	retryMax        = 2 * time.Second
	// freeBuffers bounds the buffers a Publisher keeps for reuse.
	freeBuffers = 16
)

// Outcome reports what became of one published message: stored, or
// refused with err (ErrFull when the buffer is at its limit).
type Outcome func(records int, err error)

// Publisher writes one intake's messages to the buffer without waiting for
// each to be stored; outcomes arrive in order on a goroutine of its own.
type Publisher struct {
	b *Buffer
	// subjects are the destination's: each message is stored once under
	// each.
	subjects []string
	outcome  Outcome
	pending  chan pending
	done     chan struct{}
	once     sync.Once
	// free holds the buffers of stored messages for Buffer to hand out
	// again: a message's data is kept until it is stored (it may be
	// sent again), then nothing refers to it. A few are enough when
	// messages are stored about as fast as they come.
	free chan []byte
}

// pending is one copy of a message; the last copy carries the message's
// records, and its outcome is every copy's.
type pending struct {
	msg     *nats.Msg
	ack     jetstream.PubAckFuture
	err     error
	records int
	last    bool
}

// Publisher returns a publisher for an intake's destination (a subject,
// or several: see Destination).
func (b *Buffer) Publisher(dest string, outcome Outcome) *Publisher {
	p := &Publisher{
		b:        b,
		subjects: subjectsOf(dest),
		outcome:  outcome,
		pending:  make(chan pending, b.pubWindow),
		done:     make(chan struct{}),
		free:     make(chan []byte, freeBuffers),
	}
	go p.watch()
	return p
}

// newMsg is a message with an id of its own: the store keeps one copy
// whatever the number of attempts.
func newMsg(subject string, data []byte) *nats.Msg {
	m := nats.NewMsg(subject)
	m.Data = data
	m.Header.Set(jetstream.MsgIDHeader, nuid.Next())
	return m
}

// copies are a message for each subject of a destination. Their ids
// derive from the content, so that a publish tried again after some
// copies were stored (a full buffer) stores the others and not those
// again (within the store's duplicate window); records carry the time
// they were received, so two messages of the same content are one.
func (b *Buffer) copies(subjects []string, data []byte) []*nats.Msg {
	id := strconv.FormatUint(maphash.Bytes(b.idSeed, data), 36) + "-" + strconv.Itoa(len(data))
	ms := make([]*nats.Msg, len(subjects))
	for i, s := range subjects {
		m := nats.NewMsg(s)
		m.Data = data
		m.Header.Set(jetstream.MsgIDHeader, id+"-"+strconv.Itoa(i))
		ms[i] = m
	}
	return ms
}

// messagesTo is data as the messages to store for a destination: one, or
// a copy for each of its subjects.
func (b *Buffer) messagesTo(dest string, data []byte) []*nats.Msg {
	if strings.Contains(dest, destinationSep) {
		return b.copies(subjectsOf(dest), data)
	}
	return []*nats.Msg{newMsg(dest, data)}
}

// Buffer returns an empty buffer to encode the next message into: one
// that Publish took and is done with, or nil.
func (p *Publisher) Buffer() []byte {
	select {
	case b := <-p.free:
		return b[:0]
	default:
		return nil
	}
}

// Publish hands one message of records to the store (a copy for each
// subject of the destination). It blocks only while the publish window
// is full of messages waiting for the store. It keeps data, which the
// caller must not touch again, and hands it out from Buffer once the
// message is stored.
func (p *Publisher) Publish(data []byte, records int) {
	if len(p.subjects) == 1 {
		m := newMsg(p.subjects[0], data)
		ack, err := p.b.js.PublishMsgAsync(m)
		p.pending <- pending{msg: m, ack: ack, err: err, records: records, last: true}
		return
	}
	ms := p.b.copies(p.subjects, data)
	for i, m := range ms {
		ack, err := p.b.js.PublishMsgAsync(m)
		p.pending <- pending{msg: m, ack: ack, err: err, records: records, last: i == len(ms)-1}
	}
}

// Close waits until every published message has an outcome.
func (p *Publisher) Close() {
	p.once.Do(func() { close(p.pending) })
	<-p.done
}

func (p *Publisher) watch() {
	defer close(p.done)
	var err error
	for pa := range p.pending {
		if e := p.settle(pa); err == nil {
			err = e
		}
		if pa.last {
			p.outcome(pa.records, err)
			if err == nil {
				// Every copy (they share the data) is stored, and
				// nats.go let go of them on their acks. A refused
				// one may still be held by a retry of its own: left
				// to the collector.
				select {
				case p.free <- pa.msg.Data:
				default:
				}
			}
			err = nil
		}
	}
}

// settle waits for the store's answer to one message, offering it again
// while the store cannot take it for a reason that may pass.
func (p *Publisher) settle(pa pending) error {
	start := time.Now()
	wait := retryMin
	for {
		err := pa.err
		if err == nil {
			select {
			case <-pa.ack.Ok():
				p.b.stored()
				return nil
			case err = <-pa.ack.Err():
			}
		}
		if !retriable(err) || time.Since(start) > publishRetryFor {
			return p.b.classify(err)
		}
		time.Sleep(wait)
		wait = min(2*wait, retryMax)
		pa.ack, pa.err = p.b.js.PublishMsgAsync(pa.msg)
	}
}

// Publish stores one message (a copy for each subject of the destination)
// and waits until it is stored: for inputs that stop reading from their
// senders while the buffer is full. A store that cannot answer is asked
// again until ctx ends.
func (b *Buffer) Publish(ctx context.Context, dest string, data []byte) error {
	for _, m := range b.messagesTo(dest, data) {
		if err := b.publish(ctx, m); err != nil {
			return b.classify(err)
		}
	}
	b.stored()
	return nil
}

// publish stores m, asking again while the store cannot answer, until ctx
// ends.
func (b *Buffer) publish(ctx context.Context, m *nats.Msg) error {
	wait := retryMin
	for {
		pctx, cancel := context.WithTimeout(ctx, publishTimeout)
		_, err := b.js.PublishMsg(pctx, m)
		cancel()
		if !retriable(err) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(wait):
		}
		wait = min(2*wait, retryMax)
	}
}

// retriable says whether a publish that failed with err may succeed when
// tried again: the store did not answer (a cluster electing a leader, a
// reconnection), rather than refused.
func retriable(err error) bool {
	if err == nil {
		return false
	}
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) {
		return apiErr.ErrorCode == clusterNotAvailableCode
	}
	return true
}

// classify turns the store's refusals for lack of room into ErrFull, and
// notes when it last happened.
func (b *Buffer) classify(err error) error {
	if !isFull(err) {
		if err != nil {
			b.noteWrite(err)
		}
		return err
	}
	b.fullAt.Store(time.Now().UnixNano())
	return fmt.Errorf("%w: %w", ErrFull, err)
}

// stored notes that the store took a message: it has room again, and
// writes work.
func (b *Buffer) stored() {
	if b.fullAt.Load() != 0 {
		b.fullAt.Store(0)
	}
	b.noteWrite(nil)
}

func isFull(err error) bool {
	var apiErr *jetstream.APIError
	if !errors.As(err, &apiErr) {
		return false
	}
	switch apiErr.ErrorCode {
	case storeFailedCode:
		return strings.Contains(apiErr.Description, "maximum bytes") || strings.Contains(apiErr.Description, "maximum messages")
	case insufficientStorageCode, insufficientResourcesCode:
		return true
	}
	return false
}

// JetStream error codes that mean "no room".
const (
	insufficientResourcesCode = 10023
	insufficientStorageCode   = 10047
	storeFailedCode           = 10077 // with "maximum bytes exceeded" under DiscardNew
)
