package buffer

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
)

// The names of the metrics the status page and the stats intake read:
// defined here, next to what they measure, and nowhere else.
const (
	MetricBufferBytes            = "flowgate_buffer_bytes"
	MetricBufferMessages         = "flowgate_buffer_messages"
	MetricBufferOldestAgeSeconds = "flowgate_buffer_oldest_age_seconds"
	MetricBufferStoreBytes       = "flowgate_buffer_store_bytes"
	MetricBufferStoreLimitBytes  = "flowgate_buffer_store_limit_bytes"
)

// backlogTTL is how long a look at the backlog is reused: scrapes, the
// status page and readiness come often, and each look asks the store.
const backlogTTL = time.Second

// backlogTimeout bounds one look at the store.
const backlogTimeout = 2 * time.Second

// Backlog is what waits in the buffer for one subject's shipper.
type Backlog struct {
	// Messages are stored and not yet acknowledged.
	Messages uint64
	// Bytes is an estimate: Messages times the mean size of the stream's
	// messages (JetStream counts bytes per stream, not per subject).
	Bytes uint64
	// Oldest is when the oldest of them was stored; zero when none waits.
	Oldest time.Time
}

// StoreState is the whole stream's use of the store.
type StoreState struct {
	Messages, Bytes, LimitBytes uint64
}

// backlogCache keeps the last look at the backlog.
type backlogCache struct {
	mu    sync.Mutex
	at    time.Time
	subj  map[string]Backlog
	store StoreState
	err   error
}

// Backlog returns what waits for each subject that holds messages, and
// the stream's use of the store. A look less than a second old is reused.
func (b *Buffer) Backlog(ctx context.Context) (map[string]Backlog, StoreState, error) {
	c := &b.backlog
	c.mu.Lock()
	defer c.mu.Unlock()
	if time.Since(c.at) < backlogTTL {
		return c.subj, c.store, c.err
	}
	ctx, cancel := context.WithTimeout(ctx, backlogTimeout)
	defer cancel()
	c.subj, c.store, c.err = b.lookBacklog(ctx)
	c.at = time.Now()
	return c.subj, c.store, c.err
}

func (b *Buffer) lookBacklog(ctx context.Context) (map[string]Backlog, StoreState, error) {
	info, err := b.stream.Info(ctx, jetstream.WithSubjectFilter(subjectPrefix+"*"))
	if err != nil {
		return nil, StoreState{}, fmt.Errorf("buffer backlog: %w", err)
	}
	st := info.State
	store := StoreState{Messages: st.Msgs, Bytes: st.Bytes, LimitBytes: uint64(max(info.Config.MaxBytes, 0))}
	out := make(map[string]Backlog, len(st.Subjects))
	for subj, n := range st.Subjects {
		if n == 0 {
			continue
		}
		bl := Backlog{Messages: n}
		if st.Msgs > 0 {
			bl.Bytes = n * (st.Bytes / st.Msgs)
		}
		// The first message of the subject at or after the stream's first
		// sequence is the oldest waiting (the stream keeps only what
		// waits).
		if m, err := b.stream.GetMsg(ctx, max(st.FirstSeq, 1), jetstream.WithGetMsgSubject(subj)); err == nil {
			bl.Oldest = m.Time
		} else if !errors.Is(err, jetstream.ErrMsgNotFound) {
			return nil, store, fmt.Errorf("buffer backlog of %s: %w", subj, err)
		}
		out[subj] = bl
	}
	return out, store, nil
}

// writeError is the last failed write to the store that was not for lack
// of room.
type writeError struct {
	at  time.Time
	err error
}

// noteWrite keeps the outcome of a write: a failure other than a full
// buffer makes the store unready until a later write succeeds.
func (b *Buffer) noteWrite(err error) {
	switch {
	case err == nil:
		if b.writeErr.Load() != nil {
			b.writeErr.Store(nil)
		}
	case errors.Is(err, ErrFull), errors.Is(err, context.Canceled):
	default:
		b.writeErr.Store(&writeError{at: time.Now(), err: err})
	}
}

// lastWriteError is the write failure the store has not recovered from.
func (b *Buffer) lastWriteError() error {
	if e := b.writeErr.Load(); e != nil {
		return fmt.Errorf("a write failed at %s and none succeeded since: %w", e.at.UTC().Format(time.RFC3339), e.err)
	}
	return nil
}

// Metrics returns a collector of the backlog of each intake (intakes gives
// the running ones, name to subject) and of the store, read from the store
// when scraped.
func (b *Buffer) Metrics(intakes func() map[string]string) prometheus.Collector {
	return &backlogMetrics{b: b, intakes: intakes,
		messages: prometheus.NewDesc(MetricBufferMessages, "Buffer messages waiting to be shipped (stored, not yet acknowledged), by intake.", []string{"intake"}, nil),
		bytes:    prometheus.NewDesc(MetricBufferBytes, "Bytes waiting to be shipped, by intake: messages times the store's mean message size (an estimate).", []string{"intake"}, nil),
		age:      prometheus.NewDesc(MetricBufferOldestAgeSeconds, "Age of the oldest message waiting to be shipped, by intake; 0 when none waits.", []string{"intake"}, nil),
		store:    prometheus.NewDesc(MetricBufferStoreBytes, "Bytes the buffer's stream holds on disk, every intake together.", nil, nil),
		limit:    prometheus.NewDesc(MetricBufferStoreLimitBytes, "The stream's bound on disk (disk_space less what JetStream keeps for its own state).", nil, nil),
	}
}

type backlogMetrics struct {
	b                                  *Buffer
	intakes                            func() map[string]string
	messages, bytes, age, store, limit *prometheus.Desc
}

func (m *backlogMetrics) Describe(ch chan<- *prometheus.Desc) {
	ch <- m.messages
	ch <- m.bytes
	ch <- m.age
	ch <- m.store
	ch <- m.limit
}

func (m *backlogMetrics) Collect(ch chan<- prometheus.Metric) {
	subj, store, err := m.b.Backlog(context.Background())
	if err != nil {
		ch <- prometheus.NewInvalidMetric(m.messages, err)
		return
	}
	now := time.Now()
	for name, s := range m.intakes() {
		bl := subj[s]
		age := 0.0
		if !bl.Oldest.IsZero() {
			age = max(now.Sub(bl.Oldest).Seconds(), 0)
		}
		ch <- prometheus.MustNewConstMetric(m.messages, prometheus.GaugeValue, float64(bl.Messages), name)
		ch <- prometheus.MustNewConstMetric(m.bytes, prometheus.GaugeValue, float64(bl.Bytes), name)
		ch <- prometheus.MustNewConstMetric(m.age, prometheus.GaugeValue, age, name)
	}
	ch <- prometheus.MustNewConstMetric(m.store, prometheus.GaugeValue, float64(store.Bytes))
	ch <- prometheus.MustNewConstMetric(m.limit, prometheus.GaugeValue, float64(store.LimitBytes))
}
