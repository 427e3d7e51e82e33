package buffer

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// publishTimeout bounds the wait for the store to take one message.
const publishTimeout = 10 * time.Second

// maxPendingPublishes bounds messages handed to the store and not yet
// acknowledged by it, per publisher: past that, Publish waits.
const maxPendingPublishes = 256

// Outcome reports what became of one published message: stored, or
// refused with err (ErrFull when the buffer is at its limit).
type Outcome func(records int, err error)

// Publisher writes one intake's messages to the buffer without waiting for
// each to be stored; outcomes arrive in order on a goroutine of its own.
type Publisher struct {
	b       *Buffer
	js      jetstream.JetStream
	subject string
	outcome Outcome
	pending chan pending
	done    chan struct{}
	once    sync.Once
}

type pending struct {
	ack     jetstream.PubAckFuture
	records int
}

// Publisher returns a publisher for an intake's subject.
func (b *Buffer) Publisher(subject string, outcome Outcome) *Publisher {
	p := &Publisher{
		b:       b,
		js:      b.js,
		subject: subject,
		outcome: outcome,
		pending: make(chan pending, maxPendingPublishes),
		done:    make(chan struct{}),
	}
	go p.watch()
	return p
}

// Publish hands one message of records to the store. It blocks only while
// maxPendingPublishes messages wait for the store.
func (p *Publisher) Publish(data []byte, records int) {
	ack, err := p.js.PublishMsgAsync(&nats.Msg{Subject: p.subject, Data: data})
	if err != nil {
		p.report(records, classify(err))
		return
	}
	p.pending <- pending{ack, records}
}

// Close waits until every published message has an outcome.
func (p *Publisher) Close() {
	p.once.Do(func() { close(p.pending) })
	<-p.done
}

func (p *Publisher) watch() {
	defer close(p.done)
	for pa := range p.pending {
		select {
		case <-pa.ack.Ok():
			p.report(pa.records, nil)
		case err := <-pa.ack.Err():
			p.report(pa.records, classify(err))
		case <-time.After(publishTimeout):
			p.report(pa.records, fmt.Errorf("store did not answer within %s", publishTimeout))
		}
	}
}

// report passes on the outcome of one message.
func (p *Publisher) report(records int, err error) {
	p.b.noteWrite(err)
	p.outcome(records, err)
}

// Publish stores one message and waits until it is stored: for inputs that
// stop reading from their senders while the buffer is full.
func (b *Buffer) Publish(ctx context.Context, subject string, data []byte) error {
	_, err := b.js.PublishMsg(ctx, &nats.Msg{Subject: subject, Data: data})
	err = classify(err)
	b.noteWrite(err)
	return err
}

// classify turns the store's refusals for lack of room into ErrFull.
func classify(err error) error {
	var apiErr *jetstream.APIError
	if !errors.As(err, &apiErr) {
		return err
	}
	switch apiErr.ErrorCode {
	case storeFailedCode:
		if !strings.Contains(apiErr.Description, "maximum bytes") && !strings.Contains(apiErr.Description, "maximum messages") {
			return err
		}
	case insufficientStorageCode, insufficientResourcesCode:
	default:
		return err
	}
	return fmt.Errorf("%w: %w", ErrFull, err)
}

// JetStream error codes that mean "no room".
const (
	insufficientResourcesCode = 10023
	insufficientStorageCode   = 10047
	storeFailedCode           = 10077 // with "maximum bytes exceeded" under DiscardNew
)
