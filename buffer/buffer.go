// Package buffer keeps records durably between the decoders and the
// shippers: one work-queue JetStream stream, bounded in bytes, with one
// subject and one durable consumer per intake, and a second, smaller stream
// for the events the intake refused for good (dead letters). A message is
// removed only once a shipper acknowledges it, which it does after the
// remote side accepted it. The store is an embedded NATS server in the data
// directory, or an existing NATS cluster shared by several flowgate nodes.
package buffer

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"hash/maphash"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/sys/unix"
)

// StreamName is the one stream every intake's records go through.
const StreamName = "FLOWGATE"

const (
	subjectPrefix = "flowgate.intake."
	// MaxMessageBytes bounds one buffer message (a batch of records). An
	// external cluster must accept payloads this large (max_payload).
	MaxMessageBytes = 4 << 20
	// metaReserveBytes is kept out of the stream's share of the store for
	// JetStream's own state (consumers, key-value buckets).
	metaReserveBytes = 64 << 20
	// maxDeadLetterBytes bounds the dead-letter stream, which takes a
	// sixteenth of the store up to this.
	maxDeadLetterBytes = 1 << 30
	startTimeout       = 2 * time.Minute
	// connectTimeout bounds the wait for an external cluster at start.
	connectTimeout = 30 * time.Second
	// AckWait is how long a delivered message may stay unacknowledged before
	// JetStream delivers it again; shippers retrying longer say so with
	// InProgress.
	AckWait = time.Minute
	// duplicateWindow is how long the store remembers message ids, so that
	// a publish retried after a lost answer is stored once.
	duplicateWindow = 2 * time.Minute
	// fullRecently is how long a refusal for lack of room keeps Check
	// failing.
	fullRecently = 10 * time.Second
	// defaultPublishWindow bounds messages a Publisher has handed to the
	// store and not yet seen stored.
	defaultPublishWindow = 256
	lockFile             = "flowgate.lock"
)

var (
	// ErrFull is reported for records refused because the buffer is at
	// its size limit.
	ErrFull = errors.New("buffer full")
	// ErrInUse is reported by Open when another process has the data
	// directory open.
	ErrInUse = errors.New("the store is in use by another flowgate process")
)

// Config says where the store is and sizes it.
type Config struct {
	// Dir holds the embedded server's store.
	Dir string
	// MaxBytes bounds the store: the stream, the dead letters and
	// JetStream's own state together (per replica on a cluster).
	MaxBytes int64
	// URL, when set, is an external NATS cluster (comma-separated URLs):
	// no embedded server is started and Dir is not used.
	URL string
	// Creds is a NATS credentials file; CAFile a CA for tls:// URLs.
	Creds, CAFile string
	// Replicas of the streams and buckets on an external cluster.
	Replicas int
	// PublishWindow bounds the messages each Publisher has handed to the
	// store and not yet seen stored (0: 256).
	PublishWindow int
}

// Buffer is the open store.
type Buffer struct {
	log *slog.Logger
	// ns is the embedded server, nil on an external cluster.
	ns       *server.Server
	lock     *os.File
	nc       *nats.Conn
	js       jetstream.JetStream
	stream   jetstream.Stream
	dlq      jetstream.Stream
	replicas int
	// streamBytes is the main stream's bound.
	streamBytes int64
	pubWindow   int
	// fullAt is when a record was last refused for lack of room (Unix
	// nanoseconds); Check reports it for a while.
	fullAt atomic.Int64
	// reserveBytes is the share of the store left to JetStream's own
	// state and key-value buckets.
	reserveBytes int64
	// backlog caches the last look at what waits, for monitoring.
	backlog backlogCache
	// idSeed makes the ids of a destination's copies (see copies).
	idSeed maphash.Seed
	// writeErr is the last write failure other than a full buffer, until
	// a write succeeds; readiness reports it.
	writeErr atomic.Pointer[writeError]
}

