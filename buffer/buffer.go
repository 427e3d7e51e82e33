// Package buffer keeps records durably between the decoders and the
// shippers: an embedded NATS JetStream server storing one work-queue stream
// in the data directory, bounded in bytes, with one subject and one durable
// consumer per intake. A message is removed only once a shipper
// acknowledges it, which it does after the remote side accepted it.
package buffer

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// StreamName is the one stream every intake's records go through.
const StreamName = "FLOWGATE"

const (
	subjectPrefix = "flowgate.intake."
	// MaxMessageBytes bounds one buffer message (a batch of records).
	MaxMessageBytes = 4 << 20
	// metaReserveBytes is kept out of the stream's share of the store for
	// JetStream's own state (consumers, key-value buckets).
	metaReserveBytes = 64 << 20
	startTimeout     = 2 * time.Minute
	// AckWait is how long a delivered message may stay unacknowledged before
	// JetStream delivers it again; shippers retrying longer say so with
	// InProgress.
	AckWait = time.Minute
)

// ErrFull is reported for records refused because the buffer is at its
// size limit.
var ErrFull = errors.New("buffer full")

// Config sizes the buffer.
type Config struct {
	// Dir holds the store.
	Dir string
	// MaxBytes bounds the store on disk.
	MaxBytes int64
}

// Buffer is the open store.
type Buffer struct {
	log    *slog.Logger
	ns     *server.Server
	nc     *nats.Conn
	js     jetstream.JetStream
	stream jetstream.Stream
	// reserveBytes is the share of the store left to JetStream's own
	// state and key-value buckets.
	reserveBytes int64
	// backlog caches the last look at what waits, for monitoring.
	backlog backlogCache
	// writeErr is the last write failure other than a full buffer, until
	// a write succeeds; readiness reports it.
	writeErr atomic.Pointer[writeError]
}

// Open starts the embedded server on the data directory, recovering what it
// held, and makes sure the stream exists with the configured bound.
func Open(ctx context.Context, cfg Config, log *slog.Logger) (*Buffer, error) {
	if err := os.MkdirAll(cfg.Dir, 0o750); err != nil {
		return nil, fmt.Errorf("buffer dir %s: %w", cfg.Dir, err)
	}
	reserve := min(metaReserveBytes, cfg.MaxBytes/8)
	streamBytes := cfg.MaxBytes - reserve
	ns, err := server.NewServer(&server.Options{
		ServerName:         "flowgate",
		DontListen:         true,
		NoSigs:             true,
		JetStream:          true,
		StoreDir:           cfg.Dir,
		JetStreamMaxStore:  cfg.MaxBytes,
		JetStreamMaxMemory: metaReserveBytes,
		MaxPayload:         2 * MaxMessageBytes,
	})
	if err != nil {
		return nil, fmt.Errorf("buffer in %s: %w", cfg.Dir, err)
	}
	ns.SetLoggerV2(&natsLogger{log: log.With("component", "nats")}, false, false, false)
	go ns.Start()
	// ReadyForConnections returns once the store has been recovered, which
	// takes a while for a large one.
	if !ns.ReadyForConnections(startTimeout) {
		ns.Shutdown()
		return nil, fmt.Errorf("buffer in %s: the store did not open within %s", cfg.Dir, startTimeout)
	}
	b := &Buffer{log: log, ns: ns, reserveBytes: reserve}
	if err := b.connect(ctx, streamBytes); err != nil {
		b.Close()
		return nil, fmt.Errorf("buffer in %s: %w", cfg.Dir, err)
	}
	return b, nil
}

func (b *Buffer) connect(ctx context.Context, streamBytes int64) error {
	nc, err := nats.Connect("", nats.InProcessServer(b.ns), nats.Name("flowgate"), nats.MaxReconnects(-1))
	if err != nil {
		return err
	}
	b.nc = nc
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	b.js = js
	stream, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        StreamName,
		Description: "records waiting to be shipped, one subject per intake",
		Subjects:    []string{subjectPrefix + "*"},
		Retention:   jetstream.WorkQueuePolicy,
		Discard:     jetstream.DiscardNew,
		MaxBytes:    streamBytes,
		MaxMsgSize:  MaxMessageBytes,
		Storage:     jetstream.FileStorage,
		Replicas:    1,
	})
	if err != nil {
		return fmt.Errorf("stream %s: %w", StreamName, err)
	}
	b.stream = stream
	return nil
}

// Close flushes what is being published and stops the server cleanly, so
// the next start recovers nothing by replay.
func (b *Buffer) Close() {
	if b.nc != nil {
		if err := b.nc.Drain(); err != nil {
			b.nc.Close()
		}
		for b.nc.IsDraining() {
			time.Sleep(10 * time.Millisecond)
		}
	}
	b.ns.Shutdown()
	b.ns.WaitForShutdown()
}

// Subject is where an intake's records go. Intake names are free text: the
// subject keeps what is safe of the name, for people reading the store, and
// a hash of all of it, so two names never share a subject.
func Subject(intake string) string {
	return subjectPrefix + token(intake)
}

func token(name string) string {
	var sb strings.Builder
	for _, r := range name {
		if sb.Len() >= 32 {
			break
		}
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_':
			sb.WriteRune(r)
		default:
			sb.WriteByte('_')
		}
	}
	h := fnv.New32a()
	h.Write([]byte(name))
	return fmt.Sprintf("%s-%08x", sb.String(), h.Sum32())
}

// natsLogger passes the embedded server's warnings and errors to slog.
type natsLogger struct{ log *slog.Logger }

func (l *natsLogger) Noticef(format string, v ...any) { l.log.Debug(fmt.Sprintf(format, v...)) }
func (l *natsLogger) Warnf(format string, v ...any)   { l.log.Warn(fmt.Sprintf(format, v...)) }
func (l *natsLogger) Fatalf(format string, v ...any)  { l.log.Error(fmt.Sprintf(format, v...)) }
func (l *natsLogger) Errorf(format string, v ...any)  { l.log.Error(fmt.Sprintf(format, v...)) }
func (l *natsLogger) Debugf(format string, v ...any)  { l.log.Debug(fmt.Sprintf(format, v...)) }
func (l *natsLogger) Tracef(format string, v ...any)  {}

// Check reports whether the store takes writes: the server reports a write
// error (a full or failing disk) through its health status.
func (b *Buffer) Check() error {
	if !b.nc.IsConnected() {
		return errors.New("not connected to the store")
	}
	if st := b.ns.Healthz(&server.HealthzOptions{Stream: StreamName, Account: "$G"}); st.Error != "" {
		return fmt.Errorf("store: %s", st.Error)
	}
	return b.lastWriteError()
}
