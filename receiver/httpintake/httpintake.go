// Package httpintake is the local intake that speaks Sekoia's HTTPS API:
// scripts and collectors written for https://intake.sekoia.io post to the
// appliance instead. It reads a request's events (Decode), finds each
// key's place in the buffer (Keys), stores every event of the request and
// only then answers 200 with their ids; a request is stored whole or
// answered with an error.
package httpintake

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/klauspost/compress/gzip"

	"github.com/flowgate/flowgate/buffer"
	"github.com/flowgate/flowgate/format"
	pb "github.com/flowgate/flowgate/proto"
)

// Errors a Keys answers with for a key it does not take (403).
var (
	ErrUnknownKey   = errors.New("intake key not accepted by this intake")
	ErrMalformedKey = errors.New("malformed intake key")
	ErrMaxKeys      = errors.New("this intake ships to max_keys keys already")
)

// Keys says where each key's events go in the buffer.
type Keys interface {
	// Subject is key's buffer subject, or ErrUnknownKey, ErrMalformedKey
	// or ErrMaxKeys (refused), or another error (503: try again).
	Subject(ctx context.Context, key string) (string, error)
}

// Store keeps a request's messages: every one stored, or an error
// (buffer.Buffer's PublishAll).
type Store interface {
	PublishAll(ctx context.Context, msgs []buffer.Message) error
}

// Config describes one intake.
type Config struct {
	// Intake names the intake, for logs and metrics.
	Intake string
	// Addr is host:port to listen on.
	Addr string
	// TLS serves HTTPS; nil serves plain HTTP.
	TLS *tls.Config
	// MaxConnections bounds open connections; more are closed at once.
	MaxConnections int
	// ReadHeaderTimeout bounds reading a request's headers (and the TLS
	// handshake), ReadTimeout the whole request, IdleTimeout the wait for
	// the next request on a kept-alive connection.
	ReadHeaderTimeout, ReadTimeout, WriteTimeout, IdleTimeout time.Duration
	// StoreTimeout bounds storing a request's events.
	StoreTimeout time.Duration
	// MaxLogsPerMessage and MaxBytesPerMessage bound one buffer message.
	MaxLogsPerMessage, MaxBytesPerMessage int
}

// DefaultConfig returns the settings of an intake listening on addr.
func DefaultConfig(intake, addr string) Config {
	return Config{
		Intake:             intake,
		Addr:               addr,
		MaxConnections:     1000,
		ReadHeaderTimeout:  10 * time.Second,
		ReadTimeout:        time.Minute,
		WriteTimeout:       2 * time.Minute,
		IdleTimeout:        2 * time.Minute,
		StoreTimeout:       30 * time.Second,
		MaxLogsPerMessage:  1024,
		MaxBytesPerMessage: 1 << 20,
	}
}

// Dependencies are what an intake uses.
type Dependencies struct {
	Keys    Keys
	Store   Store
	Metrics *Metrics
	// Produced counts the events decoded, then stored or not
	// (collect.Metrics.Produced).
	Produced func(events int, err error)
	// OverMaxConnections counts a connection closed at once for being
	// over MaxConnections (collect.Metrics.MaxConnectionsRefused).
	OverMaxConnections func()
	Log                *slog.Logger
}

const (
	// retryAfterFull is the wait asked of clients while the buffer is full.
	retryAfterFull = "10"
	// retryAfterError is the wait asked after the store failed otherwise.
	retryAfterError = "1"
	// shutdownTimeout bounds the wait for requests being stored at stop.
	shutdownTimeout = 30 * time.Second
	// maxHeaderBytes bounds a request's headers.
	maxHeaderBytes = 64 << 10
)

// Intake is one listening HTTP intake.
type Intake struct {
	cfg  Config
	deps Dependencies
	m    intakeMetrics
	ln   net.Listener
	srv  *http.Server
	log  *slog.Logger
}

// New binds the intake's port.
func New(cfg Config, deps Dependencies) (*Intake, error) {
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("tcp %s: %w", cfg.Addr, err)
	}
	it := &Intake{cfg: cfg, deps: deps, m: deps.Metrics.forIntake(cfg.Intake), log: deps.Log.With("intake", cfg.Intake)}
	it.ln = &limitListener{Listener: ln, slots: make(chan struct{}, max(cfg.MaxConnections, 1)), refused: deps.OverMaxConnections}
	if cfg.TLS != nil {
		it.ln = tls.NewListener(it.ln, cfg.TLS)
	}
	it.srv = &http.Server{
		Handler:           it,
		ReadHeaderTimeout: cfg.ReadHeaderTimeout,
		ReadTimeout:       cfg.ReadTimeout,
		WriteTimeout:      cfg.WriteTimeout,
		IdleTimeout:       cfg.IdleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(it.log.Handler(), slog.LevelDebug),
	}
	return it, nil
}

// Addr is the bound address.
func (it *Intake) Addr() net.Addr { return it.ln.Addr() }

