package ship

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/flowgate/flowgate/buffer"
	pb "github.com/flowgate/flowgate/proto"
)

// Config tunes one shipper.
type Config struct {
	// Intake names the intake, for logs and metrics.
	Intake string
	// Subject is the buffer subject the shipper reads, for the count of
	// what waits (a routed key's or another output's is not named after
	// Intake); empty: the intake's own.
	Subject string
	// MaxEvents and MaxBytes bound a batch; Linger bounds how long a batch
	// waits to fill.
	MaxEvents int
	MaxBytes  int
	Linger    time.Duration
	// InFlight is how many batches may be sent at once.
	InFlight int
	// Backoff paces retries.
	Backoff Backoff
	// ProbeInterval paces the attempts while the intake refuses the key.
	ProbeInterval time.Duration
	// StopGrace is how long, once Run's context ends, the batches in
	// flight may take to be accepted.
	StopGrace time.Duration
}

// DefaultConfig is what an intake gets unless told otherwise: requests well
// under the intake's 10 MiB and sent at least every second.
func DefaultConfig(intake string) Config {
	return Config{
		Intake:        intake,
		MaxEvents:     10_000,
		MaxBytes:      8 << 20,
		Linger:        time.Second,
		InFlight:      4,
		Backoff:       DefaultBackoff,
		ProbeInterval: 30 * time.Second,
		StopGrace:     10 * time.Second,
	}
}

// Source delivers buffer messages; buffer.Consumer is one.
type Source interface {
	Next(ctx context.Context) (buffer.Msg, error)
}

// Store keeps the events the intake refused for good, and tells how many
// buffer messages wait for the intake (for the recovery's log line);
// buffer.Buffer is one.
type Store interface {
	PutDeadLetter(ctx context.Context, dl buffer.DeadLetter) error
	Depth(ctx context.Context, subject string) (uint64, error)
}

// Shipper ships one intake.
type Shipper struct {
	cfg       Config
	src       Source
	enc       Encoder
	transport Transport
	dead      Store
	log       *slog.Logger
	m         *intakeMetrics
	status    *Status
	// batches are batches done with, kept for their buffers: a batch
	// grows to megabytes, and growing one anew per request is most of the
	// cost of filling it. (A sync.Pool would drop them at every GC.)
	batches chan *Batch

	// mu guards the pause: pausedBy is the refusal of the key that holds
	// sends back (nil: sending), resumed is closed when it ends.
	mu       sync.Mutex
	pausedBy error
	resumed  chan struct{}
	// failingSince is when sends began to fail (zero: they succeed) and
	// failedAttempts how many failed since, over every batch in flight:
	// the recovery's log line tells the outage's length. Guarded by mu.
	failingSince   time.Time
	failedAttempts int
}

// New returns a shipper; Run starts it.
func New(cfg Config, src Source, enc Encoder, transport Transport, dead Store, m *Metrics, log *slog.Logger) *Shipper {
	return &Shipper{cfg: cfg, src: src, enc: enc, transport: transport, dead: dead, log: log.With("intake", cfg.Intake), m: m.forIntake(cfg.Intake), status: NewStatus(),
		batches: make(chan *Batch, cfg.InFlight+2)}
}

// Status is what the shipper tells the monitoring (readiness, status page).
func (s *Shipper) Status() *Status { return s.status }

// pendingBatch is a batch and the buffer messages it holds all the
// records of.
type pendingBatch struct {
	batch *Batch
	msgs  []buffer.Msg
	// accepted is set by the worker, read by Run after finished delivers it.
	accepted bool
	finished bool
}

