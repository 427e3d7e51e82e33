package ship_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/proto"

	"github.com/flowgate/flowgate/buffer"
	"github.com/flowgate/flowgate/format"
	"github.com/flowgate/flowgate/internal/apptest"
	"github.com/flowgate/flowgate/internal/intaketest"
	pb "github.com/flowgate/flowgate/proto"
	"github.com/flowgate/flowgate/ship"
	"github.com/flowgate/flowgate/ship/https"
)

const key = "ShipperTestKey0123456789"

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// rig is a real buffer feeding a shipper that posts to a local intake.
type rig struct {
	buf     *buffer.Buffer
	subject string
	intake  *intaketest.HTTPS
	pub     *buffer.Publisher
	next    uint32 // source port of the next flow, so every flow is told apart
}

func newRig(t *testing.T) *rig {
	t.Helper()
	buf, err := buffer.Open(context.Background(), buffer.Config{Dir: t.TempDir(), MaxBytes: 256 << 20}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(buf.Close)
	r := &rig{buf: buf, subject: buffer.Subject("test"), intake: intaketest.NewHTTPS(t)}
	r.pub = buf.Publisher(r.subject, func(n int, err error) {
		if err != nil {
			t.Errorf("publishing %d records: %v", n, err)
		}
	})
	return r
}

// publish stores one buffer message of n flows and waits until it is stored.
func (r *rig) publish(t *testing.T, n int) {
	t.Helper()
	var b pb.Batch
	for range n {
		r.next++
		b.Flows = append(b.Flows, &pb.Flow{Type: pb.FlowType_IPFIX, Exporter: []byte{127, 0, 0, 1},
			SrcPort: r.next, Present: 1 << uint(pb.Field_SRC_PORT)})
	}
	data, err := proto.Marshal(&b)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.buf.Publish(context.Background(), r.subject, data); err != nil {
		t.Fatal(err)
	}
}

// run starts a shipper with cfg; it stops with the test.
func (r *rig) run(t *testing.T, cfg ship.Config) *ship.Shipper {
	t.Helper()
	s, stop := r.start(t, cfg, ship.NewMetrics(prometheus.NewRegistry()))
	t.Cleanup(stop)
	return s
}

// start starts a shipper with cfg and returns it with the function that
// stops it (its context ends) and waits until Run returned.
func (r *rig) start(t *testing.T, cfg ship.Config, m *ship.Metrics) (*ship.Shipper, func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cons, err := r.buf.Consume(ctx, r.subject, 64)
	if err != nil {
		t.Fatal(err)
	}
	hc := https.Sekoia(r.intake.URL, key, r.intake.CAFile)
	hc.Conns = cfg.InFlight
	tr, err := https.New(hc)
	if err != nil {
		t.Fatal(err)
	}
	s := ship.New(cfg, cons, format.IANA{AsString: true}, tr, r.buf, m, quiet)
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	var once sync.Once
	return s, func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("shipper: %v", err)
			}
			cons.Stop()
		})
	}
}

// ports returns the source port of every event, in arrival order.
func ports(t *testing.T, events []intaketest.Event) []uint32 {
	t.Helper()
	var out []uint32
	for _, e := range events {
		var f struct {
			Port uint32 `json:"sourceTransportPort"`
		}
		if err := json.Unmarshal([]byte(e.Event), &f); err != nil {
			t.Fatal(err)
		}
		out = append(out, f.Port)
	}
	return out
}

func assertEachOnce(t *testing.T, got []uint32, n int) {
	t.Helper()
	seen := map[uint32]int{}
	for _, p := range got {
		seen[p]++
	}
	for p := uint32(1); p <= uint32(n); p++ {
		if seen[p] != 1 {
			t.Errorf("flow %d arrived %d times", p, seen[p])
		}
	}
	if len(got) != n {
		t.Errorf("%d events arrived, want %d", len(got), n)
	}
}

func TestBatchesAreBoundedByCount(t *testing.T) {
	r := newRig(t)
	for range 20 {
		r.publish(t, 50)
	}
	cfg := ship.DefaultConfig("test")
	cfg.MaxEvents = 120
	r.run(t, cfg)
	assertEachOnce(t, ports(t, r.intake.WaitEvents(t, 1000, 30*time.Second)), 1000)
	for _, req := range r.intake.Requests() {
		// Batches close on whole buffer messages: at most one message past the bound.
		if req.Events > cfg.MaxEvents+50 || req.Events == 0 {
			t.Errorf("a request carried %d events, bound %d", req.Events, cfg.MaxEvents)
		}
	}
	if n := len(r.intake.Requests()); n < 1000/(cfg.MaxEvents+50) {
		t.Errorf("%d requests for 1000 events", n)
	}
}

func TestBatchesAreBoundedByBytes(t *testing.T) {
	r := newRig(t)
	for range 10 {
		r.publish(t, 100)
	}
	one := len(format.IANA{}.AppendFlow(nil, &pb.Flow{Type: pb.FlowType_IPFIX, Exporter: []byte{127, 0, 0, 1}, SrcPort: 1000, Present: 1 << uint(pb.Field_SRC_PORT)}))
	cfg := ship.DefaultConfig("test")
	cfg.MaxBytes = 250 * one // two and a half messages
	r.run(t, cfg)
	assertEachOnce(t, ports(t, r.intake.WaitEvents(t, 1000, 30*time.Second)), 1000)
	for _, req := range r.intake.Requests() {
		if req.Events*one > cfg.MaxBytes+one*10 {
			t.Errorf("a request carried %d events (~%d bytes), bound %d bytes", req.Events, req.Events*one, cfg.MaxBytes)
		}
	}
}

