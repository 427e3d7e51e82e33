package appliance_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
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
// disk fills, or peers misbehave; each asserts on the ids that arrive at
// the local intake. (A kill -9 needs a process: cmd/flowgate tests it.)

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
		return a.Metric("flowgate_ship_failures_total") > 0 && a.Metric("flowgate_buffered_events_total") > float64(len(intake.Events())+5000)
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
	if dropped := a.Metric("flowgate_dropped_events_total"); dropped != 0 {
		t.Errorf("%v records dropped", dropped)
	}
	// A request cut by the outage may have been taken before its answer
	// was lost: its events come again.
	t.Logf("%d records sent, %d duplicates, %d failed sends while down", total, dups, int(a.Metric("flowgate_ship_failures_total")))
}

// The disk bound is reached while the intake refuses: records are dropped
// and counted, the process stays up and says it is full, and once the
// intake takes the backlog, new records are buffered again.
func TestAFullBufferDropsCountsAndRecovers(t *testing.T) {
	t.Parallel()
	intake := intaketest.NewHTTPS(t)
	intake.Refuse(func(int) (int, string) { return 503, "" })
	port := apptest.FreePort(t, "udp")
	a := newApp(t, "intakes:\n"+netflowIntake("Routers", port, testKey, intake), "DISK_SPACE=64m")
	stream := testtraffic.NewV5Stream(t, port, 1)
	full := func() float64 { return a.Metric("flowgate_dropped_events_total", `reason="buffer_full"`) }
	deadline := time.Now().Add(90 * time.Second)
	for full() == 0 {
		if time.Now().After(deadline) || stream.Sent() > 5_000_000 {
			t.Fatalf("the buffer did not fill: %d records sent, %v buffered", stream.Sent(), a.Metric("flowgate_buffered_events_total"))
		}
		for range 20 {
			stream.Send(3000)
			time.Sleep(5 * time.Millisecond)
		}
	}
	if status, body := a.Get("/healthz"); status != 200 {
		t.Fatalf("/healthz %d %s with a full buffer", status, body)
	}
	// /readyz says so for a while after the last refusal: records keep
	// coming until it is seen (a loaded machine may be slow to answer).
	var status int
	var body string
	if !apptest.Eventually(30*time.Second, func() bool {
		stream.Send(3000)
		status, body = a.Get("/readyz")
		return status == 503 && strings.Contains(body, "full")
	}) {
		t.Fatalf("/readyz %d %q with a full buffer, want 503 saying it is full", status, body)
	}
	buffered := a.Metric("flowgate_buffered_events_total")
	t.Logf("full after %d records: %v buffered, %v dropped", stream.Sent(), buffered, full())

	intake.Refuse(nil)
	if !apptest.Eventually(120*time.Second, func() bool {
		return a.Metric("flowgate_shipped_events_total") >= buffered
	}) {
		t.Fatalf("the backlog did not drain: %v shipped of %v", a.Metric("flowgate_shipped_events_total"), buffered)
	}
	// Room again: new records are buffered and shipped.
	before := a.Metric("flowgate_buffered_events_total")
	next := uint32(stream.Sent() + 1)
	stream.Send(3000)
	if !apptest.Eventually(30*time.Second, func() bool {
		return a.Metric("flowgate_buffered_events_total") == before+3000
	}) {
		t.Fatalf("after draining, %v new records buffered, want 3000", a.Metric("flowgate_buffered_events_total")-before)
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
	if status, body := a.Get("/readyz"); status != 200 {
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
	t.Parallel()
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
		return a.Metric("flowgate_received_packets_total", `intake="Junk"`) == junkDatagrams
	}) {
		t.Errorf("%v junk datagrams received, want %d", a.Metric("flowgate_received_packets_total", `intake="Junk"`), junkDatagrams)
	}
	if n := a.Metric("flowgate_decoded_events_total", `intake="Junk"`); n != 0 {
		t.Errorf("%v records decoded from junk", n)
	}
	if n := a.Metric("flowgate_dropped_packets_total", `intake="Junk"`); n < junkDatagrams/2 {
		t.Errorf("%v junk datagrams counted as dropped, want %d at least", n, junkDatagrams/2)
	}
	if d := a.Metric("flowgate_dropped_packets_total", `intake="Good"`); d != 0 {
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
		return a.Metric("flowgate_refused_connections_total", `intake="Secure"`) == bad
	}) {
		t.Errorf("%v refused connections counted, want %v", a.Metric("flowgate_refused_connections_total", `intake="Secure"`), bad)
	}
	if status, body := a.Get("/readyz"); status != 200 {
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
		code, body = a.Get("/readyz")
		return code == 503 && strings.Contains(body, `output of "Routers": paused: the intake refused the key (401)`)
	}) {
		t.Fatalf("/readyz says %q", body)
	}
	if v := a.Metric("flowgate_ship_paused", `intake="Routers"`); v != 1 {
		t.Fatalf("flowgate_ship_paused = %v", v)
	}
	if n := strings.Count(a.Stderr.String(), "the intake refused the key: shipping paused"); n != 1 {
		t.Fatalf("the pause was logged %d times", n)
	}
	stream.Send(3000) // kept while paused
	if !apptest.Eventually(10*time.Second, func() bool { return a.Metric("flowgate_buffered_events_total") == 6000 }) {
		t.Fatalf("%v records buffered while paused", a.Metric("flowgate_buffered_events_total"))
	}
	mu.Lock()
	status = 0
	mu.Unlock()
	if dups := stream.Check(t, intake.WaitEvents(t, 6000, 60*time.Second)); dups != 0 {
		t.Fatalf("%d duplicates", dups)
	}
	if !apptest.Eventually(10*time.Second, func() bool { code, _ := a.Get("/readyz"); return code == 200 }) {
		t.Fatal("/readyz still fails after the key worked")
	}
	if v := a.Metric("flowgate_ship_paused", `intake="Routers"`); v != 0 {
		t.Fatalf("flowgate_ship_paused = %v after resuming", v)
	}
}
