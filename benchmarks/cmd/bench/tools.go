package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/flowgate/flowgate/benchmarks/internal/cpugroup"
	"github.com/flowgate/flowgate/benchmarks/internal/ident"
	"github.com/flowgate/flowgate/benchmarks/internal/procstat"
	"github.com/flowgate/flowgate/benchmarks/internal/report"
	"github.com/flowgate/flowgate/benchmarks/internal/sink"
	"github.com/flowgate/flowgate/enrich/enrichtest"
	"github.com/maxmind/mmdbwriter/mmdbtype"
)

// stepEnv is where one step runs: a fresh directory, ports and run number.
type stepEnv struct {
	dir string
	// port receives the traffic (UDP for flows, TCP for syslog); httpPort
	// is flowgate's monitoring listener.
	port, httpPort int
	run            uint16
	// proto is what the tool is asked to receive: netflow, sflow, tcp or tls.
	proto   string
	rate    float64
	profile bool
	proc    *proc
	file    *fileCounter
	// group holds the tool's processes, when the run counts CPU by cgroup.
	group *cpugroup.Group
}

// cpu is the CPU the step's tool used so far: its cgroup's, or that of
// its processes alive now.
func (e *stepEnv) cpu() (time.Duration, error) {
	if e.group != nil {
		return e.group.CPU()
	}
	return procstat.CPU(e.proc.pid())
}

// delivery is what came out of a tool so far for the step's run.
type delivery struct {
	unique, duplicates uint64
	// lastNs is when the last event came out (Unix nanoseconds).
	lastNs       int64
	p50Ms, p99Ms int64
}

// tool is a collector under test.
type tool struct {
	name string
	// launch starts it for a step and waits until it receives.
	launch func(ctx context.Context, e *stepEnv) error
	// delivered says what came out so far; final is true once the tool
	// has stopped and its output can be read whole.
	delivered func(e *stepEnv, final bool) (delivery, error)
	// forks is true for a tool of several processes.
	forks bool
	// writeEvery is how long the tool holds what it decoded before it
	// writes it out, by its configuration: the drain may take that
	// much longer.
	writeEvery time.Duration
	// logged says, once the tool stopped, what its log says it lost, for
	// the step's note. Nil: it says nothing of it.
	logged func(e *stepEnv) []string
}