// Open opens the store: it starts the embedded server on the data
// directory, recovering what it held, or connects to the external cluster,
// and makes sure the streams exist with the configured bounds.
func Open(ctx context.Context, cfg Config, log *slog.Logger) (*Buffer, error) {
	reserve := min(metaReserveBytes, cfg.MaxBytes/8)
	dlqBytes := min(maxDeadLetterBytes, cfg.MaxBytes/16)
	b := &Buffer{log: log, idSeed: maphash.MakeSeed(), replicas: max(cfg.Replicas, 1), streamBytes: cfg.MaxBytes - reserve - dlqBytes, pubWindow: cfg.PublishWindow, reserveBytes: reserve}
	if b.pubWindow <= 0 {
		b.pubWindow = defaultPublishWindow
	}
	where := cfg.Dir
	var err error
	if cfg.URL != "" {
		where = "NATS " + RedactURLs(cfg.URL)
		err = b.dial(cfg)
	} else {
		b.replicas = 1
		err = b.embed(cfg)
	}
	if err == nil {
		err = b.createStreams(ctx, dlqBytes)
	}
	// A cluster starting with flowgate takes a moment to elect leaders.
	for deadline := time.Now().Add(connectTimeout); starting(err) && b.ns == nil && ctx.Err() == nil && time.Now().Before(deadline); {
		log.Warn("the NATS cluster cannot hold the streams yet; trying again", "err", err)
		time.Sleep(time.Second)
		err = b.createStreams(ctx, dlqBytes)
	}
	if err != nil {
		b.Close()
		return nil, fmt.Errorf("buffer in %s: %w", where, err)
	}
	return b, nil
}

// embed starts the embedded server, which opens no port, and connects to
// it in-process.
func (b *Buffer) embed(cfg Config) error {
	if err := os.MkdirAll(cfg.Dir, 0o750); err != nil {
		return err
	}
	// The server does not lock its store; two processes writing one
	// store would corrupt it.
	lock, err := os.OpenFile(filepath.Join(cfg.Dir, lockFile), os.O_RDWR|os.O_CREATE, 0o640)
	if err != nil {
		return err
	}
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		lock.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return ErrInUse
		}
		return fmt.Errorf("locking the store: %w", err)
	}
	b.lock = lock
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
		return err
	}
	ns.SetLoggerV2(&natsLogger{log: b.log.With("component", "nats")}, false, false, false)
	go ns.Start()
	b.ns = ns
	// ReadyForConnections returns once the store has been recovered, which
	// takes a while for a large one.
	if !ns.ReadyForConnections(startTimeout) {
		return fmt.Errorf("the store did not open within %s", startTimeout)
	}
	nc, err := nats.Connect("", nats.InProcessServer(ns), nats.Name("flowgate"), nats.MaxReconnects(-1))
	if err != nil {
		return err
	}
	return b.jetStream(nc)
}

// dial connects to an external cluster, waiting for it a while at start
// and reconnecting for ever afterwards.
func (b *Buffer) dial(cfg Config) error {
	host, _ := os.Hostname()
	opts := []nats.Option{
		nats.Name("flowgate " + host),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(time.Second),
		nats.RetryOnFailedConnect(true),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			b.log.Warn("disconnected from the NATS cluster; reconnecting", "err", err)
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			b.log.Info("reconnected to the NATS cluster", "server", nc.ConnectedUrlRedacted())
		}),
	}
	if cfg.Creds != "" {
		opts = append(opts, nats.UserCredentials(cfg.Creds))
	}
	if cfg.CAFile != "" {
		opts = append(opts, nats.RootCAs(cfg.CAFile))
	}
	nc, err := nats.Connect(cfg.URL, opts...)
	if err != nil {
		return err
	}
	b.nc = nc
	deadline := time.Now().Add(connectTimeout)
	for !nc.IsConnected() {
		if time.Now().After(deadline) {
			return fmt.Errorf("no server answered within %s (last error: %v)", connectTimeout, nc.LastError())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if mp := nc.MaxPayload(); mp < MaxMessageBytes {
		return fmt.Errorf("the cluster takes messages of %d bytes at most; flowgate needs %d: set max_payload: 8MB in the servers' configuration", mp, MaxMessageBytes)
	}
	return b.jetStream(nc)
}

func (b *Buffer) jetStream(nc *nats.Conn) error {
	b.nc = nc
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncTimeout(publishTimeout))
	if err != nil {
		return err
	}
	b.js = js
	return nil
}

