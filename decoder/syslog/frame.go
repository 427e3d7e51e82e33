// Package syslog decodes syslog as it arrives from the network: RFC 6587
// framing of TCP and TLS streams, detected frame by frame (octet counting,
// or a frame ended by LF, CRLF or NUL), bounded in size, and the RFC 5424
// and RFC 3164 headers of each message. It does no I/O of its own beyond
// reading the stream it is given, and never fails on what it is sent: a
// header it cannot read leaves the whole frame as the message.
package syslog

import (
	"errors"
	"io"
)

// MaxFrameBytes is the largest event kept, the intake's own limit: a longer
// frame is dropped whole (and reported), never cut into pieces.
const MaxFrameBytes = 250 << 10

const (
	// maxCountDigits bounds an octet count: more digits cannot be one.
	maxCountDigits = 9
	// initialBufBytes is what a connection starts with; the buffer grows
	// to a full frame only for senders that send long ones.
	initialBufBytes = 16 << 10
	maxBufBytes     = MaxFrameBytes + maxCountDigits + 2
)

var (
	// ErrFrameTooLong reports a frame longer than MaxFrameBytes, which was
	// skipped; the stream goes on with the next frame.
	ErrFrameTooLong = errors.New("syslog frame longer than 250 KiB, dropped")
	// ErrTruncated reports an octet-counted frame cut short by the end of
	// the stream.
	ErrTruncated = errors.New("syslog frame cut short by the end of the stream")
)

// Framer splits a stream into frames. The framing is decided anew for each
// frame: a frame that starts with a decimal length and a space is octet
// counted, any other ends at the first LF or NUL (a CR before the LF is
// dropped). Empty frames are skipped.
type Framer struct {
	r          io.Reader
	buf        []byte
	start, end int
	// discard counts bytes of an oversize octet-counted frame still to
	// skip; skipLine skips an oversize LF-ended frame up to its end.
	discard  int
	skipLine bool
	// scanned is how far from start an LF-ended frame is known to have no
	// end yet, so that a slow sender costs no rescans.
	scanned int
	err     error
}

// NewFramer reads frames from r.
func NewFramer(r io.Reader) *Framer {
	return &Framer{r: r, buf: make([]byte, initialBufBytes)}
}

// Reset reads from r anew, keeping the buffer: one framer can serve
// connection after connection.
func (f *Framer) Reset(r io.Reader) {
	f.r, f.start, f.end, f.discard, f.skipLine, f.scanned, f.err = r, 0, 0, 0, false, 0, nil
}

// Next returns the next frame, without its framing. The frame is valid
// until the next call. ErrFrameTooLong and ErrTruncated report a frame that
// was dropped: call Next again for the following one. Any other error is
// the reader's (io.EOF at the end of the stream); after a timeout Next may
// be called again, nothing read is lost.
func (f *Framer) Next() ([]byte, error) {
	for {
		frame, err, ok := f.frame()
		if ok {
			return frame, err
		}
		if f.err != nil {
			return f.atEnd()
		}
		if err := f.fill(); err != nil {
			f.err = err
			if !isTimeout(err) {
				continue // let frame() and atEnd() see what is left
			}
			f.err = nil
			return nil, err
		}
	}
}

// atEnd handles the end of the stream: a last LF-style frame without its
// trailer is still a frame.
func (f *Framer) atEnd() ([]byte, error) {
	err := f.err
	rest := f.buf[f.start:f.end]
	f.start, f.end = 0, 0
	switch {
	case f.discard > 0 || len(rest) == 0 || f.skipLine:
		f.discard, f.skipLine = 0, false
		return nil, err
	case isCounted(rest) != 0:
		return nil, ErrTruncated
	}
	return trimFrame(rest), nil
}