// Run serves until ctx ends, then waits for the requests being stored.
// Run on an ended context unbinds at once.
func (it *Intake) Run(ctx context.Context) error {
	if ctx.Err() != nil {
		return it.ln.Close()
	}
	done := make(chan error, 1)
	go func() { done <- it.srv.Serve(it.ln) }()
	select {
	case err := <-done:
		return fmt.Errorf("intake %q: %w", it.cfg.Intake, err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	err := it.srv.Shutdown(sctx)
	<-done
	return err
}

// ServeHTTP answers one request.
func (it *Intake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	code, answer, retryAfter := it.handle(r)
	it.m.answered(code)
	h := w.Header()
	h.Set("Content-Type", "application/json")
	if retryAfter != "" {
		h.Set("Retry-After", retryAfter)
	}
	w.WriteHeader(code)
	_, _ = w.Write(answer)
}

// handle reads, stores and answers a request: the status, the body and
// the Retry-After to send.
func (it *Intake) handle(r *http.Request) (int, []byte, string) {
	endpoint := Endpoint(r.URL.Path)
	switch {
	case endpoint == "":
		return problem(http.StatusNotFound, "no such endpoint: "+r.URL.Path)
	case r.Method != http.MethodPost:
		return problem(http.StatusMethodNotAllowed, "POST only")
	}
	body, err := readBody(r)
	if err != nil {
		return problemOf(err)
	}
	meta := Meta{Key: requestKey(r)}
	if ts := r.Header.Get("X-SEKOIAIO-EVENT-TIMESTAMP"); ts != "" {
		if meta.TimeNs, err = ParseTime(ts); err != nil {
			return problem(http.StatusBadRequest, "X-SEKOIAIO-EVENT-TIMESTAMP: "+err.Error())
		}
	}
	events, err := Decode(endpoint, body, meta)
	if err != nil {
		return problemOf(err)
	}
	ctx, cancel := context.WithTimeout(r.Context(), it.cfg.StoreTimeout)
	defer cancel()
	msgs, err := it.messages(ctx, events, senderOf(r))
	if err != nil {
		return problemOf(err)
	}
	err = it.deps.Store.PublishAll(ctx, msgs)
	it.deps.Produced(len(events), err)
	switch {
	case errors.Is(err, buffer.ErrFull):
		return problemRetry(http.StatusServiceUnavailable, "the buffer is full: try again later", retryAfterFull)
	case err != nil:
		it.log.Error("events not stored: the client is told to send them again", "events", len(events), "err", err)
		return problemRetry(http.StatusServiceUnavailable, "the events could not be stored: try again", retryAfterError)
	}
	if endpoint == EndpointPlain || endpoint == EndpointRoot {
		return http.StatusOK, append(appendEventIDs([]byte(`{"event_id":`), 1), '}'), ""
	}
	answer := make([]byte, 0, len(`{"event_ids":[]}`)+len(events)*39)
	answer = appendEventIDs(append(answer, `{"event_ids":[`...), len(events))
	return http.StatusOK, append(answer, "]}"...), ""
}

// messages turns events into buffer messages, each key's to its subject,
// in order. Every key is checked before anything is stored.
func (it *Intake) messages(ctx context.Context, events []Event, sender []byte) ([]buffer.Message, error) {
	subjects := map[string]string{}
	for _, e := range events {
		if _, ok := subjects[e.Key]; ok {
			continue
		}
		s, err := it.deps.Keys.Subject(ctx, e.Key)
		if err != nil {
			return nil, it.keyError(err)
		}
		subjects[e.Key] = s
	}
	now := uint64(time.Now().UnixNano())
	logs := make([]pb.Log, len(events))
	batches := map[string]*pending{}
	var msgs []buffer.Message
	flush := func(p *pending) error {
		data, err := p.batch.MarshalVT()
		if err != nil {
			return fmt.Errorf("encoding: %w", err)
		}
		msgs = append(msgs, buffer.Message{Subject: p.subject, Data: data})
		p.batch.Logs, p.bytes = p.batch.Logs[:0], 0
		return nil
	}
	for i, e := range events {
		l := &logs[i]
		// PRI 13 (user.notice) is what a message without one is given.
		l.TimeReceivedNs, l.Sender, l.Format, l.Pri, l.TimestampNs, l.Msg = now, sender, pb.LogFormat_UNPARSED, 13, e.TimeNs, e.Data
		subject := subjects[e.Key]
		p := batches[subject]
		if p == nil {
			p = &pending{subject: subject}
			batches[subject] = p
		}
		if len(p.batch.Logs) > 0 && (len(p.batch.Logs) >= it.cfg.MaxLogsPerMessage || p.bytes+len(e.Data) > it.cfg.MaxBytesPerMessage) {
			if err := flush(p); err != nil {
				return nil, err
			}
		}
		p.batch.Logs = append(p.batch.Logs, l)
		p.bytes += len(e.Data)
	}
	for _, e := range events {
		// In the order of each key's first event.
		if p := batches[subjects[e.Key]]; len(p.batch.Logs) > 0 {
			if err := flush(p); err != nil {
				return nil, err
			}
		}
	}
	return msgs, nil
}

// pending is one subject's message being gathered.
type pending struct {
	subject string
	batch   pb.Batch
	bytes   int
}

// keyError is the answer to a key Keys did not take, counted.
func (it *Intake) keyError(err error) error {
	reason := ""
	switch {
	case errors.Is(err, ErrUnknownKey):
		reason = ReasonUnknownKey
	case errors.Is(err, ErrMalformedKey):
		reason = ReasonMalformedKey
	case errors.Is(err, ErrMaxKeys):
		reason = ReasonMaxKeys
	default:
		it.log.Error("an intake key could not be set up: the client is told to try again", "err", err)
		return &Error{Status: http.StatusServiceUnavailable, Reason: "the intake key could not be set up: try again"}
	}
	it.m.refusedKey(reason)
	return &Error{Status: http.StatusForbidden, Reason: err.Error()}
}

// readBody reads the body, decompressed, within MaxRequestBytes.
func readBody(r *http.Request) ([]byte, error) {
	tooLarge := &Error{Status: http.StatusRequestEntityTooLarge, Reason: fmt.Sprintf("the request is over the limit of %d bytes", MaxRequestBytes)}
	if r.ContentLength > MaxRequestBytes {
		return nil, tooLarge
	}
	var body io.Reader = io.LimitReader(r.Body, MaxRequestBytes+1)
	switch enc := r.Header.Get("Content-Encoding"); enc {
	case "", "identity":
	case "gzip":
		gz, err := gzip.NewReader(body)
		if err != nil {
			return nil, badRequest("gzip: %v", err)
		}
		body = io.LimitReader(gz, MaxRequestBytes+1)
	default:
		return nil, &Error{Status: http.StatusUnsupportedMediaType, Reason: fmt.Sprintf("Content-Encoding %q: gzip or none", enc)}
	}
	data, err := io.ReadAll(body)
	switch {
	case len(data) > MaxRequestBytes:
		return nil, tooLarge
	case errors.Is(err, gzip.ErrChecksum), errors.Is(err, gzip.ErrHeader), errors.Is(err, io.ErrUnexpectedEOF):
		return nil, badRequest("gzip: %v", err)
	case err != nil:
		return nil, badRequest("reading the body: %v", err)
	}
	return data, nil
}

// requestKey is the key a request gives outside its body, in Sekoia's
// order: the header, the Basic password, the query.
func requestKey(r *http.Request) string {
	if k := r.Header.Get("X-SEKOIAIO-INTAKE-KEY"); k != "" {
		return k
	}
	if _, pw, ok := r.BasicAuth(); ok && pw != "" {
		return pw
	}
	return r.URL.Query().Get("intake_key")
}

// senderOf is the client's address, 4 or 16 bytes.
func senderOf(r *http.Request) []byte {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return nil
	}
	return ap.Addr().Unmap().AsSlice()
}

// appendEventIDs appends n UUIDs (version 4) as JSON strings separated by
// commas, for the events of one request: random for the request, numbered
// within it.
func appendEventIDs(dst []byte, n int) []byte {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	base := binary.BigEndian.Uint32(b[12:])
	var s [38]byte
	s[0], s[9], s[14], s[19], s[24], s[37] = '"', '-', '-', '-', '-', '"'
	for i := range n {
		binary.BigEndian.PutUint32(b[12:], base+uint32(i))
		hex.Encode(s[1:9], b[0:4])
		hex.Encode(s[10:14], b[4:6])
		hex.Encode(s[15:19], b[6:8])
		hex.Encode(s[20:24], b[8:10])
		hex.Encode(s[25:37], b[10:16])
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, s[:]...)
	}
	return dst
}