// Run ships until ctx ends. Then it stops taking messages, sends the batch
// it was filling, and gives the batches in flight StopGrace to be accepted;
// what is not accepted by then goes back to the buffer, to be shipped
// after the next start (or by another node).
func (s *Shipper) Run(ctx context.Context) error {
	// Sends outlive ctx by StopGrace.
	sendCtx, cancelSends := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelSends()
	stopGrace := context.AfterFunc(ctx, func() { time.AfterFunc(s.cfg.StopGrace, cancelSends) })
	defer stopGrace()

	msgs := make(chan buffer.Msg)
	fetchErr := make(chan error, 1)
	go func() {
		defer close(msgs)
		for {
			m, err := s.src.Next(ctx)
			if err != nil {
				fetchErr <- err
				return
			}
			select {
			case msgs <- m:
			case <-ctx.Done():
				_ = m.Nak()
				return
			}
		}
	}()

	// The window holds at most InFlight+1 batches (a message that splits a
	// batch dispatches two at once), so sends on these never block.
	work := make(chan *pendingBatch, s.cfg.InFlight+1)
	finished := make(chan *pendingBatch, s.cfg.InFlight+1)
	for range s.cfg.InFlight {
		go s.worker(sendCtx, work, finished)
	}
	defer close(work)

	var (
		window  []*pendingBatch // dispatched and not yet acknowledged, in order
		running int             // dispatched and not yet finished
		cur     = &pendingBatch{batch: s.newBatch()}
		linger  = time.NewTimer(time.Hour)
		records pb.Batch
		seen    = newTaken()
	)
	linger.Stop()
	// dispatch sends cur and makes next (a new batch when nil) the one
	// being filled.
	dispatch := func(next *pendingBatch) {
		linger.Stop()
		// A split-off batch (next) comes only after events in cur.
		if next == nil && cur.batch.Len() == 0 && len(cur.msgs) == 0 {
			return
		}
		window = append(window, cur)
		running++
		work <- cur
		if next == nil {
			// Taken here, not before: a batch taken and then replaced
			// by the one a message split off would be lost to the
			// pool, and the next batch grown anew.
			next = &pendingBatch{batch: s.newBatch()}
		}
		cur = next
	}
	// finish acknowledges, in order, every batch at the head of the window
	// that was accepted.
	finish := func(p *pendingBatch) {
		running--
		p.finished = true
		n := 0
		for n < len(window) && window[n].finished && window[n].accepted {
			s.ack(window[n])
			s.freeBatch(window[n].batch)
			n++
		}
		window = window[n:]
	}
	for {
		// Stop taking messages while the window is full: the buffer keeps them.
		inMsgs := msgs
		if len(window) >= s.cfg.InFlight {
			inMsgs = nil
		}
		select {
		case m, ok := <-inMsgs:
			if !ok {
				msgs = nil
				continue
			}
			if seen.again(m) {
				continue
			}
			var event []byte
			// Clear keeps the records' memory for the next message. Their
			// bytes are read in place, not copied out of m (Unsafe): they
			// are encoded into the batch before the next message is read,
			// and m's data is its own, not a buffer the client reuses.
			records.Clear()
			if buffer.IsEvent(m) {
				// A dead letter sent again: one event, as it was encoded.
				event = m.Data()
			} else if err := records.UnmarshalVTUnsafe(m.Data()); err != nil {
				// Not ours to ship and never will be: keep it out of the way.
				s.log.Error("buffer message cannot be read, dropped", "err", err, "bytes", len(m.Data()))
				s.m.dropped.Add(1)
				_ = m.Term()
				continue
			}
			if cur.batch.Len() == 0 {
				linger.Reset(s.cfg.Linger)
			}
			if next := s.add(cur, m, &records, event); next != nil {
				dispatch(next)
				linger.Reset(s.cfg.Linger)
			}
			if cur.batch.Len() >= s.cfg.MaxEvents || cur.batch.Bytes() >= s.cfg.MaxBytes {
				dispatch(nil)
			}
		case <-linger.C:
			dispatch(nil)
		case p := <-finished:
			finish(p)
		case err := <-fetchErr:
			if ctx.Err() == nil {
				return fmt.Errorf("intake %q: reading the buffer: %w", s.cfg.Intake, err)
			}
			fetchErr = nil
		case <-ctx.Done():
			// Stopping: what is being filled goes too, then the window
			// empties within StopGrace.
			dispatch(nil)
			for running > 0 {
				finish(<-finished)
			}
			s.handBack(window)
			return nil
		}
	}
}

