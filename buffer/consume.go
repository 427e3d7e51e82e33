package buffer

import (
	"context"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
)

// Msg is one delivered buffer message. Ack removes it from the buffer;
// InProgress tells the store the shipper is still working on it.
type Msg = jetstream.Msg

// Consumer delivers one intake's messages, oldest first, from a durable
// consumer: what was delivered and not acknowledged before a crash is
// delivered again.
type Consumer struct {
	it jetstream.MessagesContext
}

// Consume opens the durable consumer for an intake's subject. maxPending
// bounds messages delivered and not yet acknowledged.
func (b *Buffer) Consume(ctx context.Context, subject string, maxPending int) (*Consumer, error) {
	name := "ship-" + subject[len(subjectPrefix):]
	cons, err := b.stream.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{
		Durable:       name,
		Description:   "shipper of " + subject,
		FilterSubject: subject,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       AckWait,
		MaxDeliver:    -1,
		MaxAckPending: maxPending,
		DeliverPolicy: jetstream.DeliverAllPolicy,
	})
	if err != nil {
		return nil, fmt.Errorf("consumer %s: %w", name, err)
	}
	// Messages delivered before a crash would wait AckWait to come again;
	// this process was their only reader, so deliver them now.
	if _, err := b.js.ResetConsumer(ctx, StreamName, name); err != nil {
		return nil, fmt.Errorf("consumer %s: reset: %w", name, err)
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(min(maxPending, 512)))
	if err != nil {
		return nil, fmt.Errorf("consumer %s: %w", name, err)
	}
	return &Consumer{it: it}, nil
}

// Next waits for the next message.
func (c *Consumer) Next(ctx context.Context) (Msg, error) {
	return c.it.Next(jetstream.NextContext(ctx))
}

// Stop ends delivery; messages delivered and not acknowledged go back to
// the buffer.
func (c *Consumer) Stop() { c.it.Stop() }

// Depth returns the number of messages waiting in the buffer for a
// subject: stored and not yet acknowledged.
func (b *Buffer) Depth(ctx context.Context, subject string) (uint64, error) {
	info, err := b.stream.Info(ctx, jetstream.WithSubjectFilter(subject))
	if err != nil {
		return 0, fmt.Errorf("buffer depth of %s: %w", subject, err)
	}
	return info.State.Subjects[subject], nil
}
