package ship

import "github.com/flowgate/flowgate/buffer"

// takenWindow bounds the stream sequences a shipper remembers. A copy
// delivered again comes within the consumer's prefetch (at most 512
// messages) of the first: the store delivers again only what waited
// AckWait, and the copies queue behind what the prefetch holds.
const takenWindow = 4096

// taken remembers the stream sequences of the last messages a shipper
// took, to skip a second copy of one of them. While every batch in flight
// is retried (an output down), the messages the consumer prefetched wait
// unacknowledged; past AckWait the store delivers them again, and both
// copies would be shipped. The first copy's acknowledgement, once shipped,
// removes the message whichever copy it came with.
type taken struct {
	seqs map[uint64]struct{}
	ring []uint64
	next int
}

func newTaken() *taken {
	return &taken{seqs: make(map[uint64]struct{}, takenWindow), ring: make([]uint64, 0, takenWindow)}
}

// again says whether m is a second copy of a message taken before; if
// not, it remembers m.
func (t *taken) again(m buffer.Msg) bool {
	md, err := m.Metadata()
	if err != nil {
		return false // not from a consumer (a test's message): nothing to compare
	}
	seq := md.Sequence.Stream
	if md.NumDelivered > 1 {
		if _, ok := t.seqs[seq]; ok {
			return true
		}
	}
	if len(t.ring) < takenWindow {
		t.ring = append(t.ring, seq)
	} else {
		delete(t.seqs, t.ring[t.next])
		t.ring[t.next] = seq
		t.next = (t.next + 1) % takenWindow
	}
	t.seqs[seq] = struct{}{}
	return false
}
