package flow

import mbits "math/bits"

// Sequence numbers tell what the exporter sent that never arrived: NetFlow
// v9 counts export packets (RFC 3954), v5 and IPFIX count records (IPFIX:
// data records, RFC 7011 section 3.1). Exporters disagree on the details:
// some count the records of the current message too (softflowd's IPFIX),
// some leave option records out. A stream keeps the conventions its
// numbers are consistent with, and measures gaps with what is left.
const (
	// maxSeqGap is the largest jump forward taken as loss; anything
	// further, and any jump back beyond maxSeqReorder, is the exporter
	// restarting, counted as nothing.
	maxSeqGap     = 1 << 22
	maxSeqReorder = 1 << 16
	// maxStreams bounds the streams a decoder follows.
	maxStreams = 1 << 16
)

// Counting conventions: the next sequence number is the last plus the
// records of the last message, or of this one (counting its own records);
// with or without option records.
const (
	convBeforeAll = iota
	convBeforeData
	convIncludingAll
	convIncludingData
	numConventions
	allConventions = 1<<numConventions - 1
)

// stream follows the sequence numbers of one exporter domain.
type stream struct {
	valid bool
	last  uint32
	// lastAll and lastData are the records of the last message, with and
	// without option records.
	lastAll, lastData uint32
	// conv is the set of conventions the numbers have been consistent with.
	conv uint8
}

// packet advances a stream that counts packets and returns how many were
// lost before this one.
func (s *stream) packet(seq uint32) uint32 {
	return s.advance(seq, [numConventions]uint32{s.last + 1}, 1, 0, 0)
}

// records advances a stream that counts records, given this message's
// records with (all) and without (data) option records, and returns how
// many records were lost before it.
func (s *stream) records(seq, all, data uint32) uint32 {
	return s.advance(seq, [numConventions]uint32{
		convBeforeAll:     s.last + s.lastAll,
		convBeforeData:    s.last + s.lastData,
		convIncludingAll:  s.last + all,
		convIncludingData: s.last + data,
	}, allConventions, all, data)
}

// advance checks seq against what each convention still in use expected.
func (s *stream) advance(seq uint32, expect [numConventions]uint32, conventions uint8, all, data uint32) uint32 {
	if !s.valid {
		*s = stream{valid: true, last: seq, lastAll: all, lastData: data, conv: conventions}
		return 0
	}
	var match uint8
	for i := range numConventions {
		if conventions&(1<<i) != 0 && expect[i] == seq {
			match |= 1 << i
		}
	}
	var lost uint32
	if s.conv&match != 0 {
		s.conv &= match
	} else {
		if s.conv == 0 {
			s.conv = conventions
		}
		gap := int32(seq - expect[mbits.TrailingZeros8(s.conv)])
		switch {
		case gap > 0 && gap < maxSeqGap:
			lost = uint32(gap)
		case gap < 0 && gap > -maxSeqReorder:
			if match != 0 {
				// Narrowed to the wrong convention by a coincidence.
				s.conv = match
				break
			}
			// Late or repeated: it was counted as lost, or is a copy.
			// Keep following the newest.
			return 0
		}
	}
	s.last, s.lastAll, s.lastData = seq, all, data
	return lost
}
