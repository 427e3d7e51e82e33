// Package udp receives datagrams for an intake: a dual-stack socket with a
// large receive buffer, read in batches (recvmmsg), each datagram handed to
// a callback with its sender and arrival time.
package udp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"syscall"
	"time"

	"golang.org/x/net/ipv6"
	"golang.org/x/sys/unix"
)

const (
	// DefaultReceiveBuffer holds about a second of a busy exporter: the
	// kernel's 208 KiB default loses datagrams in the first burst.
	DefaultReceiveBuffer = 32 << 20
	// maxDatagramBytes is the largest UDP payload.
	maxDatagramBytes = 65535
	batchSize        = 64
)

// Config says where to listen.
type Config struct {
	// Addr is host:port to bind; ":2055" is every address, IPv4 and IPv6.
	Addr string
	// ReceiveBuffer is the SO_RCVBUF asked for.
	ReceiveBuffer int
}

// Packet is one datagram. Data is valid only during the callback.
type Packet struct {
	Data     []byte
	From     netip.AddrPort
	Received time.Time
}

// Listener is a bound socket.
type Listener struct {
	conn *net.UDPConn
	pc   *ipv6.PacketConn
	log  *slog.Logger
}

// Listen binds the socket now, so that a port in use is an error at start.
func Listen(cfg Config, log *slog.Logger) (*Listener, error) {
	addr, err := net.ResolveUDPAddr("udp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("udp %s: %w", cfg.Addr, err)
	}
	conn, err := net.ListenUDP("udp", addr)
	if err != nil {
		return nil, fmt.Errorf("udp %s: %w", cfg.Addr, err)
	}
	l := &Listener{conn: conn, pc: ipv6.NewPacketConn(conn), log: log}
	want := cfg.ReceiveBuffer
	if want == 0 {
		want = DefaultReceiveBuffer
	}
	if got, err := setReceiveBuffer(conn, want); err != nil {
		log.Warn("cannot size the socket receive buffer", "addr", cfg.Addr, "err", err)
	} else if got < want {
		log.Warn("the kernel capped the socket receive buffer: bursts may be dropped; raise net.core.rmem_max or run with CAP_NET_ADMIN",
			"addr", cfg.Addr, "asked", want, "got", got)
	}
	return l, nil
}

// Addr is the bound address.
func (l *Listener) Addr() net.Addr { return l.conn.LocalAddr() }

// setReceiveBuffer asks for n bytes of receive buffer, bypassing
// net.core.rmem_max when allowed (CAP_NET_ADMIN), and returns what the
// kernel granted (it reports twice what it grants for bookkeeping).
func setReceiveBuffer(conn *net.UDPConn, n int) (int, error) {
	raw, err := conn.SyscallConn()
	if err != nil {
		return 0, err
	}
	var got int
	var serr error
	err = raw.Control(func(fd uintptr) {
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

// Run reads datagrams until ctx ends, calling handle for each.
func (l *Listener) Run(ctx context.Context, handle func(*Packet)) error {
	stop := context.AfterFunc(ctx, func() { l.conn.Close() })
	defer stop()
	msgs := make([]ipv6.Message, batchSize)
	for i := range msgs {
		msgs[i].Buffers = [][]byte{make([]byte, maxDatagramBytes)}
	}
	var p Packet
	for {
		n, err := l.pc.ReadBatch(msgs, 0)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return nil
			}
			if errors.Is(err, syscall.EINTR) || errors.Is(err, syscall.EAGAIN) {
				continue
			}
			return fmt.Errorf("udp %s: %w", l.conn.LocalAddr(), err)
		}
		now := time.Now()
		for i := range n {
			m := &msgs[i]
			ua, ok := m.Addr.(*net.UDPAddr)
			if !ok {
				continue
			}
			p.Data = m.Buffers[0][:m.N]
			p.From = ua.AddrPort()
			p.Received = now
			handle(&p)
		}
	}
}

// Close closes the socket.
func (l *Listener) Close() error { return l.conn.Close() }
