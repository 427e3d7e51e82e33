package collect

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/flowgate/flowgate/buffer"
	"github.com/flowgate/flowgate/decoder/syslog"
	pb "github.com/flowgate/flowgate/proto"
	"github.com/flowgate/flowgate/receiver/udp"
)

// SyslogConfig describes a syslog intake.
type SyslogConfig struct {
	// Intake names the intake, for logs and metrics.
	Intake string
	// Subject is where its records go in the buffer (a subject, or a
	// buffer.Destination: one per output); "" (an intake without a key of
	// its own) drops what no route takes.
	Subject string
	// Routes send records to other subjects, or drop them.
	Routes Routes
	// Protocol is tcp, udp or tls (config.Protocol*).
	Protocol string
	// Addr is host:port to listen on; ":514" is every address.
	Addr string
	// TLS is the server configuration of a tls intake (tlsfiles.Server).
	TLS *tls.Config
	// MaxConnections bounds open TCP/TLS connections; more are closed at once.
	MaxConnections int
	// IdleTimeout closes a connection that sent nothing for that long.
	IdleTimeout time.Duration
	// HandshakeTimeout bounds a TLS handshake.
	HandshakeTimeout time.Duration
	// MaxLogsPerMessage, MaxBytesPerMessage and FlushInterval bound how many
	// messages, how many bytes, and for how long, records are gathered
	// before they go to the buffer as one message.
	MaxLogsPerMessage  int
	MaxBytesPerMessage int
	FlushInterval      time.Duration
	// ReceiveBuffer is the UDP socket buffer asked for, per socket, and
	// Sockets how many share the port (0: udp's defaults).
	ReceiveBuffer, Sockets int
	// Debug, when set, is given each frame received, for the intake's
	// debug line; it is called from every connection at once and must not
	// keep frame.
	Debug func(frame []byte)
}

// DefaultSyslogConfig returns the settings for an intake on port.
func DefaultSyslogConfig(intake, protocol string, port int) SyslogConfig {
	return SyslogConfig{
		Intake:             intake,
		Subject:            buffer.Subject(intake),
		Protocol:           protocol,
		Addr:               ":" + strconv.Itoa(port),
		MaxConnections:     1000,
		IdleTimeout:        time.Hour,
		HandshakeTimeout:   10 * time.Second,
		MaxLogsPerMessage:  256,
		MaxBytesPerMessage: 1 << 20,
		FlushInterval:      50 * time.Millisecond,
	}
}

const (
	// shutdownGrace is how long connections are still read once the
	// intake stops, so that what their senders already sent is kept.
	shutdownGrace = 200 * time.Millisecond
	// finalPublishTimeout bounds the last publish of a stopping connection.
	finalPublishTimeout = 10 * time.Second
	// pauseMin and pauseMax pace publish retries while the buffer is full.
	pauseMin = 50 * time.Millisecond
	pauseMax = 2 * time.Second
)

// SyslogIntake receives syslog on one TCP, TLS or UDP port.
type SyslogIntake struct {
	cfg    SyslogConfig
	buf    *buffer.Buffer
	m      *intakeMetrics
	router *router
	log    *slog.Logger
	// abortedWarn paces the warnings for connections ended by an error:
	// a flapping sender must not flood the log.
	abortedWarn rateLimit
	// encoded holds buffers (*[]byte) to encode a batch into for a publish
	// that waits for the store, which is done with them once it returns:
	// shared by the connections rather than kept by each, so that idle
	// ones hold none.
	encoded sync.Pool
	// Exactly one of these is set.
	ln  net.Listener
	udp *udp.Listener
}

