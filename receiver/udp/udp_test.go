package udp

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// collector gathers what a listener hands over.
type collector struct {
	mu      sync.Mutex
	got     map[string][]string // sender -> payloads in order
	sockets map[string]int      // sender -> socket
	n       int
}

func (c *collector) handle(p *Packet) {
	c.mu.Lock()
	defer c.mu.Unlock()
	from := p.From.String()
	c.got[from] = append(c.got[from], string(p.Data))
	if s, ok := c.sockets[from]; ok && s != p.Socket {
		c.sockets[from] = -1 // one sender seen on two sockets
	} else if !ok {
		c.sockets[from] = p.Socket
	}
	c.n++
}

func (c *collector) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 5s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func run(t *testing.T, l *Listener, handle func(*Packet)) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx, handle) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
}

func TestReceiveFromManySenders(t *testing.T) {
	l, err := Listen(Config{Addr: "127.0.0.1:0", Sockets: 3}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	if l.Sockets() != 3 {
		t.Fatalf("%d sockets", l.Sockets())
	}
	c := &collector{got: map[string][]string{}, sockets: map[string]int{}}
	run(t, l, c.handle)
	const senders, each = 8, 200
	var wg sync.WaitGroup
	for s := range senders {
		conn, err := net.DialUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, byte(2+s%3))}, l.Addr().(*net.UDPAddr))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				_, _ = fmt.Fprintf(conn, "%d", i)
				if i%50 == 49 {
					time.Sleep(time.Millisecond) // stay within the receive buffer
				}
			}
		}()
	}
	wg.Wait()
	waitFor(t, "every datagram", func() bool { return c.count() == senders*each })
	c.mu.Lock()
	defer c.mu.Unlock()
	for from, payloads := range c.got {
		ap := netip.MustParseAddrPort(from)
		if !ap.Addr().Is4() || !ap.Addr().IsLoopback() {
			t.Errorf("sender %s", from)
		}
		for i, p := range payloads {
			if p != fmt.Sprint(i) {
				t.Fatalf("%s: datagram %d is %q: out of order", from, i, p)
			}
		}
		if c.sockets[from] < 0 {
			t.Errorf("%s was read from two sockets", from)
		}
	}
}

func TestPortInUse(t *testing.T) {
	l, err := Listen(Config{Addr: "127.0.0.1:0", Sockets: 2}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if _, err := Listen(Config{Addr: l.Addr().String(), Sockets: 2}, quiet); err == nil {
		t.Fatal("a second listener shares the port")
	}
}

func TestKernelDropsCounted(t *testing.T) {
	l, err := Listen(Config{Addr: "127.0.0.1:0", Sockets: 1, ReceiveBuffer: 4096}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.DialUDP("udp", nil, l.Addr().(*net.UDPAddr))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// Nobody reads yet: a few kilobytes fill the buffer, the rest is dropped.
	payload := make([]byte, 1000)
	for range 100 {
		_, _ = conn.Write(payload)
	}
	c := &collector{got: map[string][]string{}, sockets: map[string]int{}}
	run(t, l, c.handle)
	waitFor(t, "the queued datagrams", func() bool { return c.count() > 0 })
	// The kernel reports the drops with the next datagram.
	n := c.count()
	_, _ = conn.Write(payload)
	waitFor(t, "one more datagram", func() bool { return c.count() > n })
	if d := l.Drops(0); d == 0 || int(d)+c.count() != 101 {
		t.Fatalf("%d drops and %d datagrams received, of 101 sent", d, c.count())
	}
}

// BenchmarkReceive reads datagrams from loopback; allocs/op is per
// datagram and should be 0.
func BenchmarkReceive(b *testing.B) {
	l, err := Listen(Config{Addr: "127.0.0.1:0", Sockets: 1}, quiet)
	if err != nil {
		b.Fatal(err)
	}
	var got atomic.Int64
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = l.Run(ctx, func(p *Packet) { got.Add(1) })
	}()
	conn, err := net.DialUDP("udp", nil, l.Addr().(*net.UDPAddr))
	if err != nil {
		b.Fatal(err)
	}
	payload := make([]byte, 1400)
	b.SetBytes(int64(len(payload)))
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		_, _ = conn.Write(payload)
	}
	deadline := time.Now().Add(5 * time.Second)
	for got.Load()+int64(l.Drops(0)) < int64(b.N) && time.Now().Before(deadline) {
		time.Sleep(100 * time.Microsecond)
	}
	b.StopTimer()
	b.ReportMetric(float64(l.Drops(0))/float64(b.N), "drops/op")
	cancel()
	<-done
	conn.Close()
}

func TestOneSocketPerExporter(t *testing.T) {
	l, err := Listen(Config{Addr: ":0", Sockets: 4}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	c := &collector{got: map[string][]string{}, sockets: map[string]int{}}
	run(t, l, c.handle)
	// Each address sends from many source ports, as exporters that restart.
	// The addresses differ in one byte and end alike, as routers numbered
	// site by site (10.0.1.1, 10.0.2.1, ...) do.
	const addrs, ports = 8, 12
	port := l.Addr().(*net.UDPAddr).Port
	for a := range addrs {
		for range ports {
			conn, err := net.DialUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, byte(1+a), 1)}, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port})
			if err != nil {
				t.Fatal(err)
			}
			_, _ = conn.Write([]byte("x"))
			conn.Close()
		}
	}
	waitFor(t, "every datagram", func() bool { return c.count() == addrs*ports })
	c.mu.Lock()
	defer c.mu.Unlock()
	byAddr := map[netip.Addr]map[int]bool{}
	used := map[int]bool{}
	for from, s := range c.sockets {
		a := netip.MustParseAddrPort(from).Addr()
		if byAddr[a] == nil {
			byAddr[a] = map[int]bool{}
		}
		byAddr[a][s] = true
		used[s] = true
	}
	for a, socks := range byAddr {
		if len(socks) != 1 || !socks[SocketOf(a, l.Sockets())] {
			t.Errorf("%s was read from sockets %v, SocketOf says %d", a, socks, SocketOf(a, l.Sockets()))
		}
	}
	if len(used) < 3 {
		t.Errorf("%d exporters all on sockets %v", addrs, used)
	}
}
