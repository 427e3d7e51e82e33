// Package relp ships batches to a RELP endpoint over TLS: a RELP client of
// our own (no maintained Go one exists) that opens a session offering
// relp_version=0 and the syslog command, sends each event as one syslog
// frame with up to Window frames unanswered, and takes a batch as accepted
// only when every one of its frames was answered "rsp 200". Any other
// answer, a broken connection or a timeout fails the batch, which ship
// sends again on a new session: duplicates rather than loss.
package relp

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/flowgate/flowgate/ship"
	"github.com/flowgate/flowgate/tlsfiles"
)

const (
	// DefaultWindow is librelp's own: frames sent and not yet answered.
	DefaultWindow = 128
	// maxTxnr is where transaction numbers wrap (back to 1).
	maxTxnr = 999_999_999
	// maxAnswerBytes bounds the data of an answer read from the server.
	maxAnswerBytes = 64 << 10
	// software is what the open offer says we are.
	software = "flowgate"
)

// Config says where and how to send.
type Config struct {
	// Addr is host:port of the receiver.
	Addr string
	// CAFile is an extra CA to trust besides the system roots.
	CAFile string
	// CertFile and KeyFile are a client certificate to present, for
	// receivers that require one.
	CertFile, KeyFile string
	// Files, when set, watches those files: new sessions use renewed
	// ones. Nil reads them once.
	Files *tlsfiles.Set
	// Window bounds frames sent and not yet answered.
	Window int
	// DialTimeout bounds connecting, the TLS handshake and the open.
	DialTimeout time.Duration
	// AckTimeout bounds the wait for a batch to be answered.
	AckTimeout time.Duration
}

// DefaultConfig is the configuration for a receiver at addr.
func DefaultConfig(addr, caFile string) Config {
	return Config{Addr: addr, CAFile: caFile, Window: DefaultWindow, DialTimeout: 10 * time.Second, AckTimeout: 60 * time.Second}
}

// Transport sends batches over one RELP session, opened on demand and
// again after a failure (ship paces the retries).
type Transport struct {
	cfg   Config
	tls   *tls.Config
	files *tlsfiles.Client

	// mu orders frames on the session and guards sess.
	mu   sync.Mutex
	sess *session
}

// New returns a transport; it connects when the first batch comes.
func New(cfg Config) (*Transport, error) {
	host, _, err := net.SplitHostPort(cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("relp endpoint %q: %w", cfg.Addr, err)
	}
	files, err := cfg.Files.Client("relp "+cfg.Addr, host, cfg.CAFile, cfg.CertFile, cfg.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("relp endpoint %q: %w", cfg.Addr, err)
	}
	if cfg.Window <= 0 {
		cfg.Window = DefaultWindow
	}
	return &Transport{cfg: cfg, tls: files.Config(), files: files}, nil
}

// waiter follows the answers to one batch's frames.
type waiter struct {
	left int
	err  error
	done chan struct{}
}

// Send sends each event as a syslog frame and waits for all the answers.
func (t *Transport) Send(ctx context.Context, b *ship.Batch) error {
	if b.Len() == 0 {
		return nil
	}
	w := &waiter{left: b.Len(), done: make(chan struct{})}
	t.mu.Lock()
	s, err := t.session(ctx)
	if err == nil {
		err = s.sendBatch(ctx, b, w)
	}
	if err != nil {
		t.drop(s, err)
		t.mu.Unlock()
		return err
	}
	t.mu.Unlock()

	timer := time.NewTimer(t.cfg.AckTimeout)
	defer timer.Stop()
	select {
	case <-w.done:
		return w.err
	case <-s.dead:
		return s.err
	case <-timer.C:
		err = fmt.Errorf("relp %s: no answer to %d frames within %s", t.cfg.Addr, b.Len(), t.cfg.AckTimeout)
	case <-ctx.Done():
		err = ctx.Err()
	}
	// A session whose answers are late cannot be trusted with the next batch.
	t.mu.Lock()
	t.drop(s, err)
	t.mu.Unlock()
	return err
}

// session returns the open session or opens one. Called with mu held.
func (t *Transport) session(ctx context.Context) (*session, error) {
	if t.sess != nil {
		select {
		case <-t.sess.dead:
			t.drop(t.sess, t.sess.err)
		default:
			return t.sess, nil
		}
	}
	s, err := open(ctx, t.cfg, t.tls)
	if err != nil {
		return nil, err
	}
	t.sess = s
	return s, nil
}

// drop ends s if it is the current session. Called with mu held.
func (t *Transport) drop(s *session, err error) {
	if s == nil {
		return
	}
	s.kill(err)
	if t.sess == s {
		t.sess = nil
	}
}

// Close ends the session politely: close, its answer (briefly), then the
// connection.
func (t *Transport) Close() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.files.Close()
	s := t.sess
	if s == nil {
		return nil
	}
	t.sess = nil
	_ = s.tc.SetWriteDeadline(time.Now().Add(time.Second))
	txnr := s.next()
	s.mu.Lock()
	s.closeTxnr = txnr
	s.mu.Unlock()
	if s.frame(txnr, "close", nil) == nil && s.w.Flush() == nil {
		select {
		case <-s.closed:
		case <-s.dead:
		case <-time.After(time.Second):
		}
	}
	s.kill(errors.New("relp: session closed"))
	return nil
}

