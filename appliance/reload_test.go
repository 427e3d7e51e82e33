package appliance_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flowgate/flowgate/appliance/appliancetest"
	"github.com/flowgate/flowgate/internal/apptest"
	"github.com/flowgate/flowgate/internal/intaketest"
	"github.com/flowgate/flowgate/internal/peers"
	"github.com/flowgate/flowgate/internal/testtraffic"
)

const testKey = "ReloadTestIntakeKey0123456789abc"

// reloadBound is how long a reload may take before the test calls it
// stuck: a deadlock detector, far above what a reload takes.
const reloadBound = 30 * time.Second

// Hundreds of reloads alternate configurations that add, remove and
// change intakes of every kind (tcp, udp and tls syslog, netflow, sflow,
// a stats intake at 1 s), and move ports between intakes, while a
// netflow intake that never changes streams records and /metrics and
// /status.json are read all along. Every reload finishes, every record
// of the stream arrives once, and the goroutines return to their number
// before the reloads.
//
// Beside the package's other tests it found that a stream intake's port
// could still be bound when its Run returned (a reload moving a port from
// the tls intake to the tcp one got "address already in use").
func TestReloadsUnderTrafficLoseNothing(t *testing.T) {
	t.Parallel()
	reloads := 200
	if testing.Short() {
		reloads = 40
	}
	stable := intaketest.NewHTTPS(t)
	certs := peers.NewCerts(t)
	dir := t.TempDir()
	port := func(network string) int { return apptest.FreePort(t, network) }
	pStable, pTCP, pTLS := port("udp"), port("tcp"), port("tcp")
	pUDP, pFlow, pSFlow := port("udp"), port("udp"), port("udp")
	out := func(name string) string {
		return fmt.Sprintf("    output: {transport: file, path: %q}\n", filepath.Join(dir, name+".out"))
	}
	intake := func(name, proto string, port int, extra string) string {
		return fmt.Sprintf("  - name: %s\n    protocol: %s\n    port: %d\n    intake_key: %s\n%s", name, proto, port, testKey, extra) + out(name)
	}
	stableIntake := fmt.Sprintf("  - name: Stable\n    protocol: netflow\n    port: %d\n    intake_key: %s\n    output: {transport: https, endpoint: %q, ca_file: %q}\n",
		pStable, testKey, stable.URL, stable.CAFile)
	stats := func(interval string) string {
		return fmt.Sprintf("  - name: Monitoring\n    stats: true\n    interval: %s\n    intake_key: %s\n", interval, testKey) + out("Monitoring")
	}
	tls := "    tls_key_name: server\n    tls_cert_name: server\n    tls_ca_name: ca\n"
	tail := fmt.Sprintf("certs_dir: %s\n", certs.Dir)
	configs := []string{
		// Every kind.
		"intakes:\n" + stableIntake + intake("Tcp", "tcp", pTCP, "") + intake("Udp", "udp", pUDP, "") + intake("Tls", "tls", pTLS, tls) +
			intake("Flows", "netflow", pFlow, "") + intake("SFlow", "sflow", pSFlow, "") + stats("1s"),
		// Changed: queue sizes, the stats interval; the udp and netflow
		// intakes swap ports; sflow gone.
		"intakes:\n" + stableIntake + intake("Tcp", "tcp", pTCP, "    queue_size: 5000\n") + intake("Udp", "udp", pFlow, "") +
			intake("Tls", "tls", pTLS, tls+"    max_connections: 5\n") + intake("Flows", "netflow", pUDP, "") + stats("2s"),
		// Few: the stream and the stats; tcp's port taken by tls.
		"intakes:\n" + stableIntake + intake("Tls", "tls", pTCP, tls) + stats("1s"),
	}
	write := func(body string) string {
		t.Helper()
		return apptest.WriteConfig(t, dir, body+tail, "127.0.0.1:0")
	}
	// The goroutines of this test, and all the appliance starts, carry its
	// label: other tests of the package run beside it, and their appliances
	// come and go.
	pprof.SetGoroutineLabels(pprof.WithLabels(context.Background(), pprof.Labels(goroutineLabel, t.Name())))
	defer pprof.SetGoroutineLabels(context.Background())
	path := write(configs[0])
	app := appliancetest.Start(t, path)
	// The baseline: the first configuration, before any traffic or reader.
	before := goroutines(t)

	stream := testtraffic.NewV5Stream(t, pStable, 1)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	streamDone := stream.Run(ctx, 5)
	// Datagrams at the udp and netflow intakes' ports, whichever intake
	// holds them at the time (or none).
	var senders sync.WaitGroup
	for _, p := range []int{pUDP, pFlow} {
		conn, err := net.DialUDP("udp", nil, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: p})
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		senders.Go(func() {
			tick := time.NewTicker(5 * time.Millisecond)
			defer tick.Stop()
			for ctx.Err() == nil {
				<-tick.C
				_, _ = conn.Write([]byte("<13>1 - host app - - - a message during the reloads"))
			}
		})
	}
	var readers sync.WaitGroup
	var readErrs []string
	var mu sync.Mutex
	reads := 0
	client := &http.Client{Timeout: reloadBound, Transport: &http.Transport{DisableKeepAlives: true}}
	readers.Go(func() {
		for ctx.Err() == nil {
			for _, p := range []string{"/metrics", "/status.json"} {
				resp, err := client.Get("http://" + app.HTTP + p)
				mu.Lock()
				reads++
				if err != nil {
					readErrs = append(readErrs, fmt.Sprintf("%s: %v", p, err))
				} else if resp.StatusCode != http.StatusOK {
					readErrs = append(readErrs, fmt.Sprintf("%s: %s", p, resp.Status))
				}
				mu.Unlock()
				if resp != nil {
					resp.Body.Close()
				}
			}
		}
	})

	start := time.Now()
	var slowest time.Duration
	for i := 1; i <= reloads; i++ {
		write(configs[i%len(configs)])
		began := time.Now()
		done := make(chan error, 1)
		go func() { done <- app.Reload() }()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("reload %d: %v", i, err)
			}
		case <-time.After(reloadBound):
			t.Fatalf("reload %d did not finish within %s", i, reloadBound)
		}
		slowest = max(slowest, time.Since(began))
	}
	took := time.Since(start)
	// Back to the first configuration for the count of goroutines.
	write(configs[0])
	if err := app.Reload(); err != nil {
		t.Fatal(err)
	}
	cancel()
	<-streamDone
	senders.Wait()
	readers.Wait()
	t.Logf("%d reloads in %s (slowest %s), %d reads, %d records streamed", reloads, took.Round(time.Millisecond), slowest.Round(time.Millisecond), reads, stream.Sent())
	mu.Lock()
	if len(readErrs) > 0 {
		t.Errorf("%d of %d reads failed during the reloads, first: %s", len(readErrs), reads, strings.Join(readErrs[:min(len(readErrs), 5)], "; "))
	}
	mu.Unlock()
	if dups := stream.Check(t, stable.WaitEvents(t, stream.Sent(), 60*time.Second)); dups != 0 {
		t.Errorf("%d duplicates from an intake no reload touched", dups)
	}
	// The shippers' connections to the intake stay open while idle (90 s),
	// up to one per worker: the intake ends them, as a real one does when
	// idle. What a reload leaks does not end.
	stable.CloseConnections()
	const slack = 10
	var after map[string]int
	if !apptest.Eventually(30*time.Second, func() bool { after = goroutines(t); return total(after) <= total(before)+slack }) {
		t.Fatalf("%d goroutines of the test after the reloads, %d before; those that grew:\n%s", total(after), total(before), grown(before, after))
	}
}

