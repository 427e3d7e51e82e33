package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flowgate/flowgate/benchmarks/internal/ident"
)

func TestObjectsSplitsGluedAndChunkedObjects(t *testing.T) {
	// As goflow2's workers write: objects and newlines interleaved, one
	// object's string holding braces and an escaped quote.
	stream := `{"a":1}{"b":"x}{\"y"}` + "\n\n" + `{"c":{"d":2}}` + "\n" + `{"e":3}`
	for chunk := 1; chunk <= len(stream); chunk++ {
		var o objects
		var got []string
		var n uint64
		for i := 0; i < len(stream); i += chunk {
			n += o.feed([]byte(stream[i:min(i+chunk, len(stream))]), func(obj []byte) { got = append(got, string(obj)) })
		}
		want := []string{`{"a":1}`, `{"b":"x}{\"y"}`, `{"c":{"d":2}}`, `{"e":3}`}
		if n != 4 || strings.Join(got, "|") != strings.Join(want, "|") {
			t.Fatalf("chunks of %d: %d objects %q", chunk, n, got)
		}
	}
}

func TestFileCounterCountsIdentities(t *testing.T) {
	path := filepath.Join(t.TempDir(), "out.json")
	line := func(src, dst string) string {
		return `{"type":"IPFIX","src_addr":"` + src + `","dst_addr":"` + dst + `","bytes":1}`
	}
	// Run 7: seq 1, 2 (twice, glued to another object), 3; one flow of run 8.
	text := line("10.0.0.1", "198.18.0.7") + "\n" + line("10.0.0.2", "198.18.0.7") + line("10.0.0.2", "198.18.0.7") +
		"\n\n" + line("10.0.0.3", "198.18.0.7") + "\n" + line("10.0.0.4", "198.18.0.8") + "\n"
	if err := os.WriteFile(path, []byte(text[:50]), 0o644); err != nil {
		t.Fatal(err)
	}
	f := &fileCounter{path: path, keys: ident.GoflowKeys, run: 7}
	if d, err := f.delivered(false); err != nil || d.unique != 0 {
		t.Fatalf("half an object: %+v %v", d, err)
	}
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	if d, err := f.delivered(false); err != nil || d.unique != 5 || d.lastNs == 0 {
		t.Fatalf("while running, objects: %+v %v", d, err)
	}
	d, err := f.delivered(true)
	if err != nil || d.unique != 3 || d.duplicates != 1 || d.p50Ms != -1 {
		t.Fatalf("final: %+v %v", d, err)
	}
	missing := &fileCounter{path: filepath.Join(t.TempDir(), "none.json"), keys: ident.GoflowKeys, run: 7}
	if d, err := missing.delivered(true); err != nil || d.unique != 0 {
		t.Fatalf("no file yet: %+v %v", d, err)
	}
}

func TestMetricSumsLabelledSamples(t *testing.T) {
	text := `# HELP flowgate_dropped_events_total x
flowgate_dropped_events_total{intake="a",reason="buffer_full"} 3
flowgate_dropped_events_total{intake="a",reason="encode"} 2
flowgate_dropped_events_totalx 100
flowgate_template_missing_total 7
`
	if v := metric(text, "flowgate_dropped_events_total"); v != 5 {
		t.Fatalf("dropped events %v", v)
	}
	if v := metric(text, "flowgate_template_missing_total"); v != 7 {
		t.Fatalf("template missing %v", v)
	}
	if v := metricWithout(text, "flowgate_dropped_events_total", `reason="encode"`); v != 3 {
		t.Fatalf("dropped events but encode %v", v)
	}
}

func TestNextPrime(t *testing.T) {
	for in, want := range map[int]int{16411: 16411, 16412: 16417, 24000: 24001, 2: 2, 0: 2} {
		if got := nextPrime(in); got != want {
			t.Errorf("nextPrime(%d) = %d, want %d", in, got, want)
		}
	}
}

func TestPmacctMissingCountsWhatItsPluginLogged(t *testing.T) {
	// As sfacctd 1.7.7 logs at 300 000 sFlow/s on this box.
	missed := "2026-12-06T19:21:35Z WARN ( default_print/print ): Missing data detected (plugin_buffer_size=65536 plugin_pipe_size=67108864).\n" +
		"2026-12-06T19:21:35Z WARN ( default_print/print ): Increase values or look for plugin_buffer_size, plugin_pipe_size in CONFIG-KEYS document.\n\n"
	for _, c := range []struct {
		log  string
		want string
	}{
		{"2026-12-06T19:21:27Z INFO ( default/core ): waiting for sFlow data on 127.0.0.1:52492\n", ""},
		{missed + missed + missed, "its plugin logged data missing 3 times"},
	} {
		e := &stepEnv{dir: t.TempDir()}
		if err := os.WriteFile(filepath.Join(e.dir, pmacctLog), []byte(c.log), 0o644); err != nil {
			t.Fatal(err)
		}
		if got := strings.Join(pmacctMissing(e), "; "); got != c.want {
			t.Errorf("%q for a log of %q, want %q", got, c.log, c.want)
		}
	}
	if got := pmacctMissing(&stepEnv{dir: t.TempDir()}); len(got) != 1 || !strings.HasPrefix(got[0], "log unreadable: ") {
		t.Errorf("%q for no log", got)
	}
}
