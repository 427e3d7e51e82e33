package syslog

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

// frames reads every frame of r, recording dropped ones as "<too long>" or
// "<truncated>".
func frames(t *testing.T, r io.Reader) []string {
	t.Helper()
	f := NewFramer(r)
	var got []string
	for range 10_000 {
		fr, err := f.Next()
		switch {
		case errors.Is(err, ErrFrameTooLong):
			got = append(got, "<too long>")
		case errors.Is(err, ErrTruncated):
			got = append(got, "<truncated>")
		case err == io.EOF:
			return got
		case err != nil:
			t.Fatalf("Next: %v", err)
		default:
			got = append(got, string(fr))
		}
	}
	t.Fatal("framer does not end")
	return nil
}

func TestFramer(t *testing.T) {
	long := strings.Repeat("x", MaxFrameBytes)
	tooLong := long + "y"
	for _, tc := range []struct {
		name string
		in   string
		want []string
	}{
		{"lf", "<13>a\n<13>b\n", []string{"<13>a", "<13>b"}},
		{"crlf", "<13>a\r\n<13>b\r\n", []string{"<13>a", "<13>b"}},
		{"nul", "<13>a\x00<13>b\x00", []string{"<13>a", "<13>b"}},
		{"octet counted", "5 <13>a5 <13>b", []string{"<13>a", "<13>b"}},
		{"octet counted keeps newlines", "11 <13>a\nb\r\nc\x00", []string{"<13>a\nb\r\nc\x00"}},
		{"mixed per frame", "5 <13>a<13>b\n7 <13>c\nd<13>e\r\n", []string{"<13>a", "<13>b", "<13>c\nd", "<13>e"}},
		{"lf after octet count", "5 <13>a\n5 <13>b\n", []string{"<13>a", "<13>b"}},
		{"blank lines skipped", "\n\r\n<13>a\n\n", []string{"<13>a"}},
		{"digits without space are a message", "2024-01-01 x\n", []string{"2024-01-01 x"}},
		{"last frame without trailer", "<13>a\n<13>b", []string{"<13>a", "<13>b"}},
		{"octet count cut short", "5 <13>a10 <13>", []string{"<13>a", "<truncated>"}},
		{"longest frame kept", long + "\n<13>b\n", []string{long, "<13>b"}},
		{"longest counted frame kept", "256000 " + long + "<13>b\n", []string{long, "<13>b"}},
		{"too long lf frame dropped whole", tooLong + "\n<13>b\n", []string{"<too long>", "<13>b"}},
		{"too long counted frame dropped whole", "256001 " + tooLong + "<13>b\n", []string{"<too long>", "<13>b"}},
		{"too long at the end", tooLong, []string{"<too long>"}},
		{"no zero count", "0 <13>a\n", []string{"0 <13>a"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, r := range []struct {
				name string
				r    io.Reader
			}{
				{"whole", strings.NewReader(tc.in)},
				{"byte by byte", iotest.OneByteReader(strings.NewReader(tc.in))},
				{"data with EOF", iotest.DataErrReader(strings.NewReader(tc.in))},
			} {
				got := frames(t, r.r)
				if !equal(got, tc.want) {
					t.Errorf("%s: got %q, want %q", r.name, short(got), short(tc.want))
				}
			}
		})
	}
}

// timeoutReader returns a timeout error between chunks, as a connection
// with a read deadline does.
type timeoutReader struct {
	chunks []string
	gap    bool
}

type timeoutErr struct{}

func (timeoutErr) Error() string { return "i/o timeout" }
func (timeoutErr) Timeout() bool { return true }

func (r *timeoutReader) Read(p []byte) (int, error) {
	if r.gap {
		r.gap = false
		return 0, timeoutErr{}
	}
	if len(r.chunks) == 0 {
		return 0, io.EOF
	}
	n := copy(p, r.chunks[0])
	r.chunks[0] = r.chunks[0][n:]
	if r.chunks[0] == "" {
		r.chunks = r.chunks[1:]
		r.gap = true
	}
	return n, nil
}

func TestFramerResumesAfterTimeout(t *testing.T) {
	f := NewFramer(&timeoutReader{chunks: []string{"11 <13>a", "bcdefg<13>h", "ij\n"}})
	var got []string
	timeouts := 0
	for {
		fr, err := f.Next()
		if err == io.EOF {
			break
		}
		if isTimeout(err) {
			timeouts++
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, string(fr))
	}
	if want := []string{"<13>abcdefg", "<13>hij"}; !equal(got, want) || timeouts == 0 {
		t.Fatalf("got %q after %d timeouts, want %q", got, timeouts, want)
	}
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func short(s []string) []string {
	out := make([]string, len(s))
	for i, v := range s {
		if len(v) > 40 {
			v = v[:20] + "..." + v[len(v)-10:]
		}
		out[i] = v
	}
	return out
}

// FuzzFramer checks that framing never panics, never returns a frame
// longer than the bound, and loses no byte of a well-framed stream.
func FuzzFramer(f *testing.F) {
	f.Add([]byte("5 <13>a<13>b\n7 <13>c\nd<13>e\r\n"))
	f.Add([]byte("\x00\n12 34 56\n999999999 x"))
	f.Fuzz(func(t *testing.T, data []byte) {
		fr := NewFramer(iotest.OneByteReader(bytes.NewReader(data)))
		for i := 0; ; i++ {
			frame, err := fr.Next()
			if err == io.EOF {
				return
			}
			if err != nil && !errors.Is(err, ErrFrameTooLong) && !errors.Is(err, ErrTruncated) {
				t.Fatal(err)
			}
			if len(frame) > MaxFrameBytes || i > len(data) {
				t.Fatalf("frame of %d bytes, %d frames from %d bytes", len(frame), i, len(data))
			}
		}
	})
}

func BenchmarkFramer(b *testing.B) {
	line := []byte("<34>1 2026-11-23T10:00:00.123456Z fw01.example.net sshd 4242 - - Accepted publickey for admin from 192.0.2.10 port 52144 ssh2\n")
	stream := bytes.Repeat(line, 1000)
	b.SetBytes(int64(len(stream)))
	b.ReportAllocs()
	r := bytes.NewReader(stream)
	f := NewFramer(r)
	for b.Loop() {
		r.Reset(stream)
		f.Reset(r)
		for {
			if _, err := f.Next(); err != nil {
				break
			}
		}
	}
}