// goroutineLabel is the pprof label that marks a test's goroutines.
const goroutineLabel = "test"

// goroutines counts the goroutines labelled with t's name (those of the
// test's goroutine and of every goroutine started from them) by stack.
func goroutines(t *testing.T) map[string]int {
	t.Helper()
	var b strings.Builder
	if err := pprof.Lookup("goroutine").WriteTo(&b, 1); err != nil {
		t.Fatal(err)
	}
	// A line of totals, then groups of identical stacks apart by blank
	// lines: "N @ pc…", "# labels: {…}" if any, then a line per frame.
	_, groups, _ := strings.Cut(b.String(), "\n")
	label := fmt.Sprintf(`"%s":%q`, goroutineLabel, t.Name())
	counts := map[string]int{}
	for _, group := range strings.Split(groups, "\n\n") {
		head, rest, _ := strings.Cut(group, "\n")
		count, _, ok := strings.Cut(head, " @ ")
		labels, frames, _ := strings.Cut(rest, "\n")
		if !ok || !strings.HasPrefix(labels, "# labels: ") || !strings.Contains(labels, label) {
			continue
		}
		n, _ := strconv.Atoi(count)
		counts[frames] += n
	}
	return counts
}

func total(counts map[string]int) int {
	n := 0
	for _, c := range counts {
		n += c
	}
	return n
}

// grown lists the stacks that have more goroutines after than before.
func grown(before, after map[string]int) string {
	var b strings.Builder
	for stack, n := range after {
		if n > before[stack] {
			fmt.Fprintf(&b, "%d more of\n%s\n\n", n-before[stack], stack)
		}
	}
	return b.String()
}
