package config

import (
	"strings"
	"testing"
)

func TestIntakeFormat(t *testing.T) {
	env := func(string) (string, bool) { return "", false }
	parse := func(intake string) (*Config, error) {
		yaml := "intakes:\n  - name: A\n    intake_key: KEY12345678\n" + intake + "output:\n  transport: file\n  path: out.jsonl\n"
		return Parse([]byte(yaml), "intakes.yaml", t.TempDir(), env)
	}
	for _, tc := range []struct {
		intake, want, err string
	}{
		{"    protocol: netflow\n    port: 2055\n", FormatIPFIX, ""},
		{"    protocol: sflow\n    port: 6343\n    format: GoFlow2\n", FormatGoFlow2, ""},
		{"    protocol: netflow\n    port: 2055\n    format: ipfix\n", FormatIPFIX, ""},
		{"    protocol: sflow\n    port: 6343\n    format: nfdump\n", "", `line 2: intake "A": unknown format "nfdump" (ipfix or goflow2)`},
		{"    protocol: udp\n    port: 514\n    format: goflow2\n", "", `line 2: intake "A": format applies to netflow and sflow intakes only`},
		{"    stats: true\n    format: goflow2\n", "", `line 2: intake "A": format applies to netflow and sflow intakes only`},
	} {
		c, err := parse(tc.intake)
		switch {
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%q: error %v, want %q", tc.intake, err, tc.err)
		case tc.err == "" && err != nil:
			t.Errorf("%q: %v", tc.intake, err)
		case tc.err == "" && c.Intakes[0].Flow.Format != tc.want:
			t.Errorf("%q: format %q, want %q", tc.intake, c.Intakes[0].Flow.Format, tc.want)
		}
	}
}
