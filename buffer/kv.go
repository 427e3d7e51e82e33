package buffer

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
)

const (
	// kvMaxBytes bounds a key-value bucket, within the share of the store
	// kept out of the stream (metaReserveBytes).
	kvMaxBytes     = 32 << 20
	kvMaxValueSize = 256 << 10
)

// KV is a key-value bucket in the buffer's store: state that survives
// restarts and that every node using the same NATS shares (flow templates).
// Its Watch and Save make it a flow.Store; keys and values are the user's.
type KV struct {
	kv jetstream.KeyValue
}

// KV opens the bucket, creating it when missing. Values keep no history:
// a key holds its latest value.
func (b *Buffer) KV(ctx context.Context, bucket, description string) (*KV, error) {
	kv, err := b.js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:       bucket,
		Description:  description,
		History:      1,
		MaxBytes:     min(kvMaxBytes, b.reserveBytes/2),
		MaxValueSize: kvMaxValueSize,
		Storage:      jetstream.FileStorage,
		Replicas:     b.replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("bucket %s: %w", bucket, err)
	}
	return &KV{kv: kv}, nil
}

// Save stores value under key.
func (k *KV) Save(ctx context.Context, key string, value []byte) error {
	_, err := k.kv.Put(ctx, key, value)
	return err
}

// Watch calls update with every entry of the bucket, returns once they
// have all been delivered, then keeps calling update, from a goroutine of
// its own, with each change (value nil: deleted or purged) until ctx ends.
func (k *KV) Watch(ctx context.Context, update func(key string, value []byte)) error {
	w, err := k.kv.WatchAll(ctx)
	if err != nil {
		return fmt.Errorf("watching bucket %s: %w", k.kv.Bucket(), err)
	}
	apply := func(e jetstream.KeyValueEntry) {
		if e.Operation() == jetstream.KeyValuePut {
			update(e.Key(), e.Value())
		} else {
			update(e.Key(), nil)
		}
	}
	for loaded := false; !loaded; {
		select {
		case e, ok := <-w.Updates():
			if !ok {
				return errors.Join(fmt.Errorf("bucket %s: watch ended while loading", k.kv.Bucket()), ctx.Err())
			}
			if e == nil {
				loaded = true
				break
			}
			apply(e)
		case <-ctx.Done():
			_ = w.Stop()
			return ctx.Err()
		}
	}
	go func() {
		for {
			select {
			case e, ok := <-w.Updates():
				if !ok {
					return
				}
				if e != nil {
					apply(e)
				}
			case <-ctx.Done():
				_ = w.Stop()
				return
			}
		}
	}()
	return nil
}