// frame extracts a frame from what is buffered; ok is false when more
// input is needed.
func (f *Framer) frame() (frame []byte, err error, ok bool) {
	for {
		if f.discard > 0 {
			n := min(f.discard, f.end-f.start)
			f.discard -= n
			f.start += n
			if f.discard > 0 {
				return nil, nil, false
			}
		}
		data := f.buf[f.start:f.end]
		if f.skipLine {
			i := indexEnd(data)
			if i < 0 {
				f.start = f.end
				return nil, nil, false
			}
			f.start += i + 1
			f.skipLine = false
			continue
		}
		// Separators between frames (an LF after an octet-counted frame,
		// blank lines) are not frames.
		skip := 0
		for skip < len(data) && (data[skip] == '\n' || data[skip] == '\r' || data[skip] == 0) {
			skip++
		}
		f.start += skip
		data = data[skip:]
		if len(data) == 0 {
			return nil, nil, false
		}
		switch digits := isCounted(data); {
		case digits > 0:
			n := parseCount(data[:digits])
			body := data[digits+1:]
			if n > MaxFrameBytes {
				f.start += digits + 1
				f.discard = n
				return nil, ErrFrameTooLong, true
			}
			if len(body) < n {
				return nil, nil, false
			}
			f.start += digits + 1 + n
			if n == 0 {
				continue
			}
			return body[:n], nil, true
		case digits < 0:
			return nil, nil, false // digits so far: wait to see what follows
		}
		i := indexEnd(data[f.scanned:])
		if i < 0 {
			if len(data) > MaxFrameBytes {
				f.start, f.scanned = f.end, 0
				f.skipLine = true
				return nil, ErrFrameTooLong, true
			}
			f.scanned = len(data)
			return nil, nil, false
		}
		i += f.scanned
		f.scanned = 0
		f.start += i + 1
		if fr := trimFrame(data[:i]); len(fr) > MaxFrameBytes {
			return nil, ErrFrameTooLong, true
		} else if len(fr) > 0 {
			return fr, nil, true
		}
	}
}

// isCounted says whether data starts with an octet count: the number of
// digits before the space, 0 when it does not, -1 when only digits are
// buffered so far.
func isCounted(data []byte) int {
	if len(data) == 0 || data[0] < '1' || data[0] > '9' {
		return 0
	}
	for i := 1; i < len(data); i++ {
		switch c := data[i]; {
		case c == ' ':
			return i
		case c < '0' || c > '9' || i >= maxCountDigits:
			return 0
		}
	}
	if len(data) > maxCountDigits {
		return 0
	}
	return -1
}

func parseCount(digits []byte) int {
	n := 0
	for _, c := range digits {
		n = n*10 + int(c-'0')
	}
	return n
}

// indexEnd finds the LF or NUL that ends a frame.
func indexEnd(data []byte) int {
	for i, c := range data {
		if c == '\n' || c == 0 {
			return i
		}
	}
	return -1
}

// trimFrame drops the CR of a CRLF ending.
func trimFrame(b []byte) []byte {
	for len(b) > 0 && b[len(b)-1] == '\r' {
		b = b[:len(b)-1]
	}
	return b
}

// fill reads once into the buffer, making room first.
func (f *Framer) fill() error {
	if f.start > 0 && (f.end == len(f.buf) || f.start == f.end) {
		copy(f.buf, f.buf[f.start:f.end])
		f.end -= f.start
		f.start = 0
	}
	if f.end == len(f.buf) {
		// Full of one frame not yet complete: grow, up to a full frame.
		// An oversize frame is found by frame() before this point.
		size := min(2*len(f.buf), maxBufBytes)
		if size == len(f.buf) {
			return errors.New("syslog framer: buffer full") // unreachable by the bounds above
		}
		nb := make([]byte, size)
		copy(nb, f.buf[:f.end])
		f.buf = nb
	}
	n, err := f.r.Read(f.buf[f.end:])
	f.end += n
	if n > 0 && err != nil && !isTimeout(err) {
		// Keep the data; report the error on the next read.
		f.err = err
		return nil
	}
	if n == 0 && err == nil {
		return nil
	}
	return err
}

// isTimeout says whether err is a deadline passing, after which reading
// may go on.
func isTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}