// NewSyslogIntake binds the intake's port.
func NewSyslogIntake(cfg SyslogConfig, buf *buffer.Buffer, m *Metrics, log *slog.Logger) (*SyslogIntake, error) {
	im := m.forIntake(cfg.Intake)
	si := &SyslogIntake{cfg: cfg, buf: buf, m: im, router: newRouter(cfg.Subject, cfg.Routes, im), log: log.With("intake", cfg.Intake)}
	switch cfg.Protocol {
	case "udp":
		l, err := udp.Listen(udp.Config{Addr: cfg.Addr, ReceiveBuffer: cfg.ReceiveBuffer, Sockets: cfg.Sockets}, si.log)
		if err != nil {
			return nil, err
		}
		si.udp = l
	case "tcp", "tls":
		ln, err := net.Listen("tcp", cfg.Addr)
		if err != nil {
			return nil, fmt.Errorf("tcp %s: %w", cfg.Addr, err)
		}
		if cfg.Protocol == "tls" {
			if cfg.TLS == nil {
				ln.Close()
				return nil, errors.New("tls intake without a TLS configuration")
			}
			ln = tls.NewListener(ln, cfg.TLS)
		}
		si.ln = ln
		si.m.watchAborted()
	default:
		return nil, fmt.Errorf("protocol %q is not a syslog protocol", cfg.Protocol)
	}
	return si, nil
}

// Addr is the bound address.
func (si *SyslogIntake) Addr() net.Addr {
	if si.udp != nil {
		return si.udp.Addr()
	}
	return si.ln.Addr()
}

// Run receives until ctx ends, then stores what it holds.
func (si *SyslogIntake) Run(ctx context.Context) error {
	if si.udp != nil {
		return si.runUDP(ctx)
	}
	return si.runStream(ctx)
}

// runStream accepts connections, each served by its own goroutine. A TLS
// connection takes one of the max_connections slots once its handshake is
// done: connections that never finish one (scans, slow or hostile
// clients) cannot keep senders out. At most max_connections handshakes
// run at once besides; past that the oldest is abandoned.
func (si *SyslogIntake) runStream(ctx context.Context) error {
	// The port is free once Run returns, so that a reload can bind it at
	// once: the close that ends Accept may still be under way on the
	// AfterFunc's goroutine when Accept returns, so Run waits for it.
	closed := make(chan struct{})
	stop := context.AfterFunc(ctx, func() { si.ln.Close(); close(closed) })
	defer func() {
		if stop() {
			si.ln.Close()
		} else {
			<-closed
		}
	}()
	slots := make(chan struct{}, max(si.cfg.MaxConnections, 1))
	hs := &handshakes{max: max(si.cfg.MaxConnections, 1)}
	var wg sync.WaitGroup
	defer wg.Wait()
	var refusedWarn rateLimit
	admit := func(conn net.Conn) {
		select {
		case slots <- struct{}{}:
		default:
			si.m.refused(refusedMaxConnections)
			if refusedWarn.allow() {
				si.log.Warn("connection refused: the intake has max_connections open", "from", conn.RemoteAddr(), "max_connections", si.cfg.MaxConnections)
			}
			conn.Close()
			return
		}
		defer func() { <-slots }()
		si.serve(ctx, conn)
	}
	for {
		conn, err := si.ln.Accept()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return fmt.Errorf("intake %q: accept: %w", si.cfg.Intake, err)
		}
		tc, _ := conn.(*tls.Conn)
		if tc != nil {
			// Counted here, in the order of acceptance, not when its
			// goroutine first runs: the one abandoned is the oldest.
			if oldest := hs.add(tc); oldest != nil {
				si.m.refused(refusedTLSHandshakeSlow)
				oldest.Close()
			}
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if tc != nil && !si.handshake(ctx, tc, hs) {
				return
			}
			admit(conn)
		}()
	}
}

// handshake runs the TLS handshake of a connection in hs within
// HandshakeTimeout; a failed one closes the connection.
func (si *SyslogIntake) handshake(ctx context.Context, tc *tls.Conn, hs *handshakes) bool {
	hctx, cancel := context.WithTimeout(ctx, si.cfg.HandshakeTimeout)
	err := tc.HandshakeContext(hctx)
	cancel()
	if !hs.remove(tc) {
		// Abandoned for a newer one, and counted then.
		tc.Close()
		return false
	}
	if err == nil {
		return true
	}
	tc.Close()
	if errors.Is(err, io.EOF) {
		// Closed before saying anything: a health check or a scan.
		si.log.Debug("connection closed before the TLS handshake", "from", tc.RemoteAddr().String())
		return false
	}
	si.m.refused(refusedTLSHandshake)
	si.log.Warn("TLS handshake failed", "from", tc.RemoteAddr().String(), "err", err)
	return false
}