func TestALoneEventLeavesAfterTheLinger(t *testing.T) {
	r := newRig(t)
	r.run(t, ship.DefaultConfig("test"))
	r.publish(t, 1)
	assertEachOnce(t, ports(t, r.intake.WaitEvents(t, 1, 10*time.Second)), 1)
}

func TestRetryAfterIsHonoured(t *testing.T) {
	r := newRig(t)
	r.intake.Refuse(func(n int) (int, string) {
		if n == 1 {
			return 429, "2"
		}
		return 0, ""
	})
	cfg := ship.DefaultConfig("test")
	cfg.InFlight = 1
	r.publish(t, 10)
	r.run(t, cfg)
	assertEachOnce(t, ports(t, r.intake.WaitEvents(t, 10, 30*time.Second)), 10)
	reqs := r.intake.Requests()
	if len(reqs) != 2 || reqs[0].Status != 429 {
		t.Fatalf("requests: %+v", reqs)
	}
	if gap := reqs[1].At.Sub(reqs[0].At); gap < 2*time.Second {
		t.Fatalf("retried %s after a Retry-After of 2s", gap)
	}
}

func TestTheBufferKeepsWhatTheIntakeRefused(t *testing.T) {
	r := newRig(t)
	r.intake.Refuse(func(int) (int, string) { return 503, "" })
	r.publish(t, 30)
	r.run(t, ship.DefaultConfig("test"))
	if !apptest.Eventually(20*time.Second, func() bool { return len(r.intake.Requests()) >= 2 }) {
		t.Fatalf("no retry: %+v", r.intake.Requests())
	}
	depth, err := r.buf.Depth(context.Background(), r.subject)
	if err != nil || depth != 1 {
		t.Fatalf("buffer holds %d messages (%v), want the 1 refused", depth, err)
	}
	r.intake.Refuse(nil)
	assertEachOnce(t, ports(t, r.intake.WaitEvents(t, 30, 60*time.Second)), 30)
	if !apptest.Eventually(10*time.Second, func() bool {
		d, err := r.buf.Depth(context.Background(), r.subject)
		return err == nil && d == 0
	}) {
		t.Fatal("the buffer still holds the message after it was accepted")
	}
}

func TestManyInFlightStillAcknowledgeEverything(t *testing.T) {
	r := newRig(t)
	// Every other request fails once, so batches finish out of order.
	r.intake.Refuse(func(n int) (int, string) {
		if n%2 == 0 && n < 20 {
			return 500, ""
		}
		return 0, ""
	})
	cfg := ship.DefaultConfig("test")
	cfg.MaxEvents, cfg.InFlight = 40, 4
	cfg.Backoff = ship.Backoff{Initial: 10 * time.Millisecond, Max: 50 * time.Millisecond}
	for range 40 {
		r.publish(t, 20)
	}
	r.run(t, cfg)
	assertEachOnce(t, ports(t, r.intake.WaitEvents(t, 800, 60*time.Second)), 800)
	if !apptest.Eventually(10*time.Second, func() bool {
		d, err := r.buf.Depth(context.Background(), r.subject)
		return err == nil && d == 0
	}) {
		t.Fatal("messages left unacknowledged in the buffer")
	}
}

// arrays is a transport that records the memory each batch's events are
// in, and passes the batch on.
type arrays struct {
	ship.Transport
	mu   sync.Mutex
	seen map[*byte]bool
}

func (a *arrays) Send(ctx context.Context, b *ship.Batch) error {
	a.mu.Lock()
	a.seen[&b.Event(0)[0]] = true
	a.mu.Unlock()
	return a.Transport.Send(ctx, b)
}

func TestBatchesClosedOnBytesKeepTheirMemory(t *testing.T) {
	r := newRig(t)
	for range 200 {
		r.publish(t, 100)
	}
	one := len(format.IANA{}.AppendFlow(nil, &pb.Flow{Type: pb.FlowType_IPFIX, Exporter: []byte{127, 0, 0, 1}, SrcPort: 1000, Present: 1 << uint(pb.Field_SRC_PORT)}))
	cfg := ship.DefaultConfig("test")
	cfg.MaxBytes = 250 * one // every batch closes on bytes, its last message moving to the next
	cfg.InFlight = 2
	ctx, cancel := context.WithCancel(context.Background())
	cons, err := r.buf.Consume(ctx, r.subject, 64)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := https.New(https.Sekoia(r.intake.URL, key, r.intake.CAFile))
	if err != nil {
		t.Fatal(err)
	}
	spy := &arrays{Transport: tr, seen: map[*byte]bool{}}
	s := ship.New(cfg, cons, format.IANA{AsString: true}, spy, r.buf, ship.NewMetrics(prometheus.NewRegistry()), quiet)
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	assertEachOnce(t, ports(t, r.intake.WaitEvents(t, 20000, 60*time.Second)), 20000)
	cancel()
	if err := <-done; err != nil {
		t.Error(err)
	}
	cons.Stop()
	// The batches in flight, the one being filled and the kept ones: a
	// handful of buffers, grown once, however many requests (100) they
	// carried. Dropping the kept batch at each split took 29.
	if n, max := len(spy.seen), 2*(cfg.InFlight+2); n > max {
		t.Errorf("%d requests were built in %d buffers, want at most %d: buffers are dropped and grown anew", len(r.intake.Requests()), n, max)
	}
}
