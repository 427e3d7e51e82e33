package udp

import (
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// skfNetOff is SKF_NET_OFF (-0x100000): a classic BPF load at this offset
// plus n reads byte n of the network header.
const skfNetOff = 0xfff00000

// steerBySource makes the kernel pick the socket of a datagram by its
// source address alone: its default hash of address and port would move
// an exporter that changes source port (a restart) to another socket,
// where its datagrams could be read before those still queued on the old
// one. One exporter, one socket: its datagrams stay in order.
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