// waitFor polls cond until it is true, the tool exits or timeout passes.
func waitFor(ctx context.Context, p *proc, timeout time.Duration, what string, cond func() bool) error {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if p.exited() {
			return fmt.Errorf("%s exited before %s: %s", p.name, what, p.stderr.lastLines(5))
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: not %s after %s: %s", p.name, what, timeout, p.stderr.lastLines(5))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return nil
}

func (b *bench) geoASN() string     { return filepath.Join(b.work, "GeoLite2-ASN.mmdb") }
func (b *bench) geoCountry() string { return filepath.Join(b.work, "GeoLite2-Country.mmdb") }

// writeGeoDBs writes the databases of -enrich: every flow's source (10/8,
// as /20s, records shared as real databases share them) and destination
// (198.18/16) is known, so each lookup walks the tree and finds a record.
func (b *bench) writeGeoDBs() error {
	asn, country := map[string]mmdbtype.Map{}, map[string]mmdbtype.Map{}
	countries := []string{"FR", "DE", "US", "GB", "NL", "ES", "IT", "JP"}
	for i := range 4096 {
		cidr := fmt.Sprintf("10.%d.%d.0/20", i>>4, i&15<<4)
		asn[cidr] = enrichtest.ASN(uint32(64512+i%64), fmt.Sprintf("Bench AS %d", i%64))
		country[cidr] = enrichtest.Country(countries[i%len(countries)])
	}
	asn["198.18.0.0/16"] = enrichtest.ASN(64999, "Bench destinations")
	country["198.18.0.0/16"] = enrichtest.Country("FR")
	if err := enrichtest.Write(b.geoASN(), "GeoLite2-ASN", asn); err != nil {
		return err
	}
	return enrichtest.Write(b.geoCountry(), "GeoLite2-Country", country)
}

// readyTimeout bounds a tool's start.
const readyTimeout = 60 * time.Second

// flowgateTool runs the appliance built from this tree, shipping over
// HTTPS to the sink.
func (b *bench) flowgateTool() *tool {
	return &tool{
		name: report.Flowgate,
		launch: func(ctx context.Context, e *stepEnv) error {
			cfg := fmt.Sprintf(`intakes:
  - name: Bench
    protocol: %s
    port: %d
    intake_key: benchmark-intake-key
output:
  transport: https
  endpoint: %s
  ca_file: %s
buffer:
  dir: %s
  disk_space: 16g
http:
  listen: 127.0.0.1:%d
  pprof: %t
`, e.proto, e.port, b.sinkURL, b.sinkCA, filepath.Join(e.dir, "buffer"), e.httpPort, e.profile)
			cfg = strings.Replace(cfg, "    intake_key: benchmark-intake-key\n", "    intake_key: benchmark-intake-key\n"+b.intakeExtra, 1)
			if b.cfg.enrich {
				cfg += fmt.Sprintf("geoip:\n  asn_database: %s\n  country_database: %s\n", b.geoASN(), b.geoCountry())
			}
			if e.proto == "tls" {
				// The sink's certificate serves the syslog TLS intake too.
				cfg = strings.Replace(cfg, "    intake_key: benchmark-intake-key\n", fmt.Sprintf(
					"    intake_key: benchmark-intake-key\n    tls_cert_name: %s\n    tls_key_name: %s\n    tls_ca_name: %s\n", b.sinkCA, b.sinkKey, b.sinkCA), 1)
			}
			path := filepath.Join(e.dir, "intakes.yaml")
			if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
				return err
			}
			p, err := start("flowgate", e.dir, e.group, nil, b.bin("flowgate"), "run", "--config", path)
			if err != nil {
				return err
			}
			e.proc = p
			ready := fmt.Sprintf("http://127.0.0.1:%d/readyz", e.httpPort)
			err = waitFor(ctx, p, readyTimeout, "ready", func() bool {
				resp, err := http.Get(ready)
				if err != nil {
					return false
				}
				resp.Body.Close()
				return resp.StatusCode == http.StatusOK
			})
			// This flowgate does not have the intake yet: not measurable here.
			if err != nil && p.exited() && strings.Contains(p.stderr.String(), "not available yet") {
				why := p.stderr.lastLines(1)
				if i := strings.Index(why, "intake \""); i >= 0 {
					why = why[i:] // without the temporary file's path
				}
				return fmt.Errorf("%w: this flowgate refuses protocol: %s (%s)", errSkip, e.proto, why)
			}
			return err
		},
		delivered: func(e *stepEnv, _ bool) (delivery, error) {
			st, err := b.sinkStats(e.run)
			if err != nil {
				return delivery{}, err
			}
			return delivery{unique: st.Unique, duplicates: st.Duplicates, lastNs: st.LastNs, p50Ms: st.P50Ms, p99Ms: st.P99Ms}, nil
		},
	}
}

// goflowTool runs goflow2 writing JSON to a file, as its README shows.
func (b *bench) goflowTool() *tool {
	return &tool{
		name: "goflow2",
		launch: func(ctx context.Context, e *stepEnv) error {
			scheme := "netflow"
			if e.proto == "sflow" {
				scheme = "sflow"
			}
			out := filepath.Join(e.dir, "goflow2.json")
			e.file = &fileCounter{path: out, keys: ident.GoflowKeys, run: e.run}
			p, err := start("goflow2", e.dir, e.group, nil, b.goflow2,
				"-listen", fmt.Sprintf("%s://127.0.0.1:%d", scheme, e.port),
				"-transport", "file", "-transport.file", out, "-format", "json",
				"-addr", fmt.Sprintf("127.0.0.1:%d", e.httpPort), "-loglevel", "warn")
			if err != nil {
				return err
			}
			e.proc = p
			health := fmt.Sprintf("http://127.0.0.1:%d/__health", e.httpPort)
			return waitFor(ctx, p, readyTimeout, "collecting", func() bool {
				resp, err := http.Get(health)
				if err != nil {
					return false
				}
				resp.Body.Close()
				return resp.StatusCode == http.StatusOK
			})
		},
		delivered: func(e *stepEnv, final bool) (delivery, error) { return e.file.delivered(final) },
	}
}

