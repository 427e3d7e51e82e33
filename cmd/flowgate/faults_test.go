package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flowgate/flowgate/internal/apptest"
	"github.com/flowgate/flowgate/internal/intaketest"
	"github.com/flowgate/flowgate/internal/peers"
	"github.com/flowgate/flowgate/internal/testtraffic"
)

// The fault tests: the appliance under a stream of NetFlow v5 records
// with an id each (testtraffic.V5Source), while the intake goes away, the
// process is killed, the disk fills, or peers misbehave; each asserts on
// the ids that arrive at the local intake.

// app is a flowgate run on a configuration of its own.
type app struct {
	dir, path, httpAddr string
	proc                *apptest.Proc
}

// newApp writes intakes.yaml with body (intakes, outputs), the data
// directory and the monitoring listener, and starts flowgate on it.
func newApp(t *testing.T, body string, env ...string) *app {
	t.Helper()
	a := &app{dir: t.TempDir(), httpAddr: fmt.Sprintf("127.0.0.1:%d", apptest.FreePort(t, "tcp"))}
	a.path = filepath.Join(a.dir, "intakes.yaml")
	a.write(t, body)
	a.proc = apptest.Start(t, a.path, a.httpAddr, env...)
	return a
}

// write replaces the configuration file, keeping the data directory and
// the listener.
func (a *app) write(t *testing.T, body string) {
	t.Helper()
	a.path = apptest.WriteConfig(t, a.dir, body, a.httpAddr)
}

// restart starts flowgate again on the same configuration and store.
func (a *app) restart(t *testing.T, env ...string) {
	t.Helper()
	a.proc = apptest.Start(t, a.path, a.httpAddr, env...)
}

// waitLog waits until flowgate's log has a line containing text.
func (a *app) waitLog(t *testing.T, text string, timeout time.Duration) {
	t.Helper()
	if !apptest.Eventually(timeout, func() bool { return strings.Contains(a.proc.Stderr.String(), text) }) {
		t.Fatalf("no %q in flowgate's log after %s", text, timeout)
	}
}

// netflowIntake is an intake list item for a netflow intake shipping to in.
func netflowIntake(name string, port int, key string, in *intaketest.HTTPS) string {
	return fmt.Sprintf("  - name: %s\n    protocol: netflow\n    port: %d\n    intake_key: %s\n    output: %s\n", name, port, key, in.Output())
}