// handBack ends a stop: it acknowledges the batches accepted and hands the
// others back to the buffer, for delivery again at once.
func (s *Shipper) handBack(window []*pendingBatch) {
	events := 0
	for _, p := range window {
		if p.accepted {
			s.ack(p)
			continue
		}
		events += p.batch.Len()
		for _, m := range p.msgs {
			_ = m.Nak()
		}
	}
	if events > 0 {
		s.log.Warn("stopped before the intake accepted everything in flight; it stays in the buffer", "events", events, "grace", s.cfg.StopGrace)
	}
}

// newBatch returns an empty batch, reusing the buffers of one done with.
func (s *Shipper) newBatch() *Batch {
	select {
	case b := <-s.batches:
		b.truncate(0)
		return b
	default:
		return &Batch{}
	}
}

// freeBatch keeps b for newBatch, if there is room.
func (s *Shipper) freeBatch(b *Batch) {
	select {
	case s.batches <- b:
	default:
	}
}

// ack removes a batch's messages from the buffer.
func (s *Shipper) ack(p *pendingBatch) {
	for _, m := range p.msgs {
		if err := m.Ack(); err != nil {
			s.log.Warn("buffer acknowledgement failed; the message will be shipped again", "err", err)
		}
	}
}

// add encodes the records of m (or its one event) into cur. When that
// takes cur past its byte bound and cur held events before, m's events move
// to a new batch, which add returns: requests stay bounded whatever size
// messages have.
func (s *Shipper) add(cur *pendingBatch, m buffer.Msg, records *pb.Batch, event []byte) *pendingBatch {
	b := cur.batch
	mark, markBytes := b.Len(), b.Bytes()
	if event != nil {
		b.buf = append(b.buf, event...)
		b.ends = append(b.ends, len(b.buf))
	}
	for _, f := range records.Flows {
		b.buf = s.enc.AppendFlow(b.buf, f)
		b.ends = append(b.ends, len(b.buf))
	}
	for _, c := range records.Counters {
		b.buf = s.enc.AppendCounters(b.buf, c)
		b.ends = append(b.ends, len(b.buf))
	}
	for _, l := range records.Logs {
		b.buf = s.enc.AppendLog(b.buf, l)
		b.ends = append(b.ends, len(b.buf))
	}
	if b.Bytes() <= s.cfg.MaxBytes || mark == 0 {
		cur.msgs = append(cur.msgs, m)
		return nil
	}
	next := &pendingBatch{batch: s.newBatch(), msgs: []buffer.Msg{m}}
	next.batch.buf = append(next.batch.buf, b.buf[markBytes:]...)
	for _, e := range b.ends[mark:] {
		next.batch.ends = append(next.batch.ends, e-markBytes)
	}
	b.truncate(mark)
	return next
}

// sender is one worker's part in a pause: the worker that met the refusal
// first probes the intake, the others wait.
type sender struct{ probing bool }

// worker sends batches until each is accepted (or its refused events set
// aside) or ctx ends.
func (s *Shipper) worker(ctx context.Context, work <-chan *pendingBatch, finished chan<- *pendingBatch) {
	w := &sender{}
	for p := range work {
		p.accepted = p.batch.Len() == 0 || s.send(ctx, w, p)
		finished <- p
	}
}

// send delivers a batch, keeping its messages alive in the buffer and the
// status told meanwhile.
func (s *Shipper) send(ctx context.Context, w *sender, p *pendingBatch) bool {
	stop := s.keepAlive(p.msgs)
	defer stop()
	s.status.begin()
	accepted := s.deliver(ctx, w, p.batch)
	s.status.end(accepted)
	return accepted
}