// session is one RELP session over one TLS connection.
type session struct {
	addr string
	tc   *tls.Conn
	w    *bufio.Writer
	// txnr is the last transaction number used; guarded by Transport.mu.
	txnr int
	// window holds a token per frame sent and not yet answered.
	window chan struct{}

	mu      sync.Mutex
	pending map[int]*waiter
	// closeTxnr is the txnr of our close, whose answer closes closed.
	closeTxnr int
	closed    chan struct{}

	dead chan struct{}
	once sync.Once
	err  error
}

// open connects, shakes hands and opens a RELP session.
func open(ctx context.Context, cfg Config, tc *tls.Config) (*session, error) {
	d := net.Dialer{Timeout: cfg.DialTimeout, KeepAlive: 30 * time.Second}
	nc, err := d.DialContext(ctx, "tcp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("relp %s: %w", cfg.Addr, err)
	}
	s := &session{
		addr:    cfg.Addr,
		tc:      tls.Client(nc, tc),
		window:  make(chan struct{}, cfg.Window),
		pending: map[int]*waiter{},
		closed:  make(chan struct{}),
		dead:    make(chan struct{}),
	}
	s.w = bufio.NewWriterSize(s.tc, 64<<10)
	_ = nc.SetDeadline(time.Now().Add(cfg.DialTimeout))
	if err := s.tc.HandshakeContext(ctx); err != nil {
		nc.Close()
		return nil, fmt.Errorf("relp %s: TLS: %w", cfg.Addr, err)
	}
	r := bufio.NewReader(s.tc)
	if err := s.open(r); err != nil {
		nc.Close()
		return nil, fmt.Errorf("relp %s: open: %w", cfg.Addr, err)
	}
	_ = nc.SetDeadline(time.Time{})
	go s.read(r)
	return s, nil
}

// Probe opens a RELP session on an established TLS connection and closes
// it again, sending no message: the receiver's answer, for `flowgate
// check --probe`. The caller bounds the time with the connection's deadline.
func Probe(conn *tls.Conn) error {
	s := &session{tc: conn, w: bufio.NewWriter(conn)}
	r := bufio.NewReader(conn)
	if err := s.open(r); err != nil {
		return fmt.Errorf("open: %w", err)
	}
	a, err := s.exchange(r, "close", nil)
	if err != nil {
		return fmt.Errorf("close: %w", err)
	}
	// librelp answers a close with an empty rsp.
	if a.command != "rsp" || (len(a.data) > 0 && a.status() != 200) {
		return fmt.Errorf("close: answered %s %q", a.command, firstLine(a.data))
	}
	return nil
}

// offer is the open command's data: what this client speaks.
var offer = []byte("relp_version=0\nrelp_software=" + software + "\ncommands=syslog")

// open opens the RELP session: the offer, and the receiver's acceptance.
func (s *session) open(r *bufio.Reader) error {
	a, err := s.exchange(r, "open", offer)
	if err != nil {
		return err
	}
	return a.openAccepted()
}

// exchange sends a command and reads its answer, before the session's
// reader runs.
func (s *session) exchange(r *bufio.Reader, command string, data []byte) (answer, error) {
	if err := s.frame(s.next(), command, data); err != nil {
		return answer{}, err
	}
	if err := s.w.Flush(); err != nil {
		return answer{}, err
	}
	return readFrame(r)
}

// next is the next transaction number: 1 to 999999999, then 1 again.
func (s *session) next() int {
	s.txnr++
	if s.txnr > maxTxnr {
		s.txnr = 1
	}
	return s.txnr
}

// frame writes TXNR SP COMMAND SP DATALEN [SP DATA] LF into the buffer.
func (s *session) frame(txnr int, command string, data []byte) error {
	var head [32]byte
	h := strconv.AppendInt(head[:0], int64(txnr), 10)
	h = append(h, ' ')
	h = append(h, command...)
	h = append(h, ' ')
	h = strconv.AppendInt(h, int64(len(data)), 10)
	if len(data) > 0 {
		h = append(h, ' ')
	}
	if _, err := s.w.Write(h); err != nil {
		return err
	}
	if _, err := s.w.Write(data); err != nil {
		return err
	}
	return s.w.WriteByte('\n')
}