// The intake is unreachable for 30 seconds in the middle of a flow stream:
// every record arrives once it is back.
func TestEveryRecordArrivesAfterTheReceiverWasDown30s(t *testing.T) {
	// It waits on peers most of its time: it runs beside others.
	t.Parallel()
	if testing.Short() {
		t.Skip("takes over a minute")
	}
	intake := intaketest.NewHTTPS(t)
	port := apptest.FreePort(t, "udp")
	a := newApp(t, "intakes:\n"+netflowIntake("Routers", port, testKey, intake))
	stream := testtraffic.NewV5Stream(t, port, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := stream.Run(ctx, 10) // 1000 records a second
	defer func() { cancel(); <-done }()

	intake.WaitEvents(t, 1000, 30*time.Second)
	intake.Down()
	downAt := time.Now()
	// While it is down, the records wait in the buffer.
	if !apptest.Eventually(30*time.Second, func() bool {
		return a.proc.Metric("flowgate_ship_failures_total") > 0 && a.proc.Metric("flowgate_buffered_events_total") > float64(len(intake.Events())+5000)
	}) {
		t.Fatalf("no failed sends and no records waiting while the intake is down")
	}
	time.Sleep(time.Until(downAt.Add(30 * time.Second)))
	intake.Up(t)
	// A few more seconds of stream, then everything sent must arrive.
	intake.WaitEvents(t, len(intake.Events())+3000, 60*time.Second)
	cancel()
	<-done
	total := stream.Sent()
	testtraffic.WaitIDs(t, intake, 1, uint32(total)+1, 60*time.Second)
	dups := testtraffic.CheckIDs(t, testtraffic.IDsOf(t, intake.Events()), 1, uint32(total)+1)
	if dropped := a.proc.Metric("flowgate_dropped_events_total"); dropped != 0 {
		t.Errorf("%v records dropped", dropped)
	}
	// A request cut by the outage may have been taken before its answer
	// was lost: its events come again.
	t.Logf("%d records sent, %d duplicates, %d failed sends while down", total, dups, int(a.proc.Metric("flowgate_ship_failures_total")))
}

// kill -9 under load, and a restart on the same store: every record the
// appliance counted as buffered before the kill arrives; the duplicates
// are the batches in flight at the kill, and nothing else.
func TestKillUnderLoadLosesNothingAccepted(t *testing.T) {
	intake := intaketest.NewHTTPS(t)
	// Slow answers keep batches in flight when the kill comes.
	intake.Delay(time.Second)
	port := apptest.FreePort(t, "udp")
	a := newApp(t, "intakes:\n"+netflowIntake("Routers", port, testKey, intake))
	stream := testtraffic.NewV5Stream(t, port, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := stream.Run(ctx, 30) // 3000 records a second

	intake.WaitEvents(t, 20000, 60*time.Second)
	buffered := a.proc.Metric("flowgate_buffered_events_total")
	a.proc.Kill()
	cancel()
	<-done
	killedAt := stream.Sent()
	// The intake finishes the requests the dead process had sent: their
	// events count as accepted, though flowgate never heard so.
	if !apptest.Eventually(20*time.Second, func() bool { return intake.Quiet(2 * time.Second) }) {
		t.Fatal("the intake is still answering requests of a dead process")
	}
	reqs := intake.Requests()
	beforeKill := len(intake.Events())
	t.Logf("killed with %v records buffered, %d sent, %d accepted by the intake", buffered, killedAt, beforeKill)

	a.restart(t)
	// After the restart, a stream that must arrive whole.
	const after = 3000
	stream.Send(after)
	total := killedAt + after
	if !apptest.Eventually(60*time.Second, func() bool {
		seen := testtraffic.IDsOf(t, intake.Events())
		for id := uint32(killedAt + 1); id <= uint32(total); id++ {
			if seen[id] == 0 {
				return false
			}
		}
		arrived := 0
		for id := uint32(1); id <= uint32(killedAt); id++ {
			if seen[id] > 0 {
				arrived++
			}
		}
		return float64(arrived) >= buffered
	}) {
		seen := testtraffic.IDsOf(t, intake.Events())
		testtraffic.CheckIDs(t, seen, uint32(killedAt+1), uint32(total)+1)
		arrived := 0
		for id := uint32(1); id <= uint32(killedAt); id++ {
			if seen[id] > 0 {
				arrived++
			}
		}
		t.Fatalf("%d records sent before the kill arrived, %v were buffered", arrived, buffered)
	}
	// Shipped after the restart: what it buffered, and what the store kept.
	if !apptest.Eventually(20*time.Second, func() bool {
		return a.proc.Metric("flowgate_shipped_events_total") >= a.proc.Metric("flowgate_buffered_events_total")
	}) {
		t.Fatal("the appliance did not ship everything it buffered after the restart")
	}
	events := intake.Events()
	seen := testtraffic.IDsOf(t, events)
	dups := testtraffic.CheckIDs(t, seen, uint32(killedAt+1), uint32(total)+1)
	if dups != 0 {
		t.Errorf("%d duplicates among the records sent after the restart", dups)
	}
	// Duplicates come from the batches in flight at the kill: the last
	// requests accepted before it, at most InFlight of them plus the one
	// being acknowledged.
	tail := 0
	for i := len(reqs) - 1; i >= 0 && i >= len(reqs)-5; i-- {
		if reqs[i].Status == 200 {
			tail += reqs[i].Events
		}
	}
	inTail := map[uint32]bool{}
	for id := range testtraffic.IDsOf(t, events[max(beforeKill-tail, 0):beforeKill]) {
		inTail[id] = true
	}
	before, stray := 0, 0
	for id := uint32(1); id <= uint32(killedAt); id++ {
		if n := seen[id]; n > 1 {
			before += n - 1
			if !inTail[id] {
				if stray++; stray <= 10 {
					t.Errorf("record %d arrived %d times, and was not in a batch in flight at the kill", id, n)
				}
			}
		}
	}
	t.Logf("%d duplicates, from the %d events of the last requests before the kill", before, tail)
}

// The disk bound is reached while the intake refuses: records are dropped
// and counted, the process stays up and says it is full, and once the
// intake takes the backlog, new records are buffered again.
func TestAFullBufferDropsCountsAndRecovers(t *testing.T) {
	intake := intaketest.NewHTTPS(t)
	intake.Refuse(func(int) (int, string) { return 503, "" })
	port := apptest.FreePort(t, "udp")
	a := newApp(t, "intakes:\n"+netflowIntake("Routers", port, testKey, intake), "DISK_SPACE=64m")
	stream := testtraffic.NewV5Stream(t, port, 1)
	full := func() float64 { return a.proc.Metric("flowgate_dropped_events_total", `reason="buffer_full"`) }
	deadline := time.Now().Add(90 * time.Second)
	for full() == 0 {
		if time.Now().After(deadline) || stream.Sent() > 5_000_000 {
			t.Fatalf("the buffer did not fill: %d records sent, %v buffered", stream.Sent(), a.proc.Metric("flowgate_buffered_events_total"))
		}
		for range 20 {
			stream.Send(3000)
			time.Sleep(5 * time.Millisecond)
		}
	}
	if status, body := a.proc.Get("/healthz"); status != 200 {
		t.Fatalf("/healthz %d %s with a full buffer", status, body)
	}
	if status, body := a.proc.Get("/readyz"); status != 503 || !strings.Contains(body, "full") {
		t.Fatalf("/readyz %d %q with a full buffer, want 503 saying it is full", status, body)
	}
	buffered := a.proc.Metric("flowgate_buffered_events_total")
	t.Logf("full after %d records: %v buffered, %v dropped", stream.Sent(), buffered, full())

	intake.Refuse(nil)
	if !apptest.Eventually(120*time.Second, func() bool {
		return a.proc.Metric("flowgate_shipped_events_total") >= buffered
	}) {
		t.Fatalf("the backlog did not drain: %v shipped of %v", a.proc.Metric("flowgate_shipped_events_total"), buffered)
	}
	// Room again: new records are buffered and shipped.
	before := a.proc.Metric("flowgate_buffered_events_total")
	next := uint32(stream.Sent() + 1)
	stream.Send(3000)
	if !apptest.Eventually(30*time.Second, func() bool {
		return a.proc.Metric("flowgate_buffered_events_total") == before+3000
	}) {
		t.Fatalf("after draining, %v new records buffered, want 3000", a.proc.Metric("flowgate_buffered_events_total")-before)
	}
	if !apptest.Eventually(30*time.Second, func() bool {
		seen := testtraffic.IDsOf(t, intake.Events())
		for id := next; id < next+3000; id++ {
			if seen[id] == 0 {
				return false
			}
		}
		return true
	}) {
		testtraffic.CheckIDs(t, testtraffic.IDsOf(t, intake.Events()), next, next+3000)
	}
	if status, body := a.proc.Get("/readyz"); status != 200 {
		t.Fatalf("/readyz %d %q once the buffer takes records again", status, body)
	}
	if got := len(intake.Events()); float64(got) < buffered+3000 {
		t.Fatalf("%d events arrived, %v were buffered", got, buffered+3000)
	}
}

// Garbage and truncated datagrams on one intake, TLS connections that
// never finish their handshake (or send garbage) on another: the intakes
// next to them, and good senders on the same TLS intake, are unaffected.
func TestMalformedInputAndStalledHandshakesDoNotHurtOtherIntakes(t *testing.T) {
	certs := peers.NewCerts(t)
	intake := intaketest.NewHTTPS(t)
	junkPort, goodPort, tlsPort := apptest.FreePort(t, "udp"), apptest.FreePort(t, "udp"), apptest.FreePort(t, "tcp")
	const maxConns = 4
	a := newApp(t, "intakes:\n"+netflowIntake("Junk", junkPort, testKey, intake)+netflowIntake("Good", goodPort, testKey, intake)+
		fmt.Sprintf("  - name: Secure\n    protocol: tls\n    port: %d\n    intake_key: %s\n    max_connections: %d\n    output: {transport: https, endpoint: %q, ca_file: %q}\ncerts_dir: %s\n",
			tlsPort, tlsKey, maxConns, intake.URL, intake.CAFile, certs.Dir))

	// Stalled and garbage TLS connections, more than max_connections.
	addr := fmt.Sprintf("127.0.0.1:%d", tlsPort)
	var stalled []net.Conn
	for range 5 * maxConns {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		stalled = append(stalled, c)
	}
	for range 3 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_, _ = c.Write([]byte("GET / HTTP/1.0\r\n\r\n"))
	}
	// Junk datagrams: random bytes after a v9 or IPFIX version, and v5
	// headers announcing more records than follow.
	junk, err := net.Dial("udp", fmt.Sprintf("127.0.0.1:%d", junkPort))
	if err != nil {
		t.Fatal(err)
	}
	defer junk.Close()
	r := rand.New(rand.NewPCG(1, 2))
	const junkDatagrams = 2000
	for i := range junkDatagrams {
		var d []byte
		if i%2 == 0 {
			d = make([]byte, 2+r.IntN(1400))
			for j := range d {
				d[j] = byte(r.Uint32())
			}
			d[0], d[1] = 0, byte(9+r.IntN(2)) // v9 or IPFIX, nonsense
		} else {
			full := testtraffic.NetFlowV5(nil, []uint32{1, 2, 3, 4, 5}, 0, time.Now())
			d = full[:24+r.IntN(4*48)]
		}
		_, _ = junk.Write(d)
		if i%100 == 0 {
			time.Sleep(time.Millisecond)
		}
	}
	// Meanwhile the good intake streams and a good TLS sender logs.
	stream := testtraffic.NewV5Stream(t, goodPort, 1)
	for range 20 {
		stream.Send(300)
		time.Sleep(10 * time.Millisecond)
	}
	sender := tlsSender(t, certs, addr)
	const logs = 200
	for i := range logs {
		msg := fmt.Sprintf("<13>1 - host app - - - good sender %d", i)
		if _, err := fmt.Fprintf(sender, "%d %s", len(msg), msg); err != nil {
			t.Fatal(err)
		}
	}
	want := stream.Sent() + logs
	events := intake.WaitEvents(t, want, 60*time.Second)
	flows, secure := []intaketest.Event{}, map[string]int{}
	for _, e := range events {
		if strings.HasPrefix(e.Event, "good sender ") {
			secure[e.Event]++
			continue
		}
		flows = append(flows, e)
	}
	if dups := testtraffic.CheckIDs(t, testtraffic.IDsOf(t, flows), 1, uint32(stream.Sent())+1); dups != 0 {
		t.Errorf("%d duplicate flows", dups)
	}
	for i := range logs {
		if n := secure[fmt.Sprintf("good sender %d", i)]; n != 1 {
			t.Errorf("log %d of the good TLS sender arrived %d times", i, n)
		}
	}
	// Every junk datagram was read; none made a record. The truncated ones
	// are counted as malformed; random bytes may also pass for data sets
	// of templates never sent.
	if !apptest.Eventually(10*time.Second, func() bool {
		return a.proc.Metric("flowgate_received_packets_total", `intake="Junk"`) == junkDatagrams
	}) {
		t.Errorf("%v junk datagrams received, want %d", a.proc.Metric("flowgate_received_packets_total", `intake="Junk"`), junkDatagrams)
	}
	if n := a.proc.Metric("flowgate_decoded_events_total", `intake="Junk"`); n != 0 {
		t.Errorf("%v records decoded from junk", n)
	}
	if n := a.proc.Metric("flowgate_dropped_packets_total", `intake="Junk"`); n < junkDatagrams/2 {
		t.Errorf("%v junk datagrams counted as dropped, want %d at least", n, junkDatagrams/2)
	}
	if d := a.proc.Metric("flowgate_dropped_packets_total", `intake="Good"`); d != 0 {
		t.Errorf("%v datagrams of the good intake dropped", d)
	}
	// The stalled handshakes are ended: the oldest for newer ones, the
	// rest by the handshake timeout (10 s). Each bad connection is counted.
	for i, c := range stalled {
		_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
		if _, err := c.Read(make([]byte, 1)); err == nil || isTimeout(err) {
			t.Errorf("stalled connection %d still open: %v", i, err)
		}
	}
	bad := float64(len(stalled) + 3)
	if !apptest.Eventually(5*time.Second, func() bool {
		return a.proc.Metric("flowgate_refused_connections_total", `intake="Secure"`) == bad
	}) {
		t.Errorf("%v refused connections counted, want %v", a.proc.Metric("flowgate_refused_connections_total", `intake="Secure"`), bad)
	}
	if status, body := a.proc.Get("/readyz"); status != 200 {
		t.Errorf("/readyz %d %s", status, body)
	}
}

// tlsSender connects to a tls intake as a sender trusting the test CA.
func tlsSender(t *testing.T, certs *peers.Certs, addr string) *tls.Conn {
	t.Helper()
	pem, err := os.ReadFile(certs.CA)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pem)
	c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: roots, ServerName: "localhost"})
	if err != nil {
		t.Fatalf("a good TLS sender: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

// The intake refuses the key: the intake pauses, keeps its records, says
// why on /readyz and in its metrics, and resumes by itself once the key
// works (it tries every 30 s).
func TestARefusedKeyPausesTheIntakeUntilItWorks(t *testing.T) {
	// It waits on peers most of its time: it runs beside others.
	t.Parallel()
	if testing.Short() {
		t.Skip("waits for a 30-second probe")
	}
	intake := intaketest.NewHTTPS(t)
	var mu sync.Mutex
	status := 401
	intake.RefuseEvents(func([]string) int {
		mu.Lock()
		defer mu.Unlock()
		return status
	})
	port := apptest.FreePort(t, "udp")
	a := newApp(t, "intakes:\n"+netflowIntake("Routers", port, testKey, intake))
	stream := testtraffic.NewV5Stream(t, port, 1)
	stream.Send(3000)
	var body string
	if !apptest.Eventually(20*time.Second, func() bool {
		var code int
		code, body = a.proc.Get("/readyz")
		return code == 503 && strings.Contains(body, `output of "Routers": paused: the intake refused the key (401)`)
	}) {
		t.Fatalf("/readyz says %q", body)
	}
	if v := a.proc.Metric("flowgate_ship_paused", `intake="Routers"`); v != 1 {
		t.Fatalf("flowgate_ship_paused = %v", v)
	}
	if n := strings.Count(a.proc.Stderr.String(), "the intake refused the key: shipping paused"); n != 1 {
		t.Fatalf("the pause was logged %d times", n)
	}
	stream.Send(3000) // kept while paused
	if !apptest.Eventually(10*time.Second, func() bool { return a.proc.Metric("flowgate_buffered_events_total") == 6000 }) {
		t.Fatalf("%v records buffered while paused", a.proc.Metric("flowgate_buffered_events_total"))
	}
	mu.Lock()
	status = 0
	mu.Unlock()
	if dups := stream.Check(t, intake.WaitEvents(t, 6000, 60*time.Second)); dups != 0 {
		t.Fatalf("%d duplicates", dups)
	}
	if !apptest.Eventually(10*time.Second, func() bool { code, _ := a.proc.Get("/readyz"); return code == 200 }) {
		t.Fatal("/readyz still fails after the key worked")
	}
	if v := a.proc.Metric("flowgate_ship_paused", `intake="Routers"`); v != 0 {
		t.Fatalf("flowgate_ship_paused = %v after resuming", v)
	}
}

// MEMORY_MESSAGES sets the Go runtime's memory limit, unless GOMEMLIMIT
// is set.
func TestMemoryMessagesSetsTheMemoryLimit(t *testing.T) {
	intake := intaketest.NewHTTPS(t)
	body := "intakes:\n" + netflowIntake("Routers", apptest.FreePort(t, "udp"), testKey, intake)
	a := newApp(t, body, "MEMORY_MESSAGES=100000")
	if got, want := a.proc.Metric("go_gc_gomemlimit_bytes"), float64(memoryBaseBytes+100000*memoryPerEventBytes); got != want {
		t.Errorf("memory limit %v with MEMORY_MESSAGES=100000, want %v", got, want)
	}
	if err := a.proc.Stop(30 * time.Second); err != nil {
		t.Fatal(err)
	}
	a.restart(t, "MEMORY_MESSAGES=100000", "GOMEMLIMIT=300MiB")
	if got := a.proc.Metric("go_gc_gomemlimit_bytes"); got != 300<<20 {
		t.Errorf("memory limit %v with GOMEMLIMIT=300MiB", got)
	}
	a.waitLog(t, `msg="memory limit from GOMEMLIMIT" limit=300MiB`, time.Second)
}