// pmacctTool runs pmacct's nfacctd (sfacctd for sFlow) with its print
// plugin writing JSON to a file every second, sized for heavy load as
// pmacct's CONFIG-KEYS advises: a socket buffer as large as flowgate's, a
// large pipe to the plugin in buffered chunks, and a cache that holds a
// second of distinct flows (its buckets hold about 10 entries each).
func (b *bench) pmacctTool() *tool {
	const refresh = time.Second
	return &tool{
		name:       "nfacctd",
		forks:      true,
		writeEvery: refresh,
		launch: func(ctx context.Context, e *stepEnv) error {
			daemon, prefix := b.nfacctd, "nfacctd"
			if e.proto == "sflow" {
				daemon, prefix = b.sfacctd, "sfacctd"
			}
			out := filepath.Join(e.dir, "pmacct.json")
			e.file = &fileCounter{path: out, keys: ident.PmacctKeys, run: e.run}
			cfg := fmt.Sprintf(`daemonize: false
%[1]s_ip: 127.0.0.1
%[1]s_port: %[2]d
%[1]s_pipe_size: 33554432
logfile: %[3]s
plugins: print
aggregate: src_host, dst_host, src_port, dst_port, proto
print_output: json
print_output_file: %[4]s
print_output_file_append: true
print_refresh_time: %[6]d
print_cache_entries: %[5]d
plugin_pipe_size: 67108864
plugin_buffer_size: 65536
`, prefix, e.port, filepath.Join(e.dir, pmacctLog), out, nextPrime(max(16411, int(e.rate*1.2/10))), int(refresh.Seconds()))
			path := filepath.Join(e.dir, prefix+".conf")
			if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
				return err
			}
			p, err := start(prefix, e.dir, e.group, nil, daemon, "-f", path)
			if err != nil {
				return err
			}
			e.proc = p
			// Ready once the socket is bound and the plugin forked.
			return waitFor(ctx, p, readyTimeout, "receiving", func() bool {
				_, bound, _ := procstat.UDPDrops(e.port)
				return bound && len(procstat.Tree(p.pid())) > 1
			})
		},
		delivered: func(e *stepEnv, final bool) (delivery, error) { return e.file.delivered(final) },
		logged:    pmacctMissing,
	}
}

// pmacctMissing counts the times pmacct's plugin logged data missing: it
// did not keep up, and its core wrote over what the ring between them
// held. pmacct logs a gap only from its fourth on (MAX_RG_COUNT_ERR is 3),
// so this is a floor: nfacctd lost 10% at 213 000 IPFIX/s on 2026-12-06
// with nothing in its log nor in the kernel's drops.
func pmacctMissing(e *stepEnv) []string {
	text, err := os.ReadFile(filepath.Join(e.dir, pmacctLog))
	if err != nil {
		return []string{"log unreadable: " + err.Error()}
	}
	if n := bytes.Count(text, []byte("Missing data detected")); n > 0 {
		return []string{fmt.Sprintf("its plugin logged data missing %d times", n)}
	}
	return nil
}

// pmacctLog is pmacct's log in a step's directory.
const pmacctLog = "pmacct.log"

// fileCounter follows a collector's output file of JSON objects. While
// the collector runs it only counts objects (cheap, so as not to take CPU
// from the collector as it drains); once it stopped, it reads every
// object's identity.
type fileCounter struct {
	path string
	keys ident.Keys
	run  uint16

	size    int64
	objects uint64
	split   objects
	lastNs  int64
}

func (f *fileCounter) delivered(final bool) (delivery, error) {
	if final {
		return f.count()
	}
	err := readFrom(f.path, f.size, func(b []byte) {
		f.size += int64(len(b))
		f.objects += f.split.feed(b, nil)
		f.lastNs = time.Now().UnixNano()
	})
	return delivery{unique: f.objects, lastNs: f.lastNs, p50Ms: -1, p99Ms: -1}, err
}

// count reads the identity of every object.
func (f *fileCounter) count() (delivery, error) {
	d := delivery{lastNs: f.lastNs, p50Ms: -1, p99Ms: -1}
	var c ident.Counter
	var split objects
	err := readFrom(f.path, 0, func(b []byte) {
		split.feed(b, func(obj []byte) {
			if run, seq, ok := f.keys.FromJSON(obj); ok && run == f.run {
				c.Add(seq)
			}
		})
	})
	d.unique, d.duplicates = c.Unique, c.Duplicates
	return d, err
}

