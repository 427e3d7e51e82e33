// Package udp receives datagrams for an intake: several SO_REUSEPORT
// sockets on one port, each with a large receive buffer, read in batches
// (recvmmsg) without an allocation per datagram, each datagram handed to a
// callback with its sender and arrival time. It counts what the kernel
// dropped on each socket (SO_RXQ_OVFL).
package udp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

const (
	// DefaultReceiveBuffer holds about a second of a busy exporter: the
	// kernel's 208 KiB default loses datagrams in the first burst.
	DefaultReceiveBuffer = 32 << 20
	// maxDefaultSockets bounds the default socket count: each socket may
	// hold a receive buffer's worth of datagrams in the kernel.
	maxDefaultSockets = 8
)

// DefaultSockets is the number of sockets of a port when the
// configuration does not say: one per CPU, up to maxDefaultSockets.
func DefaultSockets() int { return min(runtime.GOMAXPROCS(0), maxDefaultSockets) }

// Config says where to listen.
type Config struct {
	// Addr is host:port to bind; ":2055" is every address, IPv4 and IPv6.
	Addr string
	// ReceiveBuffer is the SO_RCVBUF asked for, per socket (0: the default).
	ReceiveBuffer int
	// Sockets is how many sockets share the port (0: DefaultSockets). The
	// kernel spreads senders over them by address and port, so one
	// exporter's datagrams stay in order on one socket.
	Sockets int
}

// Packet is one datagram. Data is valid only during the callback.
type Packet struct {
	Data []byte
	From netip.AddrPort
	// Received is when the batch it came in was read.
	Received time.Time
	// Socket is the index of the socket that read it.
	Socket int
}

// Listener is the bound sockets of one port.
type Listener struct {
	addr  string
	socks []*socket
	log   *slog.Logger
}

// socket is one of the port's sockets.
type socket struct {
	conn *net.UDPConn
	raw  syscall.RawConn
	// drops is what the kernel dropped on this socket for want of room,
	// from the SO_RXQ_OVFL counter the kernel attaches to datagrams; read
	// by the metrics while the reader updates it.
	drops atomic.Uint64
	// lastOvfl is the kernel's 32-bit counter as last seen (reader only).
	lastOvfl uint32
}

// Listen binds the sockets now, so that a port in use is an error at start.
func Listen(cfg Config, log *slog.Logger) (*Listener, error) {
	n := cfg.Sockets
	if n <= 0 {
		n = DefaultSockets()
	}
	want := cfg.ReceiveBuffer
	if want == 0 {
		want = DefaultReceiveBuffer
	}
	// SO_REUSEPORT would let a second flowgate (same user) silently share
	// the port: bind it alone first, so that a port in use is refused.
	probe, err := net.ListenPacket("udp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("udp %s: %w", cfg.Addr, err)
	}
	addr := probe.LocalAddr().String()
	bind := addr
	if host, _, err := net.SplitHostPort(cfg.Addr); err == nil && host == "" {
		// Keep the wildcard: the probe reports "[::]:port".
		_, port, _ := net.SplitHostPort(addr)
		bind = ":" + port
	}
	probe.Close()
	l := &Listener{addr: addr, log: log}
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
			if serr == nil {
				// Ask the kernel to attach its drop counter to datagrams.
				serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RXQ_OVFL, 1)
			}
		})
		return errors.Join(err, serr)
	}}
	capped := 0
	for i := range n {
		pc, err := lc.ListenPacket(context.Background(), "udp", bind)
		if err != nil {
			l.Close()
			return nil, fmt.Errorf("udp %s: socket %d of %d: %w", cfg.Addr, i+1, n, err)
		}
		conn := pc.(*net.UDPConn)
		raw, err := conn.SyscallConn()
		if err != nil {
			conn.Close()
			l.Close()
			return nil, fmt.Errorf("udp %s: %w", cfg.Addr, err)
		}
		l.socks = append(l.socks, &socket{conn: conn, raw: raw})
		if got, err := setReceiveBuffer(raw, want); err != nil {
			log.Warn("cannot size the socket receive buffer", "addr", cfg.Addr, "err", err)
		} else if got < want {
			capped = got
		}
	}
	if n > 1 {
		var serr error
		if err := l.socks[0].raw.Control(func(fd uintptr) { serr = steerBySource(int(fd), n) }); err != nil || serr != nil {
			log.Warn("cannot keep each exporter on one socket: an exporter changing source port may see datagrams reordered",
				"addr", cfg.Addr, "err", errors.Join(err, serr))
		}
	}
	if capped > 0 {
		log.Warn("the kernel capped the socket receive buffer: bursts may be dropped; raise net.core.rmem_max or run with CAP_NET_ADMIN",
			"addr", cfg.Addr, "asked", want, "got", capped, "sockets", n)
	}
	return l, nil
}

