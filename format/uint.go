package format

import "math/bits"

// pairs holds "00" to "99": two digits are written per division.
const pairs = "00010203040506070809" +
	"10111213141516171819" +
	"20212223242526272829" +
	"30313233343536373839" +
	"40414243444546474849" +
	"50515253545556575859" +
	"60616263646566676869" +
	"70717273747576777879" +
	"80818283848586878889" +
	"90919293949596979899"

// pow10 are the powers of ten a uint64 holds, for counting digits.
var pow10 = [...]uint64{1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10,
	1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19}

// appendUint appends v in decimal, as strconv.AppendUint(dst, v, 10) does,
// but writes the digits in place: strconv formats into an array of its own
// and copies it, and that copy was most of its cost per counter (every flow
// event has a dozen numbers).
func appendUint(dst []byte, v uint64) []byte {
	if v < 10 {
		return append(dst, byte('0'+v))
	}
	// Digits: log10 from the bit length (1233/4096 ≈ log10(2)), then one
	// correction.
	n := (bits.Len64(v) * 1233) >> 12
	if v >= pow10[n] {
		n++
	}
	l := len(dst)
	if cap(dst)-l < n {
		dst = append(dst, make([]byte, n)...)
	} else {
		dst = dst[:l+n]
	}
	i := l + n
	for v >= 100 {
		q := v / 100
		r := v - q*100
		i -= 2
		dst[i], dst[i+1] = pairs[2*r], pairs[2*r+1]
		v = q
	}
	if v >= 10 {
		dst[i-2], dst[i-1] = pairs[2*v], pairs[2*v+1]
	} else {
		dst[i-1] = byte('0' + v)
	}
	return dst
}