// readFrom hands fn what a file holds from offset on, a chunk at a time;
// a file not written yet holds nothing.
func readFrom(path string, offset int64, fn func([]byte)) error {
	file, err := os.Open(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return err
	}
	defer file.Close()
	if _, err := file.Seek(offset, io.SeekStart); err != nil {
		return err
	}
	buf := make([]byte, 1<<20)
	for {
		n, err := file.Read(buf)
		if n > 0 {
			fn(buf[:n])
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
	}
}

// objects splits a stream of JSON objects however they are separated:
// goflow2's workers write to its file without a lock, object and newline
// apart, so two objects may share a line.
type objects struct {
	depth      int
	inStr, esc bool
	cur        []byte
}

// feed reads the next bytes of the stream, calls fn (when not nil) with
// each object completed, and returns how many were.
func (o *objects) feed(b []byte, fn func([]byte)) uint64 {
	var n uint64
	start := 0
	for i, c := range b {
		if o.inStr {
			switch {
			case o.esc:
				o.esc = false
			case c == '\\':
				o.esc = true
			case c == '"':
				o.inStr = false
			}
			continue
		}
		switch c {
		case '"':
			o.inStr = true
		case '{':
			if o.depth == 0 {
				start = i
			}
			o.depth++
		case '}':
			if o.depth == 0 {
				continue
			}
			o.depth--
			if o.depth > 0 {
				continue
			}
			n++
			if fn == nil {
				continue
			}
			if len(o.cur) > 0 {
				o.cur = append(o.cur, b[:i+1]...)
				fn(o.cur)
				o.cur = o.cur[:0]
			} else {
				fn(b[start : i+1])
			}
		}
	}
	// An object that goes on in the next chunk.
	if fn != nil && o.depth > 0 {
		if len(o.cur) > 0 {
			o.cur = append(o.cur, b...)
		} else {
			o.cur = append(o.cur, b[start:]...)
		}
	}
	return n
}

// sinkStats asks the sink what came back for run.
func (b *bench) sinkStats(run uint16) (sink.Stats, error) {
	var st sink.Stats
	resp, err := b.sinkClient.Get(fmt.Sprintf("%s/stats?run=%d", b.sinkURL, run))
	if err != nil {
		return st, fmt.Errorf("sink: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return st, fmt.Errorf("sink: /stats answered %s", resp.Status)
	}
	return st, json.NewDecoder(resp.Body).Decode(&st)
}

// startSink starts the receiving end and a client that trusts it.
func (b *bench) startSink() error {
	ca := filepath.Join(b.work, "sink-ca.pem")
	b.sinkKey = filepath.Join(b.work, "sink-key.pem")
	ready := make(chan string, 1)
	lw := &lineWriter{line: ready}
	p, err := start("sink", b.work, nil, lw, b.bin("sink"), "-listen", "127.0.0.1:0", "-ca-out", ca, "-key-out", b.sinkKey)
	if err != nil {
		return err
	}
	b.sink = p
	var first string
	select {
	case first = <-ready:
	case <-p.done:
		return fmt.Errorf("sink exited: %s", p.stderr.lastLines(5))
	case <-time.After(30 * time.Second):
		return fmt.Errorf("sink: no address after 30 s")
	}
	var hello struct {
		URL    string `json:"url"`
		CAFile string `json:"ca_file"`
	}
	if err := json.Unmarshal([]byte(first), &hello); err != nil {
		return fmt.Errorf("sink said %q: %w", first, err)
	}
	pem, err := os.ReadFile(hello.CAFile)
	if err != nil {
		return err
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pem)
	b.sinkURL, b.sinkCA = hello.URL, hello.CAFile
	b.sinkClient = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}}
	return nil
}

// lineWriter hands on the first line written to it.
type lineWriter struct {
	line chan string
	buf  []byte
	sent bool
}

func (w *lineWriter) Write(p []byte) (int, error) {
	if !w.sent {
		w.buf = append(w.buf, p...)
		if i := bytes.IndexByte(w.buf, '\n'); i >= 0 {
			w.line <- string(w.buf[:i])
			w.sent = true
		}
	}
	return len(p), nil
}

// freePort returns a loopback port free for network ("udp" or "tcp").
func freePort(network string) (int, error) {
	if network == "udp" {
		c, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		defer c.Close()
		return c.LocalAddr().(*net.UDPAddr).Port, nil
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// metric sums the samples of a Prometheus counter in flowgate's /metrics.
func metric(text, name string) float64 {
	return metricWithout(text, name, "")
}

// metricWithout is metric without the samples that carry label (as
// `reason="kernel"`); an empty label leaves none out.
func metricWithout(text, name, label string) float64 {
	var sum float64
	for _, line := range strings.Split(text, "\n") {
		rest, ok := strings.CutPrefix(line, name)
		if !ok || (rest != "" && rest[0] != '{' && rest[0] != ' ') || (label != "" && strings.Contains(rest, label)) {
			continue
		}
		if i := strings.LastIndexByte(rest, ' '); i >= 0 {
			v, _ := strconv.ParseFloat(rest[i+1:], 64)
			sum += v
		}
	}
	return sum
}

// stopSignal is how the tools are asked to stop: all of them stop cleanly
// on SIGINT, nfacctd writing out the partial buffer it holds; nfacctd
// 1.7.7 does not stop on SIGTERM.
var stopSignal = syscall.SIGINT

// nextPrime is the smallest prime from n on (pmacct wants a prime number
// of cache buckets).
func nextPrime(n int) int {
	for ; ; n++ {
		prime := n > 1
		for d := 2; d*d <= n && prime; d++ {
			prime = n%d != 0
		}
		if prime {
			return n
		}
	}
}
