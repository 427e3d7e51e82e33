package pb

import "encoding/binary"

// elementHeaderBytes is the id, enterprise number and length before each
// value of Flow.elements.
const elementHeaderBytes = 8

// MaxElementBytes is the longest value an element can carry (IPFIX's
// variable-length encoding stops there).
const MaxElementBytes = 0xffff

// AppendElement appends one element, in the layout of Flow.elements, to
// dst. A value longer than MaxElementBytes is cut to it.
func AppendElement(dst []byte, pen uint32, id uint16, value []byte) []byte {
	if len(value) > MaxElementBytes {
		value = value[:MaxElementBytes]
	}
	dst = binary.BigEndian.AppendUint16(dst, id)
	dst = binary.BigEndian.AppendUint32(dst, pen)
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(value)))
	return append(dst, value...)
}

// NextElement reads the first element of b, in the layout of
// Flow.elements; ok is false when b holds no whole element (an empty b,
// or bytes that are not elements: a record from a corrupt message).
func NextElement(b []byte) (pen uint32, id uint16, value, rest []byte, ok bool) {
	if len(b) < elementHeaderBytes {
		return 0, 0, nil, nil, false
	}
	n := int(binary.BigEndian.Uint16(b[6:]))
	if len(b)-elementHeaderBytes < n {
		return 0, 0, nil, nil, false
	}
	id, pen = binary.BigEndian.Uint16(b), binary.BigEndian.Uint32(b[2:])
	end := elementHeaderBytes + n
	return pen, id, b[elementHeaderBytes:end], b[end:], true
}