// problem is an error answer: {"message": reason}.
func problem(code int, reason string) (int, []byte, string) {
	return problemRetry(code, reason, "")
}

func problemRetry(code int, reason, retryAfter string) (int, []byte, string) {
	return code, append(format.AppendString([]byte(`{"message":`), reason), '}'), retryAfter
}

func problemOf(err error) (int, []byte, string) {
	var e *Error
	if errors.As(err, &e) {
		if e.Status == http.StatusServiceUnavailable {
			return problemRetry(e.Status, e.Reason, retryAfterError)
		}
		return problem(e.Status, e.Reason)
	}
	return problem(http.StatusInternalServerError, err.Error())
}

// limitListener closes at once the connections past its slots.
type limitListener struct {
	net.Listener
	slots   chan struct{}
	refused func()
}

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		select {
		case l.slots <- struct{}{}:
			return &slotConn{Conn: c, release: func() { <-l.slots }}, nil
		default:
			// Counted first: a client that sees the close sees the count.
			l.refused()
			c.Close()
		}
	}
}

// slotConn gives its slot back once closed.
type slotConn struct {
	net.Conn
	once    atomic.Bool
	release func()
}

func (c *slotConn) Close() error {
	if c.once.CompareAndSwap(false, true) {
		c.release()
	}
	return c.Conn.Close()
}
