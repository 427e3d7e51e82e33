package buffer

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Msg is one delivered buffer message. Ack removes it from the buffer;
// InProgress tells the store the shipper is still working on it; Nak
// hands it back for delivery again at once.
type Msg = jetstream.Msg

// EventHeader marks a message holding one event already encoded for its
// intake (a dead letter sent again) rather than records.
const EventHeader = "Flowgate-Event"

// IsEvent says whether m holds one encoded event rather than records.
func IsEvent(m Msg) bool { return m.Headers().Get(EventHeader) != "" }

// Consumer delivers one intake's messages, oldest first, from a durable
// consumer: what was delivered and not acknowledged before a crash is
// delivered again. Every node of a cluster reading an intake shares its
// consumer, so that each message goes to one of them.
type Consumer struct {
	it jetstream.MessagesContext
}

// stopTimeout bounds handing back the messages a stopping consumer holds.
const stopTimeout = 2 * time.Second

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
		Replicas:      b.replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("consumer %s: %w", name, err)
	}
	// Messages delivered before a crash would wait AckWait to come again.
	// On the embedded server this process was their only reader, so they
	// are delivered now; on a cluster other nodes may hold some of them.
	if b.Embedded() {
		if _, err := b.js.ResetConsumer(ctx, StreamName, name); err != nil {
			return nil, fmt.Errorf("consumer %s: reset: %w", name, err)
		}
	}
	// Nodes sharing the consumer share maxPending too: one that fetched
	// ahead all of it would starve the others.
	it, err := cons.Messages(jetstream.PullMaxMessages(max(min(maxPending/4, 512), 1)))
	if err != nil {
		return nil, fmt.Errorf("consumer %s: %w", name, err)
	}
	return &Consumer{it: it}, nil
}

// Next waits for the next message.
func (c *Consumer) Next(ctx context.Context) (Msg, error) {
	return c.it.Next(jetstream.NextContext(ctx))
}

// Stop ends delivery and hands back the messages received and not yet
// taken, so that they are delivered again at once (to another node of a
// cluster) rather than after AckWait.
func (c *Consumer) Stop() {
	c.it.Drain()
	ctx, cancel := context.WithTimeout(context.Background(), stopTimeout)
	defer cancel()
	for {
		m, err := c.it.Next(jetstream.NextContext(ctx))
		if err != nil {
			return
		}
		_ = m.Nak()
	}
}

// Depth returns the number of messages waiting in the buffer for a
// subject: stored and not yet acknowledged.
func (b *Buffer) Depth(ctx context.Context, subject string) (uint64, error) {
	info, err := b.stream.Info(ctx, jetstream.WithSubjectFilter(subject))
	if err != nil {
		return 0, fmt.Errorf("buffer depth of %s: %w", subject, err)
	}
	return info.State.Subjects[subject], nil
}
