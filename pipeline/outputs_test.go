package pipeline

import (
	"slices"
	"strings"
	"testing"

	"github.com/flowgate/flowgate/buffer"
	"github.com/flowgate/flowgate/config"
)

// An intake with two outputs and a route to another key: four shippings,
// the first output of each key on the key's subject (what output: used),
// the other on a subject of its own; the receiver's destinations hold, by
// key, the subjects of its outputs.
func TestShippings(t *testing.T) {
	c, err := config.Parse([]byte(`
intakes:
  - name: Firewall
    protocol: tcp
    port: 514
    intake_key: FirewallKey0123
    routes:
      - {name: paloalto, match: {app_name: {equals: paloalto}}, intake_key: PaloAltoKey0123}
    outputs:
      - {transport: relp, endpoint: "relp.example.net"}
      - {name: archive, transport: file, path: /tmp/archive.jsonl}
`), "test", t.TempDir(), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	in := c.Intakes[0]
	ships := Shippings(in)
	var got []string
	for _, s := range ships {
		got = append(got, s.Intake.Name+" "+s.Intake.Output.Transport+" "+s.Intake.IntakeKey)
	}
	want := []string{"Firewall relp FirewallKey0123", "Firewall#archive file FirewallKey0123",
		"Firewall/paloalto relp PaloAltoKey0123", "Firewall/paloalto#archive file PaloAltoKey0123"}
	if !slices.Equal(got, want) {
		t.Fatalf("shippings %q, want %q", got, want)
	}
	routed := RouteSubject("Firewall", "PaloAltoKey0123")
	subjects := []string{buffer.Subject("Firewall"), buffer.Subject("Firewall#archive"), routed, buffer.OutputSubject(routed, "archive")}
	for i, s := range ships {
		if s.Subject != subjects[i] {
			t.Errorf("%s: subject %s, want %s", s.Intake.Name, s.Subject, subjects[i])
		}
		if len(s.Intake.Outputs) != 1 || s.Intake.Output != &s.Intake.Outputs[0] {
			t.Errorf("%s: outputs %v", s.Intake.Name, s.Intake.Outputs)
		}
	}
	if len(slices.Compact(slices.Sorted(slices.Values(subjects)))) != 4 {
		t.Error("two shippings share a subject")
	}
	if d := ownDestination(in); d != buffer.Destination(subjects[0], subjects[1]) {
		t.Errorf("own destination %q", d)
	}
	if rs := collectRoutes(in); len(rs.Subjects) != 1 || rs.Subjects[0] != buffer.Destination(subjects[2], subjects[3]) {
		t.Errorf("routes' destinations %q", rs.Subjects)
	}
	// One output: one subject, as before outputs: existed.
	in.Outputs = in.Outputs[:1]
	if d := ownDestination(in); d != buffer.Subject("Firewall") || strings.Contains(d, " ") {
		t.Errorf("one output's destination %q", d)
	}
}
