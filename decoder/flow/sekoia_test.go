package flow

import (
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// sekoiaField is one row of the table of what Sekoia's NetFlow parser
// reads, in the README.
type sekoiaField struct {
	name string
	keys []string
	// required: "always", a list of transport protocols, or "" (optional).
	required string
}

// readSekoiaTable reads the table between the README's sekoia-fields
// markers: the one place the docs and this test share.
func readSekoiaTable(t *testing.T) []sekoiaField {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	begin, end := strings.Index(s, "<!-- sekoia-fields: begin -->"), strings.Index(s, "<!-- sekoia-fields: end -->")
	if begin < 0 || end < begin {
		t.Fatal("README.md: no sekoia-fields table")
	}
	var rows []sekoiaField
	for _, line := range strings.Split(s[begin:end], "\n")[3:] {
		cells := strings.Split(line, "|")
		if len(cells) != 5 {
			continue
		}
		r := sekoiaField{name: strings.TrimSpace(cells[1]), required: strings.TrimSpace(cells[3])}
		for _, k := range strings.Split(cells[2], ",") {
			if k = strings.Trim(strings.TrimSpace(k), "`"); k != "" {
				r.keys = append(r.keys, k)
			}
		}
		rows = append(rows, r)
	}
	if len(rows) < 9 {
		t.Fatalf("README.md: sekoia-fields table has %d rows", len(rows))
	}
	return rows
}

// transportNames are the protocols the table names, by number.
var transportNames = map[float64]string{6: "TCP", 17: "UDP", 132: "SCTP"}

// sflowCorpus returns the sFlow datagrams pmacctd's sfprobe exported
// (the seed corpus of FuzzDecodeSFlow).
func sflowCorpus(t *testing.T) [][]byte {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "fuzz", "FuzzDecodeSFlow", "pmacctd-sfprobe-*"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no sFlow corpus: %v", err)
	}
	var out [][]byte
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSpace(string(b)), "\n")
		v, err := strconv.Unquote(strings.TrimSuffix(strings.TrimPrefix(lines[1], "[]byte("), ")"))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		out = append(out, []byte(v))
	}
	return out
}

// TestSekoiaParserCoverage checks that every flow event of every capture
// and crafted vendor datagram of the tests gives Sekoia's parser what it
// needs: each required field of the README's table is mapped, from a key
// with a usable value.
func TestSekoiaParserCoverage(t *testing.T) {
	table := readSekoiaTable(t)
	sources := map[string][][]byte{
		"nsel":         nselDatagrams(),
		"ipfix-vendor": ipfixVendorDatagrams(),
		"paloalto-v9":  paloAltoDatagrams(),
		"enterprise":   enterpriseDatagrams(),
	}
	for _, file := range []string{"softflowd-v5.pcap", "softflowd-v9.pcap", "softflowd-v9-sampled5.pcap",
		"softflowd-ipfix.pcap", "softflowd-ipfix-sampled5.pcap", "pmacct-v9.pcap", "pmacct-ipfix-sampled4.pcap"} {
		sources[file] = readPcap(t, filepath.Join("testdata", file))
	}
	total := 0
	for name, datagrams := range sources {
		evs := events(t, datagrams)
		if len(evs) == 0 {
			t.Fatalf("%s: no events", name)
		}
		for i, ev := range evs {
			checkSekoia(t, name, i, ev, table)
		}
		total += len(evs)
	}
	sflow := sflowEvents(t, sflowCorpus(t))
	for i, ev := range sflow {
		checkSekoia(t, "pmacctd-sfprobe", i, ev, table)
	}
	t.Logf("%d NetFlow/IPFIX events and %d sFlow events checked", total, len(sflow))
}

// checkSekoia checks one event against the table's required rows.
func checkSekoia(t *testing.T, source string, i int, ev map[string]any, table []sekoiaField) {
	t.Helper()
	proto, _ := ev["protocolIdentifier"].(float64)
	for _, row := range table {
		switch row.required {
		case "":
			continue
		case "always":
		default:
			if !strings.Contains(row.required, transportNames[proto]) || transportNames[proto] == "" {
				continue
			}
		}
		if !mapped(row, ev) {
			t.Errorf("%s event %d: nothing for %s (keys %v): %v", source, i, row.name, row.keys, ev)
		}
	}
}

// mapped says whether the parser finds a value for row in ev: a key
// present, an address that parses for the .ip fields, a time after 2000
// for event times.
func mapped(row sekoiaField, ev map[string]any) bool {
	for _, k := range row.keys {
		v, ok := ev[k]
		if !ok {
			continue
		}
		switch {
		case strings.HasSuffix(row.name, ".ip"):
			s, _ := v.(string)
			if _, err := netip.ParseAddr(s); err == nil {
				return true
			}
		case strings.HasPrefix(row.name, "event."):
			if n, _ := v.(float64); n > 946684800 {
				return true
			}
		default:
			if _, ok := v.(float64); ok {
				return true
			}
		}
	}
	return false
}
