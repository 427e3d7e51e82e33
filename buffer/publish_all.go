package buffer

import (
	"context"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Message is one buffer message and its subject (or destination: a copy
// is stored under each of its subjects, see Destination).
type Message struct {
	Subject string
	Data    []byte
}

// PublishAll stores msgs and returns once every one is stored, or with the
// first error: for inputs that answer their senders only once what they
// sent is kept. They are handed to the store all at once, so that a
// request's messages cost one round trip rather than one each; one the
// store could not take is offered again, under its id, until ctx ends.
// On error some may be stored: the sender, told to retry, may send them
// twice.
func (b *Buffer) PublishAll(ctx context.Context, msgs []Message) error {
	type sent struct {
		m   *nats.Msg
		ack jetstream.PubAckFuture
		err error
	}
	all := make([]sent, 0, len(msgs))
	for _, msg := range msgs {
		for _, m := range b.messagesTo(msg.Subject, msg.Data) {
			ack, err := b.js.PublishMsgAsync(m)
			all = append(all, sent{m, ack, err})
		}
	}
	for _, s := range all {
		err := s.err
		if err == nil {
			select {
			case <-s.ack.Ok():
				continue
			case err = <-s.ack.Err():
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		if retriable(err) {
			err = b.publish(ctx, s.m)
		}
		if err != nil {
			return b.classify(err)
		}
	}
	if len(all) > 0 {
		b.stored()
	}
	return nil
}
