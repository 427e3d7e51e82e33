package ship

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/flowgate/flowgate/buffer"
	pb "github.com/flowgate/flowgate/proto"
)

// Config tunes one shipper.
type Config struct {
	// Intake names the intake, for logs and metrics.
	Intake string
	// MaxEvents and MaxBytes bound a batch; Linger bounds how long a batch
	// waits to fill.
	MaxEvents int
	MaxBytes  int
	Linger    time.Duration
	// InFlight is how many batches may be sent at once.
	InFlight int
	// Backoff paces retries.
	Backoff Backoff
}

// DefaultConfig is what an intake gets unless told otherwise: requests well
// under the intake's 10 MiB and sent at least every second.
func DefaultConfig(intake string) Config {
	return Config{
		Intake:    intake,
		MaxEvents: 10_000,
		MaxBytes:  8 << 20,
		Linger:    time.Second,
		InFlight:  4,
		Backoff:   DefaultBackoff,
	}
}

// Source delivers buffer messages; buffer.Consumer is one.
type Source interface {
	Next(ctx context.Context) (buffer.Msg, error)
}

// Shipper ships one intake.
type Shipper struct {
	cfg       Config
	src       Source
	enc       Encoder
	transport Transport
	log       *slog.Logger
	m         *intakeMetrics
	status    *Status
}

// New returns a shipper; Run starts it.
func New(cfg Config, src Source, enc Encoder, transport Transport, m *Metrics, log *slog.Logger) *Shipper {
	return &Shipper{cfg: cfg, src: src, enc: enc, transport: transport, log: log.With("intake", cfg.Intake), m: m.forIntake(cfg.Intake), status: NewStatus()}
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

// Run ships until ctx ends, then waits for the batches in flight to be
// accepted or abandoned (left unacknowledged: the buffer delivers them again).
func (s *Shipper) Run(ctx context.Context) error {
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
				return
			}
		}
	}()

	// The window holds at most InFlight+1 batches (a message that splits a
	// batch dispatches two at once), so sends on these never block.
	work := make(chan *pendingBatch, s.cfg.InFlight+1)
	finished := make(chan *pendingBatch, s.cfg.InFlight+1)
	for range s.cfg.InFlight {
		go s.worker(ctx, work, finished)
	}
	defer close(work)

	var (
		window  []*pendingBatch // dispatched and not yet acknowledged, in order
		running int             // dispatched and not yet finished
		cur     = &pendingBatch{batch: &Batch{}}
		linger  = time.NewTimer(time.Hour)
		records pb.Batch
	)
	linger.Stop()
	dispatch := func() {
		linger.Stop()
		if cur.batch.Len() == 0 && len(cur.msgs) == 0 {
			return
		}
		window = append(window, cur)
		running++
		work <- cur
		cur = &pendingBatch{batch: &Batch{}}
	}
	// finish acknowledges, in order, every batch at the head of the window
	// that was accepted.
	finish := func(p *pendingBatch) {
		running--
		p.finished = true
		n := 0
		for n < len(window) && window[n].finished && window[n].accepted {
			for _, m := range window[n].msgs {
				if err := m.Ack(); err != nil {
					s.log.Warn("buffer acknowledgement failed; the message will be shipped again", "err", err)
				}
			}
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
			if err := proto.Unmarshal(m.Data(), &records); err != nil {
				// Not ours to ship and never will be: keep it out of the way.
				s.log.Error("buffer message cannot be read, dropped", "err", err, "bytes", len(m.Data()))
				s.m.dropped.Add(1)
				_ = m.Term()
				continue
			}
			if cur.batch.Len() == 0 {
				linger.Reset(s.cfg.Linger)
			}
			if next := s.add(cur, m, &records); next != nil {
				dispatch()
				cur = next
				linger.Reset(s.cfg.Linger)
			}
			if cur.batch.Len() >= s.cfg.MaxEvents || cur.batch.Bytes() >= s.cfg.MaxBytes {
				dispatch()
			}
		case <-linger.C:
			dispatch()
		case p := <-finished:
			finish(p)
		case err := <-fetchErr:
			if ctx.Err() == nil {
				return fmt.Errorf("intake %q: reading the buffer: %w", s.cfg.Intake, err)
			}
			fetchErr = nil
		case <-ctx.Done():
			// Sends end on ctx too; what was accepted meanwhile is still
			// acknowledged, the rest is delivered again after a restart.
			for running > 0 {
				finish(<-finished)
			}
			return nil
		}
	}
}

// add encodes the records of m into cur. When that takes cur past its byte
// bound and cur held events before, m's events move to a new batch, which
// add returns: requests stay bounded whatever size messages have.
func (s *Shipper) add(cur *pendingBatch, m buffer.Msg, records *pb.Batch) *pendingBatch {
	b := cur.batch
	mark, markBytes := b.Len(), b.Bytes()
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
	next := &pendingBatch{batch: &Batch{buf: append([]byte(nil), b.buf[markBytes:]...)}, msgs: []buffer.Msg{m}}
	for _, e := range b.ends[mark:] {
		next.batch.ends = append(next.batch.ends, e-markBytes)
	}
	b.truncate(mark)
	return next
}

// worker sends batches until each is accepted or ctx ends.
func (s *Shipper) worker(ctx context.Context, work <-chan *pendingBatch, finished chan<- *pendingBatch) {
	for p := range work {
		p.accepted = s.send(ctx, p)
		finished <- p
	}
}

// send retries a batch until it is accepted (true) or ctx ends (false),
// telling the buffer it is still at work so that it does not deliver the
// messages again meanwhile.
func (s *Shipper) send(ctx context.Context, p *pendingBatch) (accepted bool) {
	if p.batch.Len() == 0 {
		return true
	}
	s.status.begin()
	defer func() { s.status.end(accepted) }()
	keepAlive := time.NewTicker(buffer.AckWait / 3)
	defer keepAlive.Stop()
	for attempt := 0; ; attempt++ {
		start := time.Now()
		err := s.transport.Send(ctx, p.batch)
		s.m.observe(p.batch, time.Since(start), err)
		if err == nil {
			if attempt > 0 {
				s.m.resumed.Inc()
			}
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		wait := s.cfg.Backoff.Delay(attempt, retryAfter(err))
		s.m.retries.Add(1)
		s.m.backoff.Add(wait.Seconds())
		s.status.failed(err)
		s.log.Warn("batch not accepted, retrying", "err", err, "events", p.batch.Len(), "attempt", attempt+1, "wait", wait.Round(time.Millisecond))
		timer := time.NewTimer(wait)
	wait:
		for {
			select {
			case <-timer.C:
				break wait
			case <-keepAlive.C:
				for _, m := range p.msgs {
					_ = m.InProgress()
				}
			case <-ctx.Done():
				timer.Stop()
				return false
			}
		}
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
