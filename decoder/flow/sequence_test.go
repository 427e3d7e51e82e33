package flow

import (
	"testing"
)

func TestSequenceRecords(t *testing.T) {
	type msg struct{ seq, all, data, lost uint32 }
	for _, tc := range []struct {
		name string
		msgs []msg
	}{
		{"RFC 7011: records before this message", []msg{
			{0, 3, 2, 0}, {3, 7, 7, 0}, {10, 5, 5, 0}, {15, 1, 1, 0}, {21, 2, 2, 5}, {23, 4, 4, 0},
		}},
		{"option records left out", []msg{
			{0, 3, 2, 0}, {2, 7, 7, 0}, {9, 6, 5, 0}, {14, 2, 2, 0}, {26, 1, 1, 10},
		}},
		{"records of this message included (softflowd)", []msg{
			{19, 20, 19, 0}, {46, 27, 27, 0}, {50, 4, 4, 0}, {60, 3, 3, 7}, {65, 5, 5, 0},
		}},
		{"wrapping around", []msg{
			{0xfffffff0, 10, 10, 0}, {0xfffffffa, 10, 10, 0}, {4, 10, 10, 0}, {20, 10, 10, 6},
		}},
		{"late and repeated messages", []msg{
			{100, 10, 10, 0}, {110, 10, 10, 0}, {130, 10, 10, 10}, {120, 10, 10, 0}, {130, 10, 10, 0}, {140, 10, 10, 0},
		}},
		{"exporter restart", []msg{
			{1_000_000, 10, 10, 0}, {1_000_010, 10, 10, 0}, {0, 10, 10, 0}, {10, 10, 10, 0}, {25, 10, 10, 5},
		}},
		{"jump too far to be loss", []msg{
			{5, 10, 10, 0}, {15, 10, 10, 0}, {15 + maxSeqGap + 10, 10, 10, 0}, {25 + maxSeqGap + 10, 10, 10, 0},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var s stream
			for i, m := range tc.msgs {
				if got := s.records(m.seq, m.all, m.data); got != m.lost {
					t.Fatalf("message %d (seq %d): lost %d, want %d", i, m.seq, got, m.lost)
				}
			}
		})
	}
}

func TestSequencePackets(t *testing.T) {
	for _, msgs := range [][]struct{ seq, lost uint32 }{
		{{7, 0}, {8, 0}, {9, 0}, {12, 2}, {11, 0}, {13, 0}, {14, 0}},
		{{0xfffffffe, 0}, {0xffffffff, 0}, {0, 0}, {1, 0}, {3, 1}},
	} {
		var s stream
		for i, m := range msgs {
			if got := s.packet(m.seq); got != m.lost {
				t.Fatalf("message %d (seq %d): lost %d, want %d", i, m.seq, got, m.lost)
			}
		}
	}
}

func TestSequenceLossInDatagrams(t *testing.T) {
	d := NewDecoder(NewTemplates())
	tm := set(setV9Template, tmpl(256, f(ieSourceTransportPort, 2)))
	var lost uint64
	for _, seq := range []uint32{1, 2, 5, 6} {
		_, res := decodeAll(t, d, exporterA, msg{version: 9, seq: seq, sets: [][]byte{tm, set(256, u16(1))}}.bytes())
		lost += res.LostDatagrams
	}
	if lost != 2 {
		t.Fatalf("v9: %d datagrams lost, want 2", lost)
	}
	// IPFIX: a data set without its template cannot be counted; the next
	// datagram starts over rather than reporting a loss.
	var res Result
	lost = 0
	for _, m := range []msg{
		{version: 10, seq: 0, sets: [][]byte{set(400, u16(1))}},
		{version: 10, seq: 1, sets: [][]byte{set(setIPFIXTemplate, tmpl(400, f(ieSourceTransportPort, 2))), set(400, cat(u16(1), u16(2)))}},
		{version: 10, seq: 3, sets: [][]byte{set(400, u16(1))}},
		{version: 10, seq: 7, sets: [][]byte{set(400, u16(1))}},
	} {
		_, res = decodeAll(t, d, exporterB, m.bytes())
		lost += res.LostRecords
	}
	if lost != 3 {
		t.Fatalf("IPFIX: %d records lost, want 3", lost)
	}
}
