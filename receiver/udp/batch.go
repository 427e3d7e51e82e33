package udp

import (
	"encoding/binary"
	"net/netip"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

const (
	// batchSize is how many datagrams one recvmmsg may return.
	batchSize = 64
	// maxDatagramBytes is the largest UDP payload. The buffers are
	// allocated once; pages the kernel never writes cost no memory.
	maxDatagramBytes = 65535
	nameBytes        = unix.SizeofSockaddrInet6
	controlBytes     = 64
)

// mmsghdr is struct mmsghdr: a message header and the length received.
// Go lays it out as C does on 32- and 64-bit Linux.
type mmsghdr struct {
	hdr unix.Msghdr
	n   uint32
}

// batch is the memory of one socket's recvmmsg calls, set up once so that
// reading allocates nothing.
type batch struct {
	msgs    [batchSize]mmsghdr
	iovs    [batchSize]unix.Iovec
	names   [batchSize][nameBytes]byte
	control [batchSize][controlBytes]byte
	bufs    []byte
	// readFn is the callback handed to RawConn.Read, made once.
	readFn func(fd uintptr) bool
	n      int
	err    error
}

func newBatch() *batch {
	b := &batch{bufs: make([]byte, batchSize*maxDatagramBytes)}
	for i := range b.msgs {
		b.iovs[i].Base = &b.bufs[i*maxDatagramBytes]
		b.iovs[i].SetLen(maxDatagramBytes)
		h := &b.msgs[i].hdr
		h.Name = &b.names[i][0]
		h.Iov = &b.iovs[i]
		h.Iovlen = 1
		h.Control = &b.control[i][0]
	}
	b.readFn = func(fd uintptr) bool {
		for i := range b.msgs {
			h := &b.msgs[i].hdr
			h.Namelen = nameBytes
			h.SetControllen(controlBytes)
			h.Flags = 0
		}
		for {
			r, _, errno := unix.Syscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&b.msgs[0])), batchSize, 0, 0, 0)
			switch errno {
			case 0:
				b.n, b.err = int(r), nil
				return true
			case unix.EINTR:
				continue
			case unix.EAGAIN:
				// Nothing to read: the runtime's poller waits for more.
				return false
			default:
				b.n, b.err = 0, errno
				return true
			}
		}
	}
	return b
}

// read waits for datagrams and reads up to batchSize of them.
func (b *batch) read(raw syscall.RawConn) (int, error) {
	if err := raw.Read(b.readFn); err != nil {
		return 0, err
	}
	return b.n, b.err
}

// data is datagram i.
func (b *batch) data(i int) []byte {
	n := min(int(b.msgs[i].n), maxDatagramBytes)
	return b.bufs[i*maxDatagramBytes : i*maxDatagramBytes+n]
}

// from is the sender of datagram i.
func (b *batch) from(i int) (netip.AddrPort, bool) {
	sa := &b.names[i]
	port := binary.BigEndian.Uint16(sa[2:])
	switch binary.NativeEndian.Uint16(sa[:]) {
	case unix.AF_INET:
		return netip.AddrPortFrom(netip.AddrFrom4([4]byte(sa[4:8])), port), true
	case unix.AF_INET6:
		return netip.AddrPortFrom(netip.AddrFrom16([16]byte(sa[8:24])), port), true
	}
	return netip.AddrPort{}, false
}

// dropCounter is the kernel's count of datagrams the socket dropped, as
// attached to datagram i (SO_RXQ_OVFL): only once there have been drops.
func (b *batch) dropCounter(i int) (uint32, bool) {
	c := b.control[i][:b.msgs[i].hdr.Controllen]
	for len(c) >= unix.SizeofCmsghdr {
		h := (*unix.Cmsghdr)(unsafe.Pointer(&c[0]))
		if h.Len < unix.SizeofCmsghdr || int(h.Len) > len(c) {
			return 0, false
		}
		if h.Level == unix.SOL_SOCKET && h.Type == unix.SO_RXQ_OVFL && int(h.Len) >= unix.CmsgLen(4) {
			return binary.NativeEndian.Uint32(c[unix.CmsgLen(0):]), true
		}
		c = c[min(unix.CmsgSpace(int(h.Len)-unix.CmsgLen(0)), len(c)):]
	}
	return 0, false
}
