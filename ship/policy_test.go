package ship_test

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flowgate/flowgate/buffer"
	"github.com/flowgate/flowgate/internal/apptest"
	"github.com/flowgate/flowgate/internal/intaketest"
	"github.com/flowgate/flowgate/ship"
)

// portOf reads the source port of a flow event.
func portOf(t *testing.T, event string) uint32 {
	t.Helper()
	// Events sent over https, dead letters among them, are JSON strings.
	var inner string
	if json.Unmarshal([]byte(event), &inner) == nil {
		event = inner
	}
	var f struct {
		Port uint32 `json:"sourceTransportPort"`
	}
	if err := json.Unmarshal([]byte(event), &f); err != nil {
		t.Fatal(err)
	}
	return f.Port
}

// deadLetters lists the rig's dead letters.
func (r *rig) deadLetters(t *testing.T) []buffer.DeadLetter {
	t.Helper()
	var out []buffer.DeadLetter
	if err := r.buf.DeadLetters(context.Background(), "test", func(dl buffer.DeadLetter) error {
		out = append(out, dl)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

func (r *rig) waitEmpty(t *testing.T) {
	t.Helper()
	if !apptest.Eventually(10*time.Second, func() bool {
		d, err := r.buf.Depth(context.Background(), r.subject)
		return err == nil && d == 0
	}) {
		t.Fatal("messages left unacknowledged in the buffer")
	}
}

func TestABatchTooLargeGoesInHalves(t *testing.T) {
	r := newRig(t)
	const limit = 100
	r.intake.RefuseEvents(func(events []string) int {
		if len(events) > limit {
			return 413
		}
		return 0
	})
	for range 10 {
		r.publish(t, 50)
	}
	cfg := ship.DefaultConfig("test")
	cfg.MaxEvents = 500
	reg := prometheus.NewRegistry()
	r.start(t, cfg, ship.NewMetrics(reg))
	assertEachOnce(t, ports(t, r.intake.WaitEvents(t, 500, 30*time.Second)), 500)
	for _, req := range r.intake.Requests() {
		if req.Status == 200 && req.Events > limit {
			t.Errorf("a request of %d events was accepted past the limit", req.Events)
		}
	}
	if v := metricSum(t, reg, "flowgate_ship_splits_total"); v < 3 {
		t.Errorf("flowgate_ship_splits_total = %v, want 3 at least (500 events in halves down to 100)", v)
	}
	r.waitEmpty(t)
	if dl := r.deadLetters(t); len(dl) != 0 {
		t.Fatalf("dead letters for a batch that only had to be split: %+v", dl)
	}
}

func TestEventsRefusedAloneAreSetAsideAndTheRestShips(t *testing.T) {
	r := newRig(t)
	poison := map[uint32]bool{50: true, 251: true, 252: true}
	var mu sync.Mutex
	refuse := true
	r.intake.RefuseEvents(func(events []string) int {
		mu.Lock()
		defer mu.Unlock()
		for _, e := range events {
			if refuse && poison[portOf(t, e)] {
				return 400
			}
		}
		return 0
	})
	for range 6 {
		r.publish(t, 50)
	}
	cfg := ship.DefaultConfig("test")
	reg := prometheus.NewRegistry()
	r.start(t, cfg, ship.NewMetrics(reg))
	got := ports(t, r.intake.WaitEvents(t, 300-len(poison), 30*time.Second))
	r.waitEmpty(t)
	seen := map[uint32]int{}
	for _, p := range got {
		seen[p]++
	}
	for p := uint32(1); p <= 300; p++ {
		want := 1
		if poison[p] {
			want = 0
		}
		if seen[p] != want {
			t.Errorf("flow %d arrived %d times, want %d", p, seen[p], want)
		}
	}
	dls := r.deadLetters(t)
	if len(dls) != len(poison) {
		t.Fatalf("%d dead letters, want %d: %+v", len(dls), len(poison), dls)
	}
	for _, dl := range dls {
		if !poison[portOf(t, string(dl.Event))] || dl.Status != 400 || dl.Intake != "test" ||
			!strings.Contains(dl.Reason, "refused by the test") || time.Since(dl.Time) > time.Minute {
			t.Errorf("dead letter %+v", dl)
		}
	}
	if v := metricSum(t, reg, "flowgate_dead_letters_total"); v != float64(len(poison)) {
		t.Fatalf("flowgate_dead_letters_total = %v, want %d", v, len(poison))
	}

	// Once the intake takes them, sending them again ships them as they were.
	mu.Lock()
	refuse = false
	mu.Unlock()
	n, err := r.buf.ResendDeadLetters(context.Background(), "test", buffer.Subject("test"), nil)
	if err != nil || n != len(poison) {
		t.Fatalf("resent %d dead letters (%v), want %d", n, err, len(poison))
	}
	events := r.intake.WaitEvents(t, 300, 30*time.Second)
	assertEachOnce(t, ports(t, events), 300)
	for _, e := range events[300-len(poison):] {
		if !poison[portOf(t, e.Event)] || e.Key != key {
			t.Errorf("resent event %+v", e)
		}
	}
	if dl := r.deadLetters(t); len(dl) != 0 {
		t.Fatalf("dead letters left after sending them again: %+v", dl)
	}
	r.waitEmpty(t)
}

func TestAnEventTooLargeAloneIsADeadLetter(t *testing.T) {
	r := newRig(t)
	r.intake.RefuseEvents(func(events []string) int {
		for _, e := range events {
			if strings.Contains(e, `"sourceTransportPort":3,`) {
				return 413
			}
		}
		return 0
	})
	r.publish(t, 5)
	r.run(t, ship.DefaultConfig("test"))
	r.intake.WaitEvents(t, 4, 30*time.Second)
	r.waitEmpty(t)
	dls := r.deadLetters(t)
	if len(dls) != 1 || dls[0].Status != 413 || portOf(t, string(dls[0].Event)) != 3 {
		t.Fatalf("dead letters %+v", dls)
	}
}

func TestARefusedKeyPausesUntilTheKeyWorks(t *testing.T) {
	r := newRig(t)
	var mu sync.Mutex
	status := 401
	r.intake.RefuseEvents(func([]string) int {
		mu.Lock()
		defer mu.Unlock()
		return status
	})
	for range 20 {
		r.publish(t, 10)
	}
	cfg := ship.DefaultConfig("test")
	cfg.MaxEvents, cfg.InFlight, cfg.ProbeInterval = 10, 4, 300*time.Millisecond
	reg := prometheus.NewRegistry()
	s, stop := r.start(t, cfg, ship.NewMetrics(reg))
	defer stop()
	if !apptest.Eventually(10*time.Second, func() bool { return s.Status().Ready(0, time.Hour) != nil }) {
		t.Fatal("the shipper did not pause")
	}
	if err := s.Status().Ready(0, time.Hour); !strings.Contains(err.Error(), "refused the key (401)") {
		t.Fatalf("readiness says %q", err)
	}
	if v := metricSum(t, reg, "flowgate_ship_paused"); v != 1 {
		t.Fatalf("flowgate_ship_paused = %v", v)
	}
	// While paused one batch probes: wait for a few probes.
	if !apptest.Eventually(10*time.Second, func() bool { return r.intake.Refused() >= cfg.InFlight+3 }) {
		t.Fatalf("no probes: %+v", r.intake.Requests())
	}
	mu.Lock()
	status = 0
	mu.Unlock()
	assertEachOnce(t, ports(t, r.intake.WaitEvents(t, 200, 30*time.Second)), 200)
	r.waitEmpty(t)
	if err := s.Status().Ready(0, time.Hour); err != nil {
		t.Fatalf("still paused after the key worked: %v", err)
	}
	if v := metricSum(t, reg, "flowgate_ship_paused"); v != 0 {
		t.Fatalf("flowgate_ship_paused = %v after resuming", v)
	}
	// Past the batches that were in flight when the key was refused, the
	// refusals came from one probe at a time, ProbeInterval apart.
	var refused []intaketest.Request
	for _, req := range r.intake.Requests() {
		if req.Status == 401 {
			refused = append(refused, req)
		}
	}
	for i := cfg.InFlight + 1; i < len(refused); i++ {
		if gap := refused[i].At.Sub(refused[i-1].At); gap < cfg.ProbeInterval*8/10 {
			t.Errorf("refusals %d and %d came %s apart: more than one probe at a time", i-1, i, gap)
		}
	}
	if len(r.deadLetters(t)) != 0 {
		t.Fatal("a refused key made dead letters")
	}
}

func TestStoppingFinishesTheBatchesInFlight(t *testing.T) {
	r := newRig(t)
	arrived := make(chan struct{}, 100)
	r.intake.RefuseEvents(func([]string) int {
		arrived <- struct{}{}
		return 0
	})
	r.intake.Delay(time.Second)
	for range 5 {
		r.publish(t, 20)
	}
	cfg := ship.DefaultConfig("test")
	cfg.MaxEvents = 20
	_, stop := r.start(t, cfg, ship.NewMetrics(prometheus.NewRegistry()))
	<-arrived
	stop()
	// What was in flight when the stop came was accepted and acknowledged.
	got := len(r.intake.Events())
	if got == 0 || got%20 != 0 {
		t.Fatalf("%d events accepted by the stop", got)
	}
	// Acknowledgements reach the store asynchronously: await them.
	var d uint64
	var err error
	if !apptest.Eventually(10*time.Second, func() bool {
		d, err = r.buf.Depth(context.Background(), r.subject)
		return err == nil && int(d) == 5-got/20
	}) {
		t.Fatalf("after the stop the buffer holds %d messages (%v), %d events were accepted", d, err, got)
	}
}

func TestAStopLeavesWhatWasNotAcceptedWithinTheGrace(t *testing.T) {
	r := newRig(t)
	arrived := make(chan struct{}, 100)
	r.intake.RefuseEvents(func([]string) int {
		arrived <- struct{}{}
		return 503
	})
	for range 5 {
		r.publish(t, 20)
	}
	cfg := ship.DefaultConfig("test")
	cfg.MaxEvents, cfg.StopGrace = 20, 300*time.Millisecond
	_, stop := r.start(t, cfg, ship.NewMetrics(prometheus.NewRegistry()))
	<-arrived
	stop()
	if d, err := r.buf.Depth(context.Background(), r.subject); err != nil || d != 5 {
		t.Fatalf("after the stop the buffer holds %d messages (%v), want the 5 refused", d, err)
	}
	// They were handed back: a new shipper gets them at once.
	r.intake.RefuseEvents(nil)
	r.run(t, cfg)
	assertEachOnce(t, ports(t, r.intake.WaitEvents(t, 100, 20*time.Second)), 100)
}

// metricSum adds every sample of a counter or gauge.
func metricSum(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if c := m.GetCounter(); c != nil {
				sum += c.GetValue()
			}
			if g := m.GetGauge(); g != nil {
				sum += g.GetValue()
			}
		}
	}
	return sum
}
