package config

import (
	"strings"
	"testing"
)

// TestOutputsList: an intake's outputs: list resolves each item as output:
// would (transport by the intake's kind, endpoint from REGION, paths from
// the file's folder), names the unnamed by position, and makes Output the
// first; the top-level list serves the intakes without their own.
func TestOutputsList(t *testing.T) {
	c, dir, err := load(t, `
intakes:
  - name: fw
    protocol: tcp
    port: 20516
    intake_key: KEY
    outputs:
      - {}
      - {name: archive, transport: file, path: fw.jsonl}
      - {transport: http, preset: loggly}
  - {name: routers, protocol: netflow, port: 2055, intake_key: KEY}
outputs:
  - {transport: https}
  - {name: local, transport: file, path: "-"}
`, map[string]string{"REGION": "fra2"})
	if err != nil {
		t.Fatal(err)
	}
	fw, routers := c.Intakes[0], c.Intakes[1]
	var got []string
	for _, o := range fw.Outputs {
		got = append(got, o.Name+" "+o.Transport+" "+o.Endpoint+o.URL+o.Path)
	}
	want := []string{"1 syslog intake.fra2.sekoia.io:10514", "archive file " + dir + "/fw.jsonl",
		"3 http https://logs-01.loggly.com/bulk/{key}/tag/flowgate/"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("fw's outputs %q, want %q", got, want)
	}
	if fw.Output != &c.Intakes[0].Outputs[0] {
		t.Error("Output is not the first of Outputs")
	}
	got = nil
	for _, o := range routers.Outputs {
		got = append(got, o.Name+" "+o.Transport+" "+o.Endpoint+o.Path)
	}
	want = []string{"1 https https://intake.fra2.sekoia.io/api/v1/intake-http", "local file -"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("routers' outputs %q, want %q", got, want)
	}
}

// TestOutputsRefused: the mistakes of an outputs: list are said with their
// lines, the intake, and what to do.
func TestOutputsRefused(t *testing.T) {
	for _, tc := range []struct{ name, yaml, want string }{
		{"output and outputs on an intake", `
intakes:
  - name: a
    protocol: tcp
    port: 514
    intake_key: KEY
    output: {transport: relp}
    outputs:
      - {transport: syslog}
`, `line 8: intake "a": output and outputs (line 7) both given: outputs: lists every output, one is a list of one`},
		{"output and outputs at the top", `
intakes:
  - {name: a, protocol: tcp, port: 514, intake_key: KEY}
output: {transport: relp}
outputs: [{transport: syslog}]
`, `line 5: output and outputs (line 4) both given`},
		{"empty list on an intake", `
intakes:
  - name: a
    protocol: tcp
    port: 514
    intake_key: KEY
    outputs: []
`, `line 7: intake "a": outputs is empty: list one output or more`},
		{"empty list at the top", `
intakes:
  - {name: a, protocol: tcp, port: 514, intake_key: KEY}
outputs:
`, `line 4: outputs is empty: list one output or more`},
		{"the same place twice", `
intakes:
  - name: a
    protocol: tcp
    port: 514
    intake_key: KEY
    outputs:
      - {transport: relp, endpoint: "relp.example.net"}
      - {name: again, transport: relp, endpoint: "relp.example.net"}
`, `line 9: intake "a": output "again" sends where the output at line 8 does (relp relp.example.net:11514): each event would go there twice`},
		{"a name twice", `
intakes:
  - name: a
    protocol: tcp
    port: 514
    intake_key: KEY
    outputs:
      - {name: x, transport: relp}
      - {name: x, transport: file, path: a.jsonl}
`, `line 9: intake "a": output name "x" already used by the output at line 8`},
		{"a name that cannot label", `
intakes:
  - {name: a, protocol: tcp, port: 514, intake_key: KEY}
outputs:
  - {name: "sekoia io", transport: relp}
  - {name: b, transport: file, path: a.jsonl}
`, `line 5: outputs: output name "sekoia io": expected 1 to 64 letters, digits, '.', '_' or '-'`},
		{"a bad item said with its name", `
intakes:
  - name: a
    protocol: tcp
    port: 514
    intake_key: KEY
    outputs:
      - {transport: relp}
      - {name: archive, transport: file}
`, `line 3: intake "a": output "archive" ships to file: output.path is missing`},
		{"an intake named as another's output ships", `
intakes:
  - name: a
    protocol: tcp
    port: 514
    intake_key: KEY
    outputs:
      - {transport: relp}
      - {name: archive, transport: file, path: a.jsonl}
  - {name: "a#archive", protocol: tcp, port: 515, intake_key: KEY}
`, `line 10: intake "a#archive": the name is the one output "archive" of intake "a" ships as: rename either`},
		{"an unknown key in an item", `
intakes:
  - name: a
    protocol: tcp
    port: 514
    intake_key: KEY
    outputs:
      - {transport: relp}
      - {name: archive, transport: file, pth: a.jsonl}
`, `line 9: unknown key "pth"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := load(t, tc.yaml, nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}