// handshakes are the connections in their TLS handshake, oldest first.
type handshakes struct {
	mu    sync.Mutex
	max   int
	conns []net.Conn
}

// add adds c, and returns the oldest connection when that makes one too
// many: it is taken out, for the caller to close.
func (h *handshakes) add(c net.Conn) (oldest net.Conn) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.conns = append(h.conns, c)
	if len(h.conns) > h.max {
		oldest = h.conns[0]
		h.conns = h.conns[1:]
	}
	return oldest
}

// remove takes c out; false when it was abandoned meanwhile.
func (h *handshakes) remove(c net.Conn) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	for i, x := range h.conns {
		if x == c {
			h.conns = append(h.conns[:i], h.conns[i+1:]...)
			return true
		}
	}
	return false
}

// serve reads one connection until it ends, it idles past IdleTimeout, or
// the intake stops. Records go to the buffer synchronously: while the
// buffer is full the connection is not read, so its sender keeps the data.
func (si *SyslogIntake) serve(ctx context.Context, conn net.Conn) {
	defer conn.Close()
	from := addrOf(conn.RemoteAddr())
	log := si.log.With("from", conn.RemoteAddr().String())
	si.m.connections.Inc()
	defer si.m.connections.Dec()
	// Stopping: read what the sender already sent for a moment, then end.
	stopping := context.AfterFunc(ctx, func() { _ = conn.SetReadDeadline(time.Now().Add(shutdownGrace)) })
	defer stopping()

	// setDeadline never undoes the stop's deadline.
	setDeadline := func(t time.Time) {
		_ = conn.SetReadDeadline(t)
		if ctx.Err() != nil {
			_ = conn.SetReadDeadline(time.Now().Add(shutdownGrace))
		}
	}
	fr := syslog.NewFramer(conn)
	s := si.newSink()
	lastRead := time.Now()
	setDeadline(lastRead.Add(si.cfg.IdleTimeout))
	for {
		frame, err := fr.Next()
		now := time.Now()
		switch {
		case err == nil:
			lastRead = now
			if s.empty() && ctx.Err() == nil {
				// Read until the flush is due, then store what came.
				setDeadline(now.Add(si.cfg.FlushInterval))
			}
			if d := si.received(s, frame, from, now); d >= 0 && s.full(d) {
				si.publishSync(ctx, si.router.subjects[d], s.batches[d], log)
			}
			continue
		case errors.Is(err, syslog.ErrFrameTooLong):
			lastRead = now
			si.m.dropped("oversize", 1)
			log.Warn("syslog frame over 250 KiB dropped")
			continue
		case errors.Is(err, syslog.ErrTruncated):
			si.m.dropped("truncated", 1)
		}
		if isTimeout(err) && ctx.Err() == nil {
			si.publishAll(ctx, s, log)
			if ctx.Err() == nil {
				idleUntil := lastRead.Add(si.cfg.IdleTimeout)
				if now.Before(idleUntil) {
					setDeadline(idleUntil)
					continue
				}
				log.Info("closing a connection idle for too long", "idle_timeout", si.cfg.IdleTimeout)
			}
		}
		// End of stream, error, idle, or the grace after a stop is over.
		si.publishAll(ctx, s, log)
		if err != nil && err != io.EOF && !isTimeout(err) && !errors.Is(err, net.ErrClosed) && !errors.Is(err, syslog.ErrTruncated) {
			reason := abortReason(err)
			si.m.aborted(reason)
			if si.abortedWarn.allow() {
				log.Warn("connection ended by an error: what the sender wrote last may be lost",
					"reason", reason, "err", err, "counted_in", MetricAbortedConnectionsTotal)
			}
		}
		return
	}
}