// sendBatch writes one syslog frame per event, waiting for window room
// (after flushing what is buffered) when Window frames are unanswered.
// Called with Transport.mu held.
func (s *session) sendBatch(ctx context.Context, b *ship.Batch, w *waiter) error {
	_ = s.tc.SetWriteDeadline(time.Now().Add(time.Minute))
	for i := range b.Len() {
		select {
		case s.window <- struct{}{}:
		default:
			if err := s.w.Flush(); err != nil {
				return fmt.Errorf("relp %s: %w", s.addr, err)
			}
			select {
			case s.window <- struct{}{}:
			case <-s.dead:
				return s.err
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		txnr := s.next()
		s.mu.Lock()
		s.pending[txnr] = w
		s.mu.Unlock()
		if err := s.frame(txnr, "syslog", b.Event(i)); err != nil {
			return fmt.Errorf("relp %s: %w", s.addr, err)
		}
	}
	if err := s.w.Flush(); err != nil {
		return fmt.Errorf("relp %s: %w", s.addr, err)
	}
	return nil
}

// read takes the server's answers until the connection ends.
func (s *session) read(r *bufio.Reader) {
	for {
		a, err := readFrame(r)
		if err != nil {
			s.kill(fmt.Errorf("relp %s: the receiver closed the session: %w", s.addr, err))
			return
		}
		switch a.command {
		case "rsp":
			s.answered(a)
		case "serverclose":
			s.kill(fmt.Errorf("relp %s: the receiver closed the session", s.addr))
			return
		default:
			s.kill(fmt.Errorf("relp %s: unexpected command %q from the receiver", s.addr, a.command))
			return
		}
	}
}

// answered settles one frame; a batch is accepted when all its frames got
// 200.
func (s *session) answered(a answer) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if a.txnr == s.closeTxnr && s.closeTxnr != 0 {
		close(s.closed)
		return
	}
	w, ok := s.pending[a.txnr]
	if !ok {
		return
	}
	delete(s.pending, a.txnr)
	<-s.window
	if code := a.status(); code != 200 && w.err == nil {
		w.err = &ship.Error{Err: fmt.Errorf("relp %s: frame %d answered %q", s.addr, a.txnr, firstLine(a.data))}
	}
	w.left--
	if w.left == 0 {
		close(w.done)
	}
}

func (s *session) kill(err error) {
	s.once.Do(func() {
		s.err = err
		close(s.dead)
		s.tc.Close()
	})
}

// answer is one frame from the server.
type answer struct {
	txnr    int
	command string
	data    []byte
}

// readFrame reads TXNR SP COMMAND SP DATALEN [SP DATA] LF.
func readFrame(r *bufio.Reader) (answer, error) {
	var a answer
	txnr, err := readToken(r, ' ', 9)
	if err != nil {
		return a, err
	}
	if a.txnr, err = strconv.Atoi(txnr); err != nil {
		return a, fmt.Errorf("bad transaction number %q", txnr)
	}
	if a.command, err = readToken(r, ' ', 32); err != nil {
		return a, err
	}
	// DATALEN ends at SP (data follows) or LF (no data).
	var n int
	for digits := 0; ; digits++ {
		c, err := r.ReadByte()
		if err != nil {
			return a, err
		}
		if c == ' ' || c == '\n' {
			if digits == 0 {
				return a, errors.New("frame without a data length")
			}
			if c == '\n' {
				if n != 0 {
					return a, errors.New("frame cut short")
				}
				return a, nil
			}
			break
		}
		if c < '0' || c > '9' || digits > 9 {
			return a, fmt.Errorf("bad data length")
		}
		n = n*10 + int(c-'0')
	}
	if n > maxAnswerBytes {
		return a, fmt.Errorf("answer of %d bytes", n)
	}
	a.data = make([]byte, n+1)
	if _, err := io.ReadFull(r, a.data); err != nil {
		return a, err
	}
	if a.data[n] != '\n' {
		return a, errors.New("frame without its trailer")
	}
	a.data = a.data[:n]
	return a, nil
}

// readToken reads up to sep, at most max bytes.
func readToken(r *bufio.Reader, sep byte, max int) (string, error) {
	var b []byte
	for {
		c, err := r.ReadByte()
		if err != nil {
			return "", err
		}
		if c == sep {
			if len(b) == 0 {
				return "", errors.New("empty field in a frame")
			}
			return string(b), nil
		}
		if len(b) >= max {
			return "", fmt.Errorf("frame field longer than %d bytes", max)
		}
		b = append(b, c)
	}
}

// status is the code that starts an rsp's data ("200 OK").
func (a answer) status() int {
	if len(a.data) < 3 {
		return 0
	}
	n, err := strconv.Atoi(string(a.data[:3]))
	if err != nil {
		return 0
	}
	return n
}

// openAccepted checks the answer to our open: 200, and syslog among the
// commands the server takes.
func (a answer) openAccepted() error {
	if a.command != "rsp" || a.status() != 200 {
		return fmt.Errorf("refused: %s %q", a.command, firstLine(a.data))
	}
	for _, line := range strings.Split(string(a.data), "\n") {
		if commands, ok := strings.CutPrefix(line, "commands="); ok {
			if !slices.Contains(strings.Split(commands, ","), "syslog") {
				return fmt.Errorf("the receiver does not take syslog (%s)", line)
			}
		}
	}
	return nil
}

func firstLine(b []byte) string {
	for i, c := range b {
		if c == '\n' {
			return string(b[:i])
		}
	}
	return string(b)
}

var _ ship.Transport = (*Transport)(nil)