// keepAlive tells the buffer, until stop is called, that msgs are still
// being worked on, so that it does not deliver them again meanwhile.
func (s *Shipper) keepAlive(msgs []buffer.Msg) (stop func()) {
	done := make(chan struct{})
	exited := make(chan struct{})
	go func() {
		defer close(exited)
		tick := time.NewTicker(buffer.AckWait / 3)
		defer tick.Stop()
		for {
			select {
			case <-tick.C:
				for _, m := range msgs {
					_ = m.InProgress()
				}
			case <-done:
				return
			}
		}
	}()
	return func() {
		close(done)
		<-exited
	}
}

// deliver sends b until every event is accepted or set aside (true), or
// ctx ends (false), following the intake's answers:
//
//   - 413 (too large), 400 and 422 (refused): the batch goes in halves,
//     each delivered the same way, down to single events; an event refused
//     alone is a dead letter.
//   - 401 and 403 (the key is refused): the shipper pauses, one batch
//     probing every ProbeInterval, until an attempt succeeds.
//   - anything else: sent again after a backoff, for as long as it takes.
func (s *Shipper) deliver(ctx context.Context, w *sender, b *Batch) bool {
	for attempt := 0; ; attempt++ {
		if !s.waitWhilePaused(ctx, w) {
			return false
		}
		start := time.Now()
		err := s.transport.Send(ctx, b)
		s.m.observe(b, time.Since(start), err)
		if err == nil {
			if attempt > 0 {
				s.m.resumed.Inc()
			}
			s.resume(w)
			s.recovered(ctx)
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		s.status.failed(err)
		switch st := status(err); st {
		case http.StatusRequestEntityTooLarge, http.StatusBadRequest, http.StatusUnprocessableEntity:
			if b.Len() == 1 {
				return s.deadLetter(ctx, b.Event(0), err)
			}
			s.m.splits.Inc()
			s.log.Info("batch refused: sending it in halves to find the events at fault", "status", st, "events", b.Len())
			first, second := b.Split()
			return s.deliver(ctx, w, first) && s.deliver(ctx, w, second)
		case http.StatusUnauthorized, http.StatusForbidden:
			s.failing()
			s.pause(w, err)
			if w.probing && !sleep(ctx, s.cfg.ProbeInterval) {
				return false
			}
			continue
		}
		s.failing()
		wait := s.cfg.Backoff.Delay(attempt, retryAfter(err))
		s.m.retries.Add(1)
		s.m.backoff.Add(wait.Seconds())
		s.log.Warn("batch not accepted, retrying", "err", err, "events", b.Len(), "attempt", attempt+1, "wait", wait.Round(time.Millisecond))
		if !sleep(ctx, wait) {
			return false
		}
	}
}

// deadLetter sets aside an event the intake refused alone. It returns
// false only when ctx ends before the store took it; a full dead-letter
// stream drops it, counted.
func (s *Shipper) deadLetter(ctx context.Context, event []byte, refusal error) bool {
	st := status(refusal)
	dl := buffer.DeadLetter{Intake: s.cfg.Intake, Status: st, Reason: refusal.Error(), Time: time.Now(), Event: event}
	for attempt := 0; ; attempt++ {
		err := s.dead.PutDeadLetter(ctx, dl)
		switch {
		case err == nil:
			s.m.parent.deadLetters.WithLabelValues(s.cfg.Intake, strconv.Itoa(st)).Inc()
			s.log.Warn("event refused by the intake, set aside in the dead letters (flowgate dlq list)", "status", st, "bytes", len(event), "err", refusal)
			return true
		case errors.Is(err, buffer.ErrFull):
			s.m.deadLettersDropped.Inc()
			s.log.Error("event refused by the intake, and the dead letters are full: dropped", "status", st, "bytes", len(event), "err", refusal)
			return true
		case ctx.Err() != nil:
			return false
		}
		wait := s.cfg.Backoff.Delay(attempt, 0)
		s.log.Warn("storing a dead letter failed, retrying", "err", err, "wait", wait.Round(time.Millisecond))
		if !sleep(ctx, wait) {
			return false
		}
	}
}

// waitWhilePaused returns at once unless the shipper is paused and w is
// not the one probing; then it waits for the pause to end (true) or ctx
// (false).
func (s *Shipper) waitWhilePaused(ctx context.Context, w *sender) bool {
	for {
		s.mu.Lock()
		if s.pausedBy == nil || w.probing {
			s.mu.Unlock()
			return true
		}
		resumed := s.resumed
		s.mu.Unlock()
		select {
		case <-resumed:
		case <-ctx.Done():
			return false
		}
	}
}

// pause holds sends back after the intake refused the key; the first
// worker to meet the refusal probes.
func (s *Shipper) pause(w *sender, refusal error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pausedBy == nil {
		s.resumed = make(chan struct{})
		w.probing = true
		s.m.paused.Set(1)
		s.status.Pause(fmt.Sprintf("the intake refused the key (%d); records are kept and the key tried again every %s", status(refusal), s.cfg.ProbeInterval))
		s.log.Error("the intake refused the key: shipping paused, records kept in the buffer",
			"status", status(refusal), "err", refusal, "probe_every", s.cfg.ProbeInterval)
	}
	s.pausedBy = refusal
}

// resume ends a pause after a batch got through.
func (s *Shipper) resume(w *sender) {
	s.mu.Lock()
	defer s.mu.Unlock()
	w.probing = false
	if s.pausedBy == nil {
		return
	}
	s.pausedBy = nil
	close(s.resumed)
	s.m.paused.Set(0)
	s.status.Resume()
	s.log.Info("the intake accepts the key again: shipping resumed")
}

// failing counts a failed send of the outage under way, or begins one.
// Events refused (400, 413, 422) are no outage: the output answers.
func (s *Shipper) failing() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failingSince.IsZero() {
		s.failingSince = time.Now()
	}
	s.failedAttempts++
}