// Addr is the bound address.
func (l *Listener) Addr() net.Addr { return l.socks[0].conn.LocalAddr() }

// Sockets is the number of sockets of the port.
func (l *Listener) Sockets() int { return len(l.socks) }

// Drops is what the kernel dropped so far on socket i because its receive
// buffer was full. The kernel reports it with the datagrams that follow a
// drop, so it is current as long as datagrams arrive.
func (l *Listener) Drops(i int) uint64 { return l.socks[i].drops.Load() }

// setReceiveBuffer asks for n bytes of receive buffer, bypassing
// net.core.rmem_max when allowed (CAP_NET_ADMIN), and returns what the
// kernel granted (it reports twice what it grants for bookkeeping).
func setReceiveBuffer(raw syscall.RawConn, n int) (int, error) {
	var got int
	var serr error
	err := raw.Control(func(fd uintptr) {
		if unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, n) != nil {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF, n)
		}
		v, e := unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF)
		if serr == nil {
			serr = e
		}
		got = v / 2
	})
	if err != nil {
		return 0, err
	}
	return got, serr
}

// drainWindow bounds the reading of what the sockets hold at a stop.
const drainWindow = 100 * time.Millisecond

// Run reads every socket until ctx ends, calling handle for each datagram.
// handle is called from one goroutine per socket: concurrently for
// datagrams of different sockets, in arrival order within one.
//
// When ctx ends, what the kernel already holds for the sockets was sent
// before the stop: it is read for drainWindow at most, then the sockets
// close.
func (l *Listener) Run(ctx context.Context, handle func(*Packet)) error {
	stop := context.AfterFunc(ctx, func() {
		end := time.Now().Add(drainWindow)
		for _, s := range l.socks {
			if s.conn.SetReadDeadline(end) != nil {
				_ = s.conn.Close()
			}
		}
	})
	defer stop()
	defer l.Close()
	var wg sync.WaitGroup
	errs := make([]error, len(l.socks))
	for i, s := range l.socks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = s.run(i, handle)
			if errs[i] != nil {
				// One socket failing stops the port: its share of the
				// exporters would go unread.
				l.Close()
			}
		}()
	}
	wg.Wait()
	if ctx.Err() != nil {
		return nil
	}
	return errors.Join(errs...)
}

// run reads one socket until it is closed.
func (s *socket) run(index int, handle func(*Packet)) error {
	b := newBatch()
	p := Packet{Socket: index}
	for {
		n, err := b.read(s.raw)
		if err != nil {
			// Closed, or drained after the end of Run's context.
			if errors.Is(err, net.ErrClosed) || errors.Is(err, os.ErrDeadlineExceeded) {
				return nil
			}
			return fmt.Errorf("udp %s: %w", s.conn.LocalAddr(), err)
		}
		p.Received = time.Now()
		for i := range n {
			if ovfl, ok := b.dropCounter(i); ok {
				s.drops.Add(uint64(ovfl - s.lastOvfl))
				s.lastOvfl = ovfl
			}
			var ok bool
			if p.From, ok = b.from(i); !ok {
				continue
			}
			p.Data = b.data(i)
			handle(&p)
		}
	}
}

// Close closes the sockets.
func (l *Listener) Close() error {
	var errs []error
	for _, s := range l.socks {
		if err := s.conn.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