// createStreams makes sure both streams exist with this configuration.
func (b *Buffer) createStreams(ctx context.Context, dlqBytes int64) error {
	var err error
	b.stream, err = b.js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        StreamName,
		Description: "records waiting to be shipped, one subject per intake",
		Subjects:    []string{subjectPrefix + "*"},
		Retention:   jetstream.WorkQueuePolicy,
		Discard:     jetstream.DiscardNew,
		MaxBytes:    b.streamBytes,
		MaxMsgSize:  MaxMessageBytes,
		Storage:     jetstream.FileStorage,
		Replicas:    b.replicas,
		Duplicates:  duplicateWindow,
	})
	if err != nil {
		return fmt.Errorf("stream %s: %w", StreamName, err)
	}
	b.dlq, err = b.js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        DeadLetterStream,
		Description: "events the intake refused for good, one subject per intake: flowgate dlq lists and re-sends them",
		Subjects:    []string{deadLetterPrefix + "*"},
		Retention:   jetstream.LimitsPolicy,
		Discard:     jetstream.DiscardNew,
		MaxBytes:    dlqBytes,
		MaxMsgSize:  MaxMessageBytes,
		Storage:     jetstream.FileStorage,
		Replicas:    b.replicas,
		Duplicates:  duplicateWindow,
	})
	if err != nil {
		return fmt.Errorf("stream %s: %w", DeadLetterStream, err)
	}
	return nil
}

// starting says whether err is what a cluster electing its leaders answers.
func starting(err error) bool {
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) {
		return apiErr.ErrorCode == clusterNotAvailableCode
	}
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout) || errors.Is(err, nats.ErrNoResponders) ||
		errors.Is(err, jetstream.ErrJetStreamNotEnabled)
}

// clusterNotAvailableCode is "JetStream system temporarily unavailable".
const clusterNotAvailableCode = 10008

// Embedded says whether the store is this process's own server, rather
// than a cluster other nodes share.
func (b *Buffer) Embedded() bool { return b.ns != nil }

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
		b.nc.Close()
	}
	if b.ns != nil {
		b.ns.Shutdown()
		b.ns.WaitForShutdown()
	}
	if b.lock != nil {
		b.lock.Close()
	}
}

// Subject is where an intake's records go. Intake names are free text: the
// subject keeps what is safe of the name, for people reading the store, and
// a hash of all of it, so two names never share a subject.
func Subject(intake string) string {
	return subjectPrefix + token(intake)
}

// OutputSubject is where the records of subject go for another output of
// the same key: a subject of its own, named after subject's and output's
// names, so that each output has its own consumer and backlog.
func OutputSubject(subject, output string) string {
	return Subject(strings.TrimPrefix(subject, subjectPrefix) + "#" + output)
}

// Destination is where one publish stores a message: under each of
// subjects, a copy each (the stream is a work queue: one consumer per
// subject). Receivers hold it as they would a subject; "" drops.
func Destination(subjects ...string) string {
	return strings.Join(subjects, destinationSep)
}

// destinationSep cannot be in a subject.
const destinationSep = " "

// subjectsOf is the subjects of a destination.
func subjectsOf(dest string) []string { return strings.Split(dest, destinationSep) }

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

// checkTimeout bounds a readiness probe of the stream.
const checkTimeout = 2 * time.Second

// Check reports whether the store takes writes: connected, no write error
// (a full or failing disk), the stream served, and no record refused for
// lack of room lately.
func (b *Buffer) Check() error {
	if !b.nc.IsConnected() {
		return errors.New("not connected to the store")
	}
	// The stream is asked, embedded or not: nats-server's Healthz first
	// waits 1 ms for its startup to be complete, and on a loaded box the
	// timer can win that race long after startup ("startup did not
	// complete"), which turned /ready and STATUS= false for a moment.
	ctx, cancel := context.WithTimeout(context.Background(), checkTimeout)
	defer cancel()
	if _, err := b.stream.Info(ctx); err != nil {
		return fmt.Errorf("stream %s: %w", StreamName, err)
	}
	if at := b.fullAt.Load(); at != 0 && time.Since(time.Unix(0, at)) < fullRecently {
		return fmt.Errorf("full: records refused for lack of room within the last %s (bound %d MiB)", fullRecently, b.streamBytes>>20)
	}
	return b.lastWriteError()
}

// Held is what the buffer holds: messages by subject, and bytes in all.
func (b *Buffer) Held(ctx context.Context) (map[string]uint64, uint64, error) {
	info, err := b.stream.Info(ctx, jetstream.WithSubjectFilter(subjectPrefix+"*"))
	if err != nil {
		return nil, 0, fmt.Errorf("stream %s: %w", StreamName, err)
	}
	return info.State.Subjects, info.State.Bytes, nil
}

// RedactURLs hides the passwords of a list of NATS URLs, for messages.
func RedactURLs(urls string) string {
	parts := strings.Split(urls, ",")
	for i, u := range parts {
		if at := strings.LastIndex(u, "@"); at >= 0 {
			if scheme := strings.Index(u, "://"); scheme >= 0 && scheme < at {
				parts[i] = u[:scheme+3] + "***" + u[at:]
			}
		}
	}
	return strings.Join(parts, ",")
}