// recovered ends an outage after a send got through: the log says how long
// it lasted, how many attempts failed and what waits to be shipped.
func (s *Shipper) recovered(ctx context.Context) {
	s.mu.Lock()
	since, attempts := s.failingSince, s.failedAttempts
	s.failingSince, s.failedAttempts = time.Time{}, 0
	s.mu.Unlock()
	if since.IsZero() {
		return
	}
	after := Round(time.Since(since))
	subject := s.cfg.Subject
	if subject == "" {
		subject = buffer.Subject(s.cfg.Intake)
	}
	waiting, err := s.dead.Depth(ctx, subject)
	if err != nil {
		s.log.Info(fmt.Sprintf("output of %q accepted again after %s and %d failed attempts", s.cfg.Intake, after, attempts),
			"after", after, "attempts", attempts)
		return
	}
	s.log.Info(fmt.Sprintf("output of %q accepted again after %s and %d failed attempts; %s buffer messages waiting", s.cfg.Intake, after, attempts, Count(waiting)),
		"after", after, "attempts", attempts, "waiting_messages", waiting)
}

// Round rounds d for people: tenths of a second under 10 s, seconds
// under an hour, minutes beyond.
func Round(d time.Duration) time.Duration {
	switch {
	case d < 10*time.Second:
		return d.Round(100 * time.Millisecond)
	case d < time.Hour:
		return d.Round(time.Second)
	}
	return d.Round(time.Minute)
}

// Count writes n for people: 950, 12.3 k, 1.2 M.
func Count(n uint64) string {
	switch {
	case n >= 1e9:
		return strconv.FormatFloat(float64(n)/1e9, 'f', 1, 64) + " G"
	case n >= 1e6:
		return strconv.FormatFloat(float64(n)/1e6, 'f', 1, 64) + " M"
	case n >= 1e4:
		return strconv.FormatFloat(float64(n)/1e3, 'f', 1, 64) + " k"
	}
	return strconv.FormatUint(n, 10)
}

// sleep waits d, or less if ctx ends first (false).
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// statusLabel is the failure label for an error: the remote status, or
// "error" when there was no answer.
func statusLabel(err error) string {
	if st := status(err); st != 0 {
		return strconv.Itoa(st)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return "timeout"
	}
	return "error"
}
