package udp

import (
	"encoding/binary"
	"net/netip"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// skfNetOff is SKF_NET_OFF (-0x100000): a classic BPF load at this offset
// plus n reads byte n of the network header.
const skfNetOff = 0xfff00000

// mixer spreads source addresses over the sockets (Fibonacci hashing):
// taken modulo the socket count as they are, routers numbered alike (every
// site's 10.x.y.1) would all land on one socket.
const mixer = 0x9e3779b1

// SocketOf is the socket, among n, that the kernel gives the datagrams of
// addr to: what the steering program computes, so that a reader knows
// which exporters are its own.
func SocketOf(addr netip.Addr, n int) int {
	var h uint32
	if addr.Is4() || addr.Is4In6() {
		b := addr.Unmap().As4()
		h = binary.BigEndian.Uint32(b[:])
	} else {
		b := addr.As16()
		for i := 0; i < 16; i += 4 {
			h ^= binary.BigEndian.Uint32(b[i:])
		}
	}
	return int((h * mixer >> 16) % uint32(max(n, 1)))
}

// steerBySource makes the kernel pick the socket of a datagram by its
// source address alone (SocketOf): its default hash of address and port
// would move an exporter that changes source port (a restart) to another
// socket, where its datagrams could be read before those still queued on
// the old one. One exporter, one socket: its datagrams stay in order.
func steerBySource(fd int, sockets int) error {
	prog, err := bpf.Assemble([]bpf.Instruction{
		bpf.LoadAbsolute{Off: skfNetOff, Size: 1},
		bpf.ALUOpConstant{Op: bpf.ALUOpShiftRight, Val: 4}, // IP version
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: 6, SkipTrue: 2},
		bpf.LoadAbsolute{Off: skfNetOff + 12, Size: 4}, // IPv4 source
		bpf.Jump{Skip: 10},
		// IPv6 source: the xor of its four words.
		bpf.LoadAbsolute{Off: skfNetOff + 8, Size: 4},
		bpf.TAX{},
		bpf.LoadAbsolute{Off: skfNetOff + 12, Size: 4},
		bpf.ALUOpX{Op: bpf.ALUOpXor},
		bpf.TAX{},
		bpf.LoadAbsolute{Off: skfNetOff + 16, Size: 4},
		bpf.ALUOpX{Op: bpf.ALUOpXor},
		bpf.TAX{},
		bpf.LoadAbsolute{Off: skfNetOff + 20, Size: 4},
		bpf.ALUOpX{Op: bpf.ALUOpXor},
		bpf.ALUOpConstant{Op: bpf.ALUOpMul, Val: mixer},
		bpf.ALUOpConstant{Op: bpf.ALUOpShiftRight, Val: 16},
		bpf.ALUOpConstant{Op: bpf.ALUOpMod, Val: uint32(sockets)},
		bpf.RetA{},
	})
	if err != nil {
		return err
	}
	filter := make([]unix.SockFilter, len(prog))
	for i, ins := range prog {
		filter[i] = unix.SockFilter{Code: ins.Op, Jt: ins.Jt, Jf: ins.Jf, K: ins.K}
	}
	return unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_REUSEPORT_CBPF,
		&unix.SockFprog{Len: uint16(len(filter)), Filter: &filter[0]})
}
