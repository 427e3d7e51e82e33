package format

// AppendPrintable appends an event or a received frame for a debug line: CR, LF and other
// control bytes are escaped (\r, \n, \xHH), so one event stays one line.
func AppendPrintable(dst, event []byte) []byte {
	const hex = "0123456789abcdef"
	for _, c := range event {
		switch {
		case c == '\n':
			dst = append(dst, '\\', 'n')
		case c == '\r':
			dst = append(dst, '\\', 'r')
		case c < ' ' || c == 127:
			dst = append(dst, '\\', 'x', hex[c>>4], hex[c&0xf])
		default:
			dst = append(dst, c)
		}
	}
	return dst
}
