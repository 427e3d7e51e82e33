// Package syslog ships batches to a syslog-over-TLS endpoint (RFC 5425):
// each event one octet-counted frame on one long-lived connection, the
// server's name checked against its certificate.
//
// Plain syslog has no acknowledgement, so "accepted" is defined here: a
// batch is accepted once every byte of it has been acknowledged by the
// receiver's TCP stack (the kernel's count of bytes acknowledged, TCP_INFO,
// has passed its end). A batch written into a connection that then dies is
// therefore never taken for delivered. What TCP cannot see, a receiver that
// dies with acknowledged data still unread, is covered by a window: the
// batches accepted over the last ResendWindow (at most ResendBytes of them)
// are sent again, first thing, on every new connection. After a failure
// the receiver may see those events twice; it never misses one. A window of
// 0 trades that cover for no duplicates.
package syslog

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/flowgate/flowgate/ship"
	"github.com/flowgate/flowgate/tlsfiles"
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
	// Files, when set, watches those files: new connections use renewed
	// ones. Nil reads them once.
	Files *tlsfiles.Set
	// DialTimeout bounds connecting and the TLS handshake.
	DialTimeout time.Duration
	// AckTimeout bounds the wait for a batch to be written and acknowledged.
	AckTimeout time.Duration
	// ResendWindow is how far back the accepted batches sent again on a
	// new connection go (0: none are), and ResendBytes how much of them.
	ResendWindow time.Duration
	ResendBytes  int
	// Log gets a line for each resend.
	Log *slog.Logger
}

// DefaultResendWindow covers what a receiver may hold unwritten when it
// dies: events TCP acknowledged, in its socket and its memory queue.
const DefaultResendWindow = time.Minute

// DefaultConfig is the configuration for a receiver at addr.
func DefaultConfig(addr, caFile string) Config {
	return Config{
		Addr:         addr,
		CAFile:       caFile,
		DialTimeout:  10 * time.Second,
		AckTimeout:   30 * time.Second,
		ResendWindow: DefaultResendWindow,
		ResendBytes:  4 << 20,
		Log:          slog.Default(),
	}
}

// Transport sends batches over one TLS connection, opened on demand and
// again after a failure (ship paces the retries).
type Transport struct {
	cfg   Config
	tls   *tls.Config
	files *tlsfiles.Client

	// mu orders writes on the connection and guards conn and recent.
	mu     sync.Mutex
	conn   *conn
	recent []accepted
	// recentBytes is the size of recent's frames.
	recentBytes int
}

// accepted is a batch's frames kept for resending.
type accepted struct {
	frames []byte
	events int
	at     time.Time
}

// New returns a transport; it connects when the first batch comes.
func New(cfg Config) (*Transport, error) {
	host, _, err := net.SplitHostPort(cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("syslog endpoint %q: %w", cfg.Addr, err)
	}
	files, err := cfg.Files.Client("syslog "+cfg.Addr, host, cfg.CAFile, cfg.CertFile, cfg.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("syslog endpoint %q: %w", cfg.Addr, err)
	}
	return &Transport{cfg: cfg, tls: files.Config(), files: files}, nil
}

// Send writes the batch as octet-counted frames and waits until the
// receiver's TCP stack acknowledged all of it.
func (t *Transport) Send(ctx context.Context, b *ship.Batch) error {
	frames := AppendFrames(nil, b)
	t.mu.Lock()
	c, err := t.connect(ctx)
	if err == nil {
		err = c.write(frames, t.cfg.AckTimeout)
	}
	if err != nil {
		t.drop(c, err)
		t.mu.Unlock()
		return err
	}
	end := c.written.Load()
	t.mu.Unlock()

	if err := c.waitAcked(ctx, end, t.cfg.AckTimeout); err != nil {
		t.mu.Lock()
		t.drop(c, err)
		t.mu.Unlock()
		return err
	}
	t.mu.Lock()
	t.remember(frames, b.Len())
	t.mu.Unlock()
	return nil
}

// AppendFrames appends each event of b as an RFC 6587 octet-counted frame.
func AppendFrames(dst []byte, b *ship.Batch) []byte {
	for i := range b.Len() {
		e := b.Event(i)
		dst = strconv.AppendInt(dst, int64(len(e)), 10)
		dst = append(dst, ' ')
		dst = append(dst, e...)
	}
	return dst
}

// connect returns the open connection or opens one, sending the window of
// recently accepted batches on it first. Called with mu held.
func (t *Transport) connect(ctx context.Context) (*conn, error) {
	if t.conn != nil {
		select {
		case <-t.conn.dead:
			t.drop(t.conn, t.conn.err)
		default:
			return t.conn, nil
		}
	}
	c, err := dial(ctx, t.cfg.Addr, t.tls, t.cfg.DialTimeout)
	if err != nil {
		return nil, err
	}
	t.conn = c
	now := time.Now()
	t.forget(now)
	if len(t.recent) == 0 {
		return c, nil
	}
	events := 0
	for _, a := range t.recent {
		events += a.events
	}
	t.cfg.Log.Info("syslog: new connection; sending again the batches accepted within the resend window, which the receiver may have lost",
		"endpoint", t.cfg.Addr, "events", events, "bytes", t.recentBytes, "batches", len(t.recent),
		"since", now.Sub(t.recent[0].at).Round(time.Millisecond), "resend_window", t.cfg.ResendWindow)
	for _, a := range t.recent {
		if err := c.write(a.frames, t.cfg.AckTimeout); err != nil {
			return c, err
		}
	}
	return c, nil
}

