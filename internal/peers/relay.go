package peers

import (
	"bytes"
	"crypto/rand"
	"net"
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
	changed   chan struct{}
	// marker is the datagram Drain sends itself, never forwarded.
	marker  []byte
	drained chan struct{}
}

// NewRelay relays to dst ("127.0.0.1:port") until the test ends.
func NewRelay(t testing.TB, dst string) *Relay {
	t.Helper()
	in, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	raddr, err := net.ResolveUDPAddr("udp", dst)
	if err != nil {
		t.Fatal(err)
	}
	out, err := net.DialUDP("udp", nil, raddr)
	if err != nil {
		t.Fatal(err)
	}
	_ = in.SetReadBuffer(8 << 20)
	r := &Relay{Addr: in.LocalAddr().String(), in: in, out: out, changed: make(chan struct{})}
	done := make(chan struct{})
	go r.run(done)
	t.Cleanup(func() {
		in.Close()
		<-done
		out.Close()
	})
	return r
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
		if r.marker != nil && bytes.Equal(d, r.marker) {
			close(r.drained)
			r.marker = nil
			r.mu.Unlock()
			continue
		}
		r.mu.Unlock()
		_, _ = r.out.Write(d)
		r.mu.Lock()
		r.datagrams = append(r.datagrams, d)
		close(r.changed)
		r.changed = make(chan struct{})
		r.mu.Unlock()
	}
}

// Drain waits until every datagram sent to the relay before the call has
// passed, and returns them all: for exporters that do not say how many
// datagrams they sent, once they have exited. A socket queues datagrams in
// the order they came, so a marker sent now arrives after all of them.
func (r *Relay) Drain(t testing.TB, timeout time.Duration) [][]byte {
	t.Helper()
	marker := make([]byte, 32)
	_, _ = rand.Read(marker)
	drained := make(chan struct{})
	r.mu.Lock()
	r.marker, r.drained = marker, drained
	r.mu.Unlock()
	c, err := net.Dial("udp", r.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write(marker); err != nil {
		t.Fatal(err)
	}
	select {
	case <-drained:
	case <-time.After(timeout):
		t.Fatalf("relay: not drained after %s", timeout)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([][]byte(nil), r.datagrams...)
}

// Wait waits until n datagrams have passed, or fails the test.
func (r *Relay) Wait(t testing.TB, n int, timeout time.Duration) [][]byte {
	t.Helper()
	deadline := time.After(timeout)
	for {
		r.mu.Lock()
		got, changed := len(r.datagrams), r.changed
		r.mu.Unlock()
		if got >= n {
			r.mu.Lock()
			defer r.mu.Unlock()
			return append([][]byte(nil), r.datagrams...)
		}
		select {
		case <-changed:
		case <-deadline:
			t.Fatalf("relay: %d datagrams after %s, want %d", got, timeout, n)
		}
	}
}
