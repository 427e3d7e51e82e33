package peers

import (
	"bytes"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"
)

// Relay forwards datagrams from exporters to a collector and keeps a copy
// of each, so a test knows exactly what the collector was sent.
type Relay struct {
	// Addr is where exporters send.
	Addr string
	in   *net.UDPConn
	out  *net.UDPConn

	mu        sync.Mutex
	datagrams [][]byte
	flushes   int
	changed   chan struct{}
}

// flushMarker starts the datagram Flush sends through the relay; the relay
// keeps and forwards everything but it.
var flushMarker = []byte("flowgate-relay-flush")

// NewRelay relays to dst ("127.0.0.1:port") until the test ends.
func NewRelay(t testing.TB, dst string) *Relay {
	t.Helper()
	return NewRelayFrom(t, dst, "127.0.0.1")
}

// NewRelayFrom relays to dst from the local address from ("127.0.0.2"):
// the collector sees the exporter at that address.
func NewRelayFrom(t testing.TB, dst, from string) *Relay {
	t.Helper()
	in, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	out := Dial(t, from, dst)
	_ = in.SetReadBuffer(8 << 20)
	r := &Relay{Addr: in.LocalAddr().String(), in: in, out: out, changed: make(chan struct{})}
	done := make(chan struct{})
	go r.run(done)
	t.Cleanup(func() {
		in.Close()
		<-done
	})
	return r
}

// Dial returns a UDP socket from the local address from (any port) to dst,
// closed when the test ends.
func Dial(t testing.TB, from, dst string) *net.UDPConn {
	t.Helper()
	raddr, err := net.ResolveUDPAddr("udp", dst)
	if err != nil {
		t.Fatal(err)
	}
	laddr := &net.UDPAddr{IP: net.ParseIP(from)}
	conn, err := net.DialUDP("udp", laddr, raddr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// Send sends datagrams from the local address from, on a port of its own,
// to dst, one at a time with a pause every few so that no receive buffer
// overflows.
func Send(t testing.TB, from, dst string, datagrams [][]byte) netip.AddrPort {
	t.Helper()
	conn := Dial(t, from, dst)
	for i, d := range datagrams {
		if _, err := conn.Write(d); err != nil {
			t.Fatal(err)
		}
		if i%32 == 31 {
			time.Sleep(time.Millisecond)
		}
	}
	return conn.LocalAddr().(*net.UDPAddr).AddrPort()
}

func (r *Relay) run(done chan<- struct{}) {
	defer close(done)
	buf := make([]byte, 65535)
	for {
		n, err := r.in.Read(buf)
		if err != nil {
			return
		}
		d := append([]byte(nil), buf[:n]...)
		r.mu.Lock()
		if bytes.HasPrefix(d, flushMarker) {
			r.flushes++
		} else {
			_, _ = r.out.Write(d)
			r.datagrams = append(r.datagrams, d)
		}
		close(r.changed)
		r.changed = make(chan struct{})
		r.mu.Unlock()
	}
}

// Wait waits until n datagrams have passed, or fails the test.
func (r *Relay) Wait(t testing.TB, n int, timeout time.Duration) [][]byte {
	t.Helper()
	return r.waitFor(t, timeout, func() bool { return len(r.datagrams) >= n })
}

// Flush returns every datagram sent to the relay so far, once it has
// forwarded them: for exporters that do not say how many they sent. It
// must be called once the exporter has stopped sending.
func (r *Relay) Flush(t testing.TB) [][]byte {
	t.Helper()
	r.mu.Lock()
	want := r.flushes + 1
	r.mu.Unlock()
	conn := Dial(t, "127.0.0.1", r.Addr)
	if _, err := conn.Write(flushMarker); err != nil {
		t.Fatal(err)
	}
	// The marker is queued behind whatever the exporter sent.
	return r.waitFor(t, 10*time.Second, func() bool { return r.flushes >= want })
}

// waitFor waits until cond (called with r.mu held) holds and returns the
// datagrams relayed so far.
func (r *Relay) waitFor(t testing.TB, timeout time.Duration, cond func() bool) [][]byte {
	t.Helper()
	deadline := time.After(timeout)
	for {
		r.mu.Lock()
		ok, got, changed := cond(), len(r.datagrams), r.changed
		if ok {
			defer r.mu.Unlock()
			return append([][]byte(nil), r.datagrams...)
		}
		r.mu.Unlock()
		select {
		case <-changed:
		case <-deadline:
			t.Fatalf("relay: %d datagrams after %s, still waiting", got, timeout)
		}
	}
}