// received counts a frame, prints it when debugging, and adds it to the
// batch of its destination, which it returns (-1: dropped by a rule).
func (si *SyslogIntake) received(s *logSink, frame []byte, from netip.Addr, now time.Time) int {
	si.m.packets.Inc()
	si.m.bytes.Add(float64(len(frame)))
	if si.cfg.Debug != nil {
		si.cfg.Debug(frame)
	}
	si.m.decoded.Inc()
	return s.add(frame, from, now)
}

// logSink gathers a connection's (or a udp intake's) records, one batch
// per destination of the router.
type logSink struct {
	si      *SyslogIntake
	batches []*logBatch
}

func (si *SyslogIntake) newSink() *logSink {
	s := &logSink{si: si, batches: make([]*logBatch, len(si.router.subjects))}
	for i := range s.batches {
		s.batches[i] = newLogBatch()
	}
	return s
}

// add parses a frame into the first batch and routes it: a record that
// goes elsewhere is taken back and parsed again into its own batch (only
// routed records pay twice).
func (s *logSink) add(frame []byte, from netip.Addr, now time.Time) int {
	b := s.batches[0]
	mark := len(b.arena)
	d := s.si.router.log(b.add(frame, from, now))
	if d != 0 {
		b.undo(mark)
		if d > 0 {
			s.batches[d].add(frame, from, now)
		}
	}
	return d
}

func (s *logSink) full(d int) bool {
	b := s.batches[d]
	return b.len() >= s.si.cfg.MaxLogsPerMessage || b.bytes() >= s.si.cfg.MaxBytesPerMessage
}

func (s *logSink) empty() bool {
	for _, b := range s.batches {
		if b.len() > 0 {
			return false
		}
	}
	return true
}

// publishAll stores every batch of s that holds records.
func (si *SyslogIntake) publishAll(ctx context.Context, s *logSink, log *slog.Logger) {
	for d, b := range s.batches {
		if b.len() > 0 {
			si.publishSync(ctx, si.router.subjects[d], b, log)
		}
	}
}

// publishSync stores b, waiting while the buffer is full: the connection
// is not read meanwhile. Once the intake stops, it tries once more and
// counts what it could not store.
func (si *SyslogIntake) publishSync(ctx context.Context, subject string, b *logBatch, log *slog.Logger) {
	out, _ := si.encoded.Get().(*[]byte)
	if out == nil {
		out = new([]byte)
	}
	defer si.encoded.Put(out)
	data, err := b.marshal(*out)
	*out = data
	n := b.len()
	b.reset()
	if err != nil {
		si.m.dropped("encode", n)
		log.Error("encoding records for the buffer", "err", err)
		return
	}
	wait := pauseMin
	paused := false
	defer func() {
		if paused {
			si.m.paused.Dec()
		}
	}()
	for {
		pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), finalPublishTimeout)
		err = si.buf.Publish(pctx, subject, data)
		cancel()
		if err == nil {
			si.m.buffered.Add(float64(n))
			return
		}
		if ctx.Err() != nil {
			si.m.published(n, err)
			return
		}
		if !paused {
			paused = true
			si.m.paused.Inc()
			log.Warn("buffer refused records: not reading this connection until it takes them", "err", err)
		}
		select {
		case <-time.After(wait):
		case <-ctx.Done():
		}
		wait = min(2*wait, pauseMax)
	}
}

// runUDP receives datagrams, each one message, and publishes them without
// waiting: when the buffer is full they are dropped and counted.
func (si *SyslogIntake) runUDP(ctx context.Context) error {
	u := &udpQueues{listener: si.udp, workers: 1, depth: 1024, flushEvery: si.cfg.FlushInterval}
	return u.run(ctx, func() batcher {
		sb := &syslogBatcher{si: si, sink: si.newSink()}
		for _, subject := range si.router.subjects {
			var pub *buffer.Publisher
			if subject != "" {
				pub = si.buf.Publisher(subject, si.m.published)
			}
			sb.pubs = append(sb.pubs, pub)
		}
		return sb
	})
}

// syslogBatcher gathers a udp intake's messages.
type syslogBatcher struct {
	si   *SyslogIntake
	sink *logSink
	// pubs are by destination; nil for a destination that drops.
	pubs []*buffer.Publisher
}

