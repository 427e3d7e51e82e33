package buffer

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// startCluster runs n JetStream servers in this process, routed to each
// other on loopback, and returns them with their client URLs.
func startCluster(t *testing.T, n int) ([]*server.Server, string) {
	t.Helper()
	routes := make([]string, n)
	ports := make([]int, n)
	for i := range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ports[i] = l.Addr().(*net.TCPAddr).Port
		l.Close()
		routes[i] = fmt.Sprintf("nats://127.0.0.1:%d", ports[i])
	}
	var servers []*server.Server
	var urls []string
	for i := range n {
		s, err := server.NewServer(&server.Options{
			ServerName: fmt.Sprintf("n%d", i+1),
			Host:       "127.0.0.1",
			Port:       -1,
			NoSigs:     true,
			JetStream:  true,
			StoreDir:   t.TempDir(),
			MaxPayload: 8 << 20,
			Cluster:    server.ClusterOpts{Name: "test", Host: "127.0.0.1", Port: ports[i]},
			Routes:     server.RoutesFromStr(strings.Join(routes, ",")),
		})
		if err != nil {
			t.Fatal(err)
		}
		go s.Start()
		if !s.ReadyForConnections(10 * time.Second) {
			t.Fatalf("server %d did not start", i+1)
		}
		t.Cleanup(s.Shutdown)
		servers = append(servers, s)
		urls = append(urls, s.ClientURL())
	}
	return servers, strings.Join(urls, ",")
}

func openCluster(t *testing.T, url string) *Buffer {
	t.Helper()
	b, err := Open(context.Background(), Config{URL: url, Replicas: 3, MaxBytes: 256 << 20}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	return b
}

// Two nodes share a three-server cluster: the streams have three
// replicas, a node that starts leaves the messages another holds alone,
// the consumer spreads messages over both, and a server that dies loses
// nothing.
func TestTwoNodesShareAClusterThatLosesAServer(t *testing.T) {
	servers, url := startCluster(t, 3)
	b1, b2 := openCluster(t, url), openCluster(t, url)
	if b1.Embedded() || b1.replicas != 3 {
		t.Fatalf("embedded %v, %d replicas", b1.Embedded(), b1.replicas)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	info, err := b1.stream.Info(ctx)
	if err != nil || info.Config.Replicas != 3 || info.Cluster == nil || len(info.Cluster.Replicas) != 2 {
		t.Fatalf("stream info %+v (%v)", info, err)
	}
	subject := Subject("shared")
	var outcomes sync.WaitGroup
	publish := func(b *Buffer, from, to int) {
		var mu sync.Mutex
		p := b.Publisher(subject, func(_ int, err error) {
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				t.Errorf("publish: %v", err)
			}
			outcomes.Done()
		})
		for i := from; i < to; i++ {
			outcomes.Add(1)
			p.Publish([]byte(fmt.Sprint(i)), 1)
		}
		p.Close()
	}
	publish(b1, 0, 100)

	// Node 1 takes a message and holds it; node 2 starting its consumer
	// does not have it delivered again.
	c1, err := b1.Consume(ctx, subject, 64)
	if err != nil {
		t.Fatal(err)
	}
	held, err := c1.Next(ctx)
	if err != nil {
		t.Fatal(err)
	}
	c2, err := b2.Consume(ctx, subject, 64)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	by := map[int]int{}
	var mu sync.Mutex
	take := func(c *Consumer, node int, stop <-chan struct{}) {
		for {
			nctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
			m, err := c.Next(nctx)
			cancel()
			select {
			case <-stop:
				if m != nil {
					_ = m.Nak()
				}
				return
			default:
			}
			if err != nil {
				continue
			}
			mu.Lock()
			seen[string(m.Data())]++
			by[node]++
			mu.Unlock()
			if err := m.DoubleAck(ctx); err != nil {
				t.Logf("ack: %v", err)
			}
		}
	}
	stop := make(chan struct{})
	var takers sync.WaitGroup
	for i, c := range []*Consumer{c1, c2} {
		takers.Add(1)
		go func() { defer takers.Done(); take(c, i+1, stop) }()
	}
	if !waitFor(10*time.Second, func() bool { mu.Lock(); defer mu.Unlock(); return len(seen) >= 99 }) {
		t.Fatalf("the nodes took %d messages", len(seen))
	}
	mu.Lock()
	if seen[string(held.Data())] != 0 {
		t.Fatalf("node 2 got message %s, which node 1 holds", held.Data())
	}
	mu.Unlock()
	if err := held.DoubleAck(ctx); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	seen[string(held.Data())]++
	mu.Unlock()

	// The stream's leader dies; publishing and consuming go on.
	info, err = b1.stream.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range servers {
		if s.Name() == info.Cluster.Leader {
			s.Shutdown()
		}
	}
	publish(b2, 100, 300)
	outcomes.Wait()
	// A message delivered through the dead server comes again after
	// AckWait.
	if !waitFor(AckWait+30*time.Second, func() bool { mu.Lock(); defer mu.Unlock(); return len(seen) == 300 }) {
		mu.Lock()
		t.Fatalf("%d distinct messages consumed, want 300", len(seen))
	}
	close(stop)
	takers.Wait()
	c1.Stop()
	c2.Stop()
	dups := 0
	for _, n := range seen {
		dups += n - 1
	}
	t.Logf("node 1 took %d, node 2 took %d, %d duplicates", by[1], by[2], dups)
	if by[1] == 0 || by[2] == 0 {
		t.Errorf("one node took every message: %v", by)
	}
	if d, err := b2.Depth(ctx, subject); err != nil || d != 0 {
		t.Errorf("depth %d (%v) after everything was acknowledged", d, err)
	}
	// The dead-letter stream has replicas too.
	dinfo, err := b2.dlq.Info(ctx)
	if err != nil || dinfo.Config.Replicas != 3 {
		t.Fatalf("dead letters: %+v (%v)", dinfo, err)
	}
}

func waitFor(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
	return true
}

// A server that cannot hold the replicas asked is an error at start.
func TestAServerTooSmallForTheReplicasIsAnError(t *testing.T) {
	s, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, NoSigs: true, JetStream: true, StoreDir: t.TempDir(), MaxPayload: 8 << 20})
	if err != nil {
		t.Fatal(err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("server did not start")
	}
	defer s.Shutdown()
	_, err = Open(context.Background(), Config{URL: s.ClientURL(), Replicas: 3, MaxBytes: 256 << 20}, quiet)
	if err == nil || !strings.Contains(err.Error(), "replicas") {
		t.Fatalf("3 replicas on one server: %v", err)
	}
}

// A server that takes smaller messages than the buffer writes is an error
// at start that says what to change.
func TestAServerWithASmallMaxPayloadIsAnError(t *testing.T) {
	s, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, NoSigs: true, JetStream: true, StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("server did not start")
	}
	defer s.Shutdown()
	_, err = Open(context.Background(), Config{URL: s.ClientURL(), Replicas: 1, MaxBytes: 256 << 20}, quiet)
	if err == nil || !strings.Contains(err.Error(), "max_payload") {
		t.Fatalf("a server with max_payload 1 MB: %v", err)
	}
}
