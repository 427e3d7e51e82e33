package format

import (
	"strconv"
	"testing"
)

func TestAppendUintAsStrconv(t *testing.T) {
	vals := []uint64{0, 1, 9, 10, 11, 99, 100, 101, 999, 1000, 65535, 1<<32 - 1, 1 << 32, 1e18 - 1, 1e18, 1e19 - 1, 1e19, 1<<64 - 1}
	for p := uint64(1); p < 1e19; p *= 10 {
		vals = append(vals, p-1, p, p+1, 3*p)
	}
	for _, v := range vals {
		for _, dst := range [][]byte{nil, []byte("x"), make([]byte, 3, 4)} {
			want := strconv.AppendUint(append([]byte(nil), dst...), v, 10)
			if got := appendUint(append([]byte(nil), dst...), v); string(got) != string(want) {
				t.Errorf("appendUint(%q, %d) = %q, want %q", dst, v, got, want)
			}
		}
	}
}

func FuzzAppendUint(f *testing.F) {
	f.Add(uint64(0))
	f.Add(uint64(1<<64 - 1))
	f.Fuzz(func(t *testing.T, v uint64) {
		if got, want := string(appendUint(nil, v)), strconv.FormatUint(v, 10); got != want {
			t.Errorf("appendUint(%d) = %s, want %s", v, got, want)
		}
	})
}