func (s *syslogBatcher) add(d *datagram) bool {
	if frame := syslog.TrimLineEnd(d.data); len(frame) > 0 {
		if dest := s.si.received(s.sink, frame, d.from, d.received); dest >= 0 {
			return s.sink.full(dest)
		}
	}
	return false
}

func (s *syslogBatcher) flush() {
	for d, b := range s.sink.batches {
		if b.len() == 0 {
			continue
		}
		// The publisher keeps the buffer until stored.
		data, err := b.marshal(s.pubs[d].Buffer())
		if err != nil {
			s.si.m.dropped("encode", b.len())
			s.si.log.Error("encoding records for the buffer", "err", err)
		} else {
			s.pubs[d].Publish(data, b.len())
		}
		b.reset()
	}
}

func (s *syslogBatcher) close() {
	s.flush()
	for _, p := range s.pubs {
		if p != nil {
			p.Close()
		}
	}
}

// logBatch gathers records for one buffer message. The records' bytes live
// in one arena, reused from message to message, as are the records.
type logBatch struct {
	batch pb.Batch
	logs  []*pb.Log
	arena []byte
}

func newLogBatch() *logBatch { return &logBatch{arena: make([]byte, 0, 64<<10)} }

func (b *logBatch) len() int   { return len(b.batch.Logs) }
func (b *logBatch) bytes() int { return len(b.arena) }

// add parses a frame into the next record. The frame is copied into the
// arena first: the record's fields point into the copy. When the arena
// grows, earlier records keep the old one.
func (b *logBatch) add(frame []byte, from netip.Addr, received time.Time) *pb.Log {
	n := len(b.batch.Logs)
	if n == len(b.logs) {
		b.logs = append(b.logs, &pb.Log{})
	}
	l := b.logs[n]
	start := len(b.arena)
	b.arena = append(b.arena, frame...)
	syslog.Parse(l, b.arena[start:len(b.arena):len(b.arena)], received)
	l.TimeReceivedNs = uint64(received.UnixNano())
	start = len(b.arena)
	if from.Is4() {
		a := from.As4()
		b.arena = append(b.arena, a[:]...)
	} else {
		a := from.As16()
		b.arena = append(b.arena, a[:]...)
	}
	l.Sender = b.arena[start:len(b.arena):len(b.arena)]
	b.batch.Logs = append(b.batch.Logs, l)
	return l
}

// undo takes back the last record added, the arena having been mark
// bytes long before it.
func (b *logBatch) undo(mark int) {
	b.batch.Logs = b.batch.Logs[:len(b.batch.Logs)-1]
	b.arena = b.arena[:mark]
}

// marshal encodes the batch into dst, grown when too small.
func (b *logBatch) marshal(dst []byte) ([]byte, error) { return marshalInto(dst, &b.batch) }

func (b *logBatch) reset() {
	b.batch.Logs = b.batch.Logs[:0]
	b.arena = b.arena[:0]
}

// addrOf is the address of a connection's peer.
func addrOf(a net.Addr) netip.Addr {
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.AddrPort().Addr().Unmap()
	}
	ap, _ := netip.ParseAddrPort(a.String())
	return ap.Addr().Unmap()
}

// abortReason names why a connection ended with err, for
// flowgate_aborted_connections_total.
func abortReason(err error) string {
	var op *net.OpError
	switch {
	case errors.Is(err, syscall.ECONNRESET):
		// The sender's kernel threw away what it had not transmitted yet.
		return abortedReset
	case errors.Is(err, io.ErrUnexpectedEOF),
		errors.As(err, &op) && (op.Op == "local error" || op.Op == "remote error"):
		// A TLS record cut short, or an alert sent or received.
		return abortedTLS
	default:
		return abortedError
	}
}

// rateLimit allows one event a minute: for warnings a sender can repeat
// at will.
type rateLimit struct {
	mu   sync.Mutex
	last time.Time
}

func (r *rateLimit) allow() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if now := time.Now(); now.Sub(r.last) > time.Minute {
		r.last = now
		return true
	}
	return false
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