// drop closes c if it is the current connection. Called with mu held.
func (t *Transport) drop(c *conn, err error) {
	if c == nil {
		return
	}
	c.kill(err)
	if t.conn == c {
		t.conn = nil
	}
}

// remember keeps an accepted batch for resending. Called with mu held.
func (t *Transport) remember(frames []byte, events int) {
	if t.cfg.ResendWindow <= 0 {
		return
	}
	t.recent = append(t.recent, accepted{frames: frames, events: events, at: time.Now()})
	t.recentBytes += len(frames)
	t.forget(time.Now())
}

// forget drops what is older than the window, or past its size (the
// newest batch always stays). Called with mu held.
func (t *Transport) forget(now time.Time) {
	n := 0
	for n < len(t.recent) && (now.Sub(t.recent[n].at) > t.cfg.ResendWindow || (t.recentBytes > t.cfg.ResendBytes && n < len(t.recent)-1)) {
		t.recentBytes -= len(t.recent[n].frames)
		t.recent[n] = accepted{}
		n++
	}
	t.recent = t.recent[n:]
}

// Close closes the connection.
func (t *Transport) Close() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.drop(t.conn, errors.New("transport closed"))
	t.files.Close()
	return nil
}

// conn is one TLS connection and the count of bytes written to its socket
// (TLS records, handshake included), which TCP_INFO's count of bytes
// acknowledged is compared with.
type conn struct {
	tc      *tls.Conn
	raw     *net.TCPConn
	written atomic.Int64
	dead    chan struct{}
	once    sync.Once
	err     error
	// ackedAtEnd is the peer's count of bytes acknowledged when the
	// connection died, read before the socket closed: a batch the peer
	// took in full counts as accepted however late its waiter looks.
	ackedAtEnd int64
	// synAcked is the kernel's count once connected, before a byte was
	// written: Linux counts the SYN in it.
	synAcked int64
}

// counting counts the bytes written to a socket.
type counting struct {
	net.Conn
	n *atomic.Int64
}

func (c counting) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.n.Add(int64(n))
	return n, err
}

func dial(ctx context.Context, addr string, cfg *tls.Config, timeout time.Duration) (*conn, error) {
	d := net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("syslog %s: %w", addr, err)
	}
	c := &conn{raw: nc.(*net.TCPConn), dead: make(chan struct{})}
	if c.synAcked, err = c.acked(); err != nil {
		nc.Close()
		return nil, fmt.Errorf("syslog %s: %w", addr, err)
	}
	c.tc = tls.Client(counting{Conn: nc, n: &c.written}, cfg)
	hctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := c.tc.HandshakeContext(hctx); err != nil {
		nc.Close()
		return nil, fmt.Errorf("syslog %s: TLS: %w", addr, err)
	}
	go c.watch()
	return c, nil
}

// watch reads the connection, on which a syslog receiver sends nothing:
// its end means the receiver closed or the connection broke.
func (c *conn) watch() {
	var buf [512]byte
	for {
		if _, err := c.tc.Read(buf[:]); err != nil {
			c.kill(fmt.Errorf("syslog %s: the receiver closed the connection: %w", c.raw.RemoteAddr(), err))
			return
		}
	}
}

func (c *conn) kill(err error) {
	c.once.Do(func() {
		c.err = err
		c.ackedAtEnd, _ = c.acked()
		close(c.dead)
		c.tc.Close()
	})
}

func (c *conn) write(p []byte, timeout time.Duration) error {
	_ = c.tc.SetWriteDeadline(time.Now().Add(timeout))
	if _, err := c.tc.Write(p); err != nil {
		return fmt.Errorf("syslog %s: %w", c.raw.RemoteAddr(), err)
	}
	return nil
}

// waitAcked waits until the peer's TCP acknowledged the first end bytes
// written, polling TCP_INFO.
func (c *conn) waitAcked(ctx context.Context, end int64, timeout time.Duration) error {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	poll := 100 * time.Microsecond
	for {
		acked, err := c.acked()
		if err != nil {
			select {
			case <-c.dead: // closed under us: the count taken at its end says
				return c.ended(end)
			default:
			}
			return fmt.Errorf("syslog %s: %w", c.raw.RemoteAddr(), err)
		}
		if acked >= end {
			return nil
		}
		select {
		case <-time.After(poll):
		case <-c.dead:
			return c.ended(end)
		case <-deadline.C:
			return fmt.Errorf("syslog %s: %d bytes not acknowledged within %s", c.raw.RemoteAddr(), end-acked, timeout)
		case <-ctx.Done():
			return ctx.Err()
		}
		poll = min(2*poll, 20*time.Millisecond)
	}
}

// ended is waitAcked's answer once the connection died: accepted if the
// peer had acknowledged the first end bytes by then.
func (c *conn) ended(end int64) error {
	if c.ackedAtEnd >= end {
		return nil
	}
	return c.err
}

// acked is how many bytes written the peer's TCP acknowledged: the kernel's
// count less what it held before the first byte was written (the SYN, one
// byte on Linux); counted in, a batch whose last byte was not yet
// acknowledged would pass for accepted. Our FIN, the count's other extra
// byte, comes only after kill read it.
func (c *conn) acked() (int64, error) {
	rc, err := c.raw.SyscallConn()
	if err != nil {
		return 0, err
	}
	var info *unix.TCPInfo
	var ierr error
	if err := rc.Control(func(fd uintptr) { info, ierr = unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO) }); err != nil {
		return 0, err
	}
	if ierr != nil {
		return 0, ierr
	}
	return int64(info.Bytes_acked) - c.synAcked, nil
}

var _ ship.Transport = (*Transport)(nil)
