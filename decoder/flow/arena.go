package flow

// arena holds the copies of a datagram's addresses: the records keep them
// after the datagram's buffer is reused, and one allocation per datagram
// serves them all rather than one per address.
type arena []byte

// newArena returns an arena for the addresses of a datagram of n bytes:
// they cannot take more than the datagram.
func newArena(n int) arena { return make(arena, 0, n) }

// clone copies b into the arena. Slices handed out stay valid when the
// arena grows: they keep the memory they point into.
func (a *arena) clone(b []byte) []byte {
	start := len(*a)
	*a = append(*a, b...)
	return (*a)[start:len(*a):len(*a)]
}
